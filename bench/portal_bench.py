"""Portal benchmark: the list page and PDFs with a large read model, from one portal process.

Loads N certificates for M citizens straight into a fresh portal schema (COPY), starts `python -m services.portal`
(consumer and relay off: the HTTP path alone is measured), and drives it with C concurrent sessions:
  baseline  GET /healthz             (the same HTTP stack without sessions, database or templates)
  list      GET /intyg               (session check, the citizen's certificates, access-log row, Jinja page)
  pdf       GET /intyg/{id}/pdf      (session, certificate, access-log row, fpdf2 with embedded DejaVu)
and samples the portal's RSS. The load generator runs on the same machine and takes CPU from the portal.
Targets (issue #5): list p99 ≤ 50 ms and ≥ 300 req/s at 50 sessions, PDF p95 ≤ 300 ms, RSS ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import psutil

from bench.common import machine, median, percentile, wait_ready
from deploy.simulators.platform.generator import CertificateFactory
from services.kit.db import create_pool, migrate
from services.portal.app import MIGRATIONS
from services.portal.security import SESSION_COOKIE, new_token, token_hash
from services.portal.settings import PortalSettings


@dataclass
class Phase:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu_seconds: float = 0.0  # the portal process's CPU time during the phase

    @property
    def cpu_ms(self) -> float:
        """Portal CPU per request: what caps the rate on a machine that is not shared."""
        return self.cpu_seconds / max(self.requests, 1) * 1000

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def csv_bytes(rows: Sequence[Sequence[object]]) -> io.BytesIO:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return io.BytesIO(buffer.getvalue().encode())


def templates(count: int) -> list[dict[str, Any]]:
    """A few real certificate documents to vary; ids, patients and dates are set per row."""
    factory = CertificateFactory(seed=5)
    return [orjson.loads(orjson.dumps(factory.certificate())) for _ in range(count)]


async def load(settings: PortalSettings, certificates: int, citizens: int) -> tuple[list[str], dict[str, str]]:
    """COPY the read model in; returns the citizen refs and one certificate id per citizen (for the PDF phase)."""
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    pool = await create_pool(settings.database_url, settings.db_schema, application="portal-bench", max_size=4)
    rng = random.Random(7)  # noqa: S311 - test data
    docs = templates(40)
    refs = [uuid.UUID(int=rng.getrandbits(128)).hex + uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(citizens)]
    now = datetime.now(UTC)
    first: dict[str, str] = {}
    started = time.perf_counter()
    batch = 50_000
    try:
        async with pool.acquire() as conn:
            for offset in range(0, certificates, batch):
                rows, history = [], []
                for i in range(offset, min(offset + batch, certificates)):
                    ref = refs[i % citizens] if i < citizens else refs[rng.randrange(citizens)]
                    doc = dict(docs[i % len(docs)])
                    cert_id = f"b{i:09d}"
                    signed = now - timedelta(days=rng.randrange(0, 5 * 365), minutes=rng.randrange(0, 1440))
                    doc["id"], doc["signed_at"] = cert_id, signed.isoformat()
                    first.setdefault(ref, cert_id)
                    at = signed.isoformat()
                    rows.append((cert_id, ref, doc["type"], at, doc["care_unit"]["hsa_id"], doc["care_unit"]["name"],
                                 doc["issuer"]["name"], orjson.dumps(doc).decode(), "f", "f", at))  # fmt: skip
                    history.append((cert_id, doc["care_unit"]["name"], "RECEIVED", at))
                # CSV COPY (text): asyncpg's binary COPY has no jsonb encoder.
                await conn.copy_to_table(
                    "certificates", source=csv_bytes(rows), format="csv",
                    columns=["id", "citizen_ref", "type", "signed_at", "care_unit_hsa", "care_unit_name", "issuer_name",
                             "document", "archived", "test_patient", "released_at"],
                )  # fmt: skip
                await conn.copy_to_table(
                    "status_history", source=csv_bytes(history), format="csv",
                    columns=["certificate_id", "party", "state", "at"],
                )  # fmt: skip
                print(
                    f"  loaded {offset + len(rows):,} certificates ({time.perf_counter() - started:.0f} s)", flush=True
                )
            await conn.execute("ANALYZE")
    finally:
        await pool.close()
    return refs, first


async def sessions(settings: PortalSettings, refs: list[str], count: int) -> list[tuple[str, str]]:
    """`count` logged-in citizens with consent: (cookie token, citizen ref)."""
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
    chosen = random.Random(11).sample(refs, count)  # noqa: S311 - test data
    result = []
    try:
        for ref in chosen:
            token = new_token()
            now = datetime.now(UTC)
            await conn.execute(
                "INSERT INTO sessions (id_hash, kind, created_at, last_seen, csrf_token, citizen_ref, personnummer, "
                "given_name, family_name, id_token, consent_given) "
                "VALUES ($1, 'AUTHENTICATED', $2, $2, $3, $4, '198507149808', 'Bench', 'Marking', '', true)",
                token_hash(token), now, new_token(), ref,
            )  # fmt: skip
            result.append((token, ref))
    finally:
        await conn.close()
    return result


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the status (the body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def measured(pid: int, port: int, paths: list[tuple[str, str]], concurrency: int, seconds: float) -> Phase:
    """A phase of `drive` with the portal's CPU time over it."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    phase = await drive(port, paths, concurrency, seconds)
    phase.cpu_seconds = sum(process.cpu_times()[:2]) - before
    return phase


async def drive(port: int, paths: list[tuple[str, str]], concurrency: int, seconds: float) -> Phase:
    """`concurrency` keep-alive connections, each with its own session, requesting as fast as answers come.

    A minimal client over asyncio streams: httpx's connection pool cost more CPU than the portal under 50
    concurrent requests on this machine, which would have measured the client, not the portal."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(token: str, path: str) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {SESSION_COOKIE}={token}\r\n"
                   "Connection: keep-alive\r\n\r\n").encode()  # fmt: skip
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status = await _get(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(worker(token, path) for token, path in paths[:concurrency]))
    return Phase(len(latencies), time.perf_counter() - started, latencies, errors)


def start_portal(settings: PortalSettings, port: int) -> subprocess.Popen[bytes]:
    """One portal process on `port`, consumer and relay off."""
    env = {**os.environ, "PORTAL_PORT": str(port), "PORTAL_DB_SCHEMA": settings.db_schema, "LOG_LEVEL": "WARNING",
           "PORTAL_CONSUMER_ENABLED": "false", "PORTAL_RELAY_ENABLED": "false"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "services.portal"], env=env, stdin=subprocess.DEVNULL)


async def sample_rss(pid: int, stop: asyncio.Event, peaks: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peaks.append(process.memory_info().rss)
        await asyncio.sleep(0.2)


async def main_async(args: argparse.Namespace) -> None:
    print(machine())
    print(f"portal benchmark: {args.certificates:,} certificates for {args.citizens:,} citizens · "
          f"{args.concurrency} sessions · {args.seconds:.0f} s per phase · {args.runs} runs")  # fmt: skip
    base = PortalSettings()
    settings = base.model_copy(update={"db_schema": f"bench_portal_{uuid.uuid4().hex[:8]}"})
    port = 18000
    url = f"http://127.0.0.1:{port}"
    process: subprocess.Popen[bytes] | None = None
    try:
        refs, first = await load(settings, args.certificates, args.citizens)
        logged_in = await sessions(settings, refs, args.concurrency)
        process = start_portal(settings, port)
        await wait_ready(url)
        stop = asyncio.Event()
        peaks: list[int] = []
        sampler = asyncio.create_task(sample_rss(process.pid, stop, peaks))
        warm = [(t, "/intyg") for t, _ in logged_in]
        await drive(port, warm, args.concurrency, 3)
        runs = []
        for i in range(args.runs):
            pid = process.pid
            health = [(t, "/healthz") for t, _ in logged_in]
            healthz = await measured(pid, port, health, args.concurrency, args.seconds)
            listed = [(t, "/intyg") for t, _ in logged_in]
            listing = await measured(pid, port, listed, args.concurrency, args.seconds)
            pdf = await measured(pid, port, [(t, f"/intyg/{first[ref]}/pdf") for t, ref in logged_in],
                                 args.pdf_concurrency, args.seconds)  # fmt: skip
            runs.append((healthz, listing, pdf))
            print(f"  run {i + 1}: baseline /healthz {healthz.rate:,.0f} req/s p99 {healthz.p(99):.1f} ms "
                  f"({healthz.cpu_ms:.2f} ms CPU/req) · list {listing.rate:,.0f} req/s p50 {listing.p(50):.1f} ms "
                  f"p99 {listing.p(99):.1f} ms ({listing.cpu_ms:.2f} ms CPU/req, {listing.errors} errors) · "
                  f"PDF ({args.pdf_concurrency} at once) {pdf.rate:,.1f}/s p50 {pdf.p(50):.0f} ms "
                  f"p95 {pdf.p(95):.0f} ms "
                  f"({pdf.cpu_ms:.0f} ms CPU/PDF, {pdf.errors} errors)", flush=True)  # fmt: skip
        stop.set()
        await sampler
        rss = max(peaks) / 2**20 if peaks else float("nan")
        print("medians:")
        print(f"  baseline /healthz          {median([h.rate for h, _, _ in runs]):8,.0f} req/s  "
              f"p99 {median([h.p(99) for h, _, _ in runs]):6.1f} ms")  # fmt: skip
        print(f"  list page (/intyg)         {median([x.rate for _, x, _ in runs]):8,.0f} req/s  "
              f"p99 {median([x.p(99) for _, x, _ in runs]):6.1f} ms   (targets ≥ 300 req/s, p99 ≤ 50 ms)")  # fmt: skip
        print(f"  PDF                        {median([p.rate for _, _, p in runs]):8,.0f} req/s  "
              f"p95 {median([p.p(95) for _, _, p in runs]):6.1f} ms   (target p95 ≤ 300 ms)")  # fmt: skip
        print(f"  portal peak RSS            {rss:8.0f} MB                (target ≤ 200 MB)")
        cpu_list = median([x.cpu_ms for _, x, _ in runs])
        cpu_health, cpu_pdf = median([h.cpu_ms for h, _, _ in runs]), median([p.cpu_ms for _, _, p in runs])
        print(f"  portal CPU per list page   {cpu_list:8.2f} ms   (one free core's ceiling: {1000 / cpu_list:,.0f} "
              f"req/s; /healthz {cpu_health:.2f} ms; PDF {cpu_pdf:.0f} ms)")  # fmt: skip
        averages = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average after the run {averages} on {psutil.cpu_count()} cores")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        if not args.keep:
            conn = await asyncpg.connect(settings.database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
            finally:
                await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--citizens", type=int, default=300_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pdf-concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 certificates for 6,000 citizens, 5 s phases")
    parser.add_argument("--keep", action="store_true", help="keep the loaded schema afterwards")
    args = parser.parse_args()
    if args.quick:
        args.certificates, args.citizens, args.seconds = 20_000, 6_000, 5.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
