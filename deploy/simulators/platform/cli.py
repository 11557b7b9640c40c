"""`platform-sim`: the national service platform as seen by intake.

platform-sim sample [--type LISJP|AG7804] [--format riv|json]
                                                print one valid certificate: a RegisterCertificate v3 message
                                                (riv, the default) or our JSON
platform-sim push --url URL --rate R --count N  deliver certificates with a progress bar and a summary, over
                                                RIV-TA with mutual TLS (default; --riv-url, --tls) or as JSON
platform-sim units                              print the simulator's care units as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from deploy.simulators.platform import riv
from deploy.simulators.platform.generator import CARE_UNITS, CertificateFactory
from schemas.riv.transport import Intyg, Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE

DEFAULT_TOKEN = os.environ.get("PLATFORM_SIM_TOKEN", "dev-platform-secret")


async def push(
    url: str,
    *,
    rate: float,
    count: int,
    token: str,
    seed: int,
    invalid_share: float,
    revoke_share: float,
    concurrency: int,
    progress: bool = True,
    format: str = "riv",
    riv_url: str = riv.DEFAULT_URL,
    tls: Path = riv.DEFAULT_TLS,
) -> Counter[str]:
    """Deliver `count` certificates at `rate` per second; return a count of outcomes by kind and status. RIV-TA
    outcomes are the result codes (`valid → OK`), JSON ones the HTTP status."""
    factory = CertificateFactory(seed=seed)
    rng = random.Random(seed + 1)
    summary: Counter[str] = Counter()
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    base = url.rstrip("/")

    async def deliver(client: httpx.AsyncClient, body: dict[str, Any], kind: str) -> None:
        async with limit:
            try:
                response = await client.post(f"{base}/v1/certificates", json=body, headers=headers)
                summary[f"{kind} → {response.status_code}"] += 1
                if response.status_code == 201 and rng.random() < revoke_share:
                    await revoke(client, body["id"])
            except httpx.HTTPError as exc:
                summary[f"{kind} → {type(exc).__name__}"] += 1
            finally:
                bar.update(1)

    async def deliver_riv(client: httpx.AsyncClient, body: dict[str, Any], kind: str) -> None:
        async with limit:
            try:
                intyg = riv.to_intyg(body)
                if kind == "invalid":  # a rule of both forms broken: no basis for the certificate (question 1)
                    intyg = dataclasses.replace(intyg, svar=tuple(s for s in intyg.svar if s.id != "1"))
                result = await riv.call(client, riv_url, REGISTER_CERTIFICATE, riv.register_message(intyg))
                summary[f"{kind} → {_outcome(result)}"] += 1
                if result.result_code == "OK" and rng.random() < revoke_share:
                    await revoke_riv(client, intyg)
            except httpx.HTTPError as exc:
                summary[f"{kind} → {type(exc).__name__}"] += 1
            finally:
                bar.update(1)

    async def revoke_riv(client: httpx.AsyncClient, intyg: Intyg) -> None:
        result = await riv.call(client, riv_url, REVOKE_CERTIFICATE, riv.revoke_message(riv.revocation_of(intyg)))
        summary[f"revocation → {_outcome(result)}"] += 1

    async def revoke(client: httpx.AsyncClient, certificate_id: str) -> None:
        response = await client.post(
            f"{base}/v1/certificates/{certificate_id}/revocation",
            json={"reason": "Felaktigt utfärdat"},
            headers=headers,
        )
        summary[f"revocation → {response.status_code}"] += 1

    bar = tqdm(total=count, unit="intyg", disable=not progress, file=sys.stderr)
    started = time.monotonic()
    verify: ssl.SSLContext | bool = riv.client_context(tls) if format == "riv" else True
    async with httpx.AsyncClient(timeout=30, verify=verify) as client:
        tasks = []
        for i in range(count):
            if rng.random() < invalid_share:
                body = factory.invalid_certificate()[0] if format == "json" else factory.certificate()
                kind = "invalid"
            else:
                body, kind = factory.certificate(), "valid"
            due = started + i / rate if rate > 0 else started
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            work = deliver_riv(client, body, kind) if format == "riv" else deliver(client, body, kind)
            tasks.append(asyncio.create_task(work))
        await asyncio.gather(*tasks)
    bar.close()
    return summary


def _outcome(result: Result) -> str:
    return "/".join(p for p in (result.result_code, result.error_id) if p)


async def wait_ready(url: str, deadline_seconds: float) -> None:
    """Poll intake's /readyz until it answers 200 or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(f"{url.rstrip('/')}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"platform-sim: {url} not ready within {deadline_seconds:.0f} s")
            await asyncio.sleep(0.5)


async def trickle(
    url: str, *, token: str, initial: int, rate: float, seed: int, format: str, riv_url: str, tls: Path
) -> None:
    """`make run`'s traffic: an initial batch, then a steady trickle until stopped."""
    await wait_ready(url, 120)
    common = {
        "format": format,
        "riv_url": riv_url,
        "tls": tls,
        "token": token,
        "invalid_share": 0.03,
        "revoke_share": 0.02,
        "concurrency": 8,
        "progress": False,
    }
    summary = await push(url, rate=50, count=initial, seed=seed, **common)  # type: ignore[arg-type]
    print(f"platform-sim: initial batch of {initial}: {dict(summary)}", flush=True)
    round_ = 0
    while True:
        round_ += 1
        summary = await push(url, rate=rate, count=max(1, int(rate * 60)), seed=seed + round_, **common)  # type: ignore[arg-type]
        print(f"platform-sim: trickle minute {round_}: {dict(summary)}", flush=True)


def main() -> None:
    """Entry point of `platform-sim`."""
    parser = argparse.ArgumentParser(prog="platform-sim", description="National service platform simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="print one valid certificate as JSON")
    sample.add_argument("--type", choices=["LISJP", "AG7804"], default="LISJP")
    sample.add_argument("--seed", type=int, default=None, help="default: a new certificate each call")
    sample.add_argument("--format", choices=["riv", "json"], default="riv")
    pusher = sub.add_parser("push", help="deliver certificates to intake")
    pusher.add_argument("--url", default="http://127.0.0.1:8001")
    pusher.add_argument("--rate", type=float, default=5.0, help="certificates per second (0: as fast as possible)")
    pusher.add_argument("--count", type=int, default=100)
    pusher.add_argument("--token", default=DEFAULT_TOKEN)
    pusher.add_argument("--seed", type=int, default=7804)
    pusher.add_argument("--invalid-share", type=float, default=0.05)
    pusher.add_argument("--revoke-share", type=float, default=0.02)
    pusher.add_argument("--concurrency", type=int, default=16)
    for command in (pusher, trickler := sub.add_parser("trickle", help="an initial batch, then a steady trickle")):
        command.add_argument("--format", choices=["riv", "json"], default="riv", help="RIV-TA over mutual TLS, or JSON")
        command.add_argument("--riv-url", default=riv.DEFAULT_URL, help="intake's RIV-TA listener")
        command.add_argument("--tls", type=Path, default=riv.DEFAULT_TLS, help="CA and platform certificate (PEM)")
    sub.add_parser("units", help="print the simulator's care units as JSON")
    trickler.add_argument("--url", default="http://127.0.0.1:8001")
    trickler.add_argument("--token", default=DEFAULT_TOKEN)
    trickler.add_argument("--initial", type=int, default=200)
    trickler.add_argument("--rate", type=float, default=0.5, help="certificates per second after the batch")
    trickler.add_argument("--seed", type=int, default=None, help="certificates; default new each run (persons fixed)")
    args = parser.parse_args()

    if args.command == "sample":
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        certificate = CertificateFactory(seed=seed).certificate(args.type)
        if args.format == "json":
            print(json.dumps(certificate, ensure_ascii=False, indent=2))
        else:
            print(riv.register_message(riv.to_intyg(certificate)).decode("utf-8"))
    elif args.command == "trickle":
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        asyncio.run(
            trickle(args.url, token=args.token, initial=args.initial, rate=args.rate, seed=seed,
                    format=args.format, riv_url=args.riv_url, tls=args.tls)
        )  # fmt: skip
    elif args.command == "units":
        print(json.dumps([u.as_json() for u in CARE_UNITS], ensure_ascii=False, indent=2))
    else:
        summary = asyncio.run(
            push(args.url, rate=args.rate, count=args.count, token=args.token, seed=args.seed,
                 invalid_share=args.invalid_share, revoke_share=args.revoke_share, concurrency=args.concurrency,
                 format=args.format, riv_url=args.riv_url, tls=args.tls)
        )  # fmt: skip
        print("summary:")
        for outcome, n in sorted(summary.items()):
            print(f"  {outcome}: {n}")
        if any("Error" in k or "→ 5" in k or "FAULT" in k or "TECHNICAL" in k for k in summary):
            sys.exit(1)


if __name__ == "__main__":
    main()
