"""Start panva's oidc-provider (OpenID Certified; tests/oidc_provider/provider.mjs) on a free loopback port, for
the portal's login tests against an independent provider.

`npm ci` installs the pinned package (package-lock.json) into tests/oidc_provider/node_modules the first time, or
when the lock file changed; the machine's Node runs it. The provider's keys are RSA JWKs we make, so a test can
rotate them (`set_keys`) and check the portal follows.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import RSAKey

HERE = Path(__file__).parent
LOCK = HERE / "package-lock.json"
INSTALLED = HERE / "node_modules" / ".package-lock.json"


def ensure_installed() -> None:
    """`npm ci` unless node_modules matches the committed lock file (npm writes its own copy when it installs)."""
    if INSTALLED.exists() and INSTALLED.stat().st_mtime >= LOCK.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed for the oidc-provider tests (deploy/local/bootstrap.sh)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=600)


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


@dataclass
class RunningProvider:
    issuer: str
    port: int
    keys: list[RSAKey]
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def set_keys(self, keys: list[RSAKey]) -> None:
        """Publish these keys (the first signs): rotation adds one in front, withdrawal drops one."""
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.base_url}/__test/keys", json={"keys": [k.as_dict(private=True) for k in keys]}
            )
            response.raise_for_status()
        self.keys = keys


async def _drain(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace").rstrip())


@asynccontextmanager
async def oidc_provider(
    port: int,
    *,
    clients: list[dict[str, Any]],
    accounts: dict[str, dict[str, Any]],
    trailing_slash: bool = True,
    startup_seconds: float = 30.0,
) -> AsyncIterator[RunningProvider]:
    """The provider on 127.0.0.1:`port` (issuer with a trailing slash unless told otherwise), stopped after."""
    await asyncio.to_thread(ensure_installed)
    node = shutil.which("node")
    assert node is not None
    issuer = f"http://127.0.0.1:{port}" + ("/" if trailing_slash else "")
    keys = [new_key("k1")]
    config = {
        "port": port,
        "issuer": issuer,
        "clients": clients,
        "accounts": {name: {"claims": claims} for name, claims in accounts.items()},
        "keys": [k.as_dict(private=True) for k in keys],
        "cookieKeys": [RSAKey.generate_key(2048).thumbprint()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        process = await asyncio.create_subprocess_exec(
            node,
            str(HERE / "provider.mjs"),
            str(path),
            cwd=HERE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        running = RunningProvider(issuer, port, keys, process)
        assert process.stdout is not None
        drain = asyncio.create_task(_drain(process.stdout, running.output))
        try:
            await _wait_until_up(running, startup_seconds)
            yield running
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            await drain


async def _wait_until_up(running: RunningProvider, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    url = running.issuer.rstrip("/") + "/.well-known/openid-configuration"
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if running.process.returncode is not None:
                raise RuntimeError("oidc-provider exited: " + "\n".join(running.output[-20:]))
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise TimeoutError("oidc-provider did not answer: " + "\n".join(running.output[-20:]))
            await asyncio.sleep(0.1)  # polling with a deadline
