"""Schemathesis over every service's OpenAPI document, as a fuzzer would try it: each service a process of its own
(console script, environment only), every operation, with the caller's credentials and without, all checks.

No input may give a 500, and every answer must be what the document says (status, content type, body schema).
Examples per operation: FUZZ_EXAMPLES (default 300, about 4.5 minutes for all ten runs on two cores; FUZZ_EXAMPLES=25
takes about 1.5 minutes, for a quick run while working).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.kit.db import create_pool
from services.kit.settings import ServiceSettings
from services.portal import repo as portal_repo
from services.portal.security import CSRF_HEADER, SESSION_COOKIE, new_token, token_hash
from tests.harness import ServiceProcess, delete_topics_of, drop_schema, free_port, new_unique

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis.toml"
COMMANDS = {
    "intake": ("minaintyg-intake", "INTAKE_"),
    "consent": ("minaintyg-consent", "CONSENT_"),
    "portal": ("minaintyg-portal", "PORTAL_"),
    "dispatch": ("minaintyg-dispatch", "DISPATCH_"),
    "stats": ("minaintyg-stats", "STATS_"),
}
CREDENTIALS = {
    "intake": ["Authorization: Bearer dev-platform-secret"],
    "consent": ["Authorization: Bearer dev-portal-to-consent"],
    "stats": ["Authorization: Bearer dev-analyst-secret"],
    "dispatch": [],  # no route takes a credential
}


@dataclass
class Services:
    urls: dict[str, str]
    logs: dict[str, Path]
    portal_headers: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    base = ServiceSettings()
    unique = new_unique()
    log_dir = tmp_path_factory.mktemp("fuzz")
    ports = {name: free_port() for name in COMMANDS}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {"MINAINTYG_TOPIC_PREFIX": f"fz{unique}.", "LOG_JSON": "true", "LOG_LEVEL": "WARNING",
           "KAFKA_BOOTSTRAP_SERVERS": base.kafka_bootstrap_servers, "DATABASE_URL": base.database_url,
           "PORTAL_PUBLIC_ORIGIN": urls["portal"], "PORTAL_CONSENT_URL": urls["consent"],
           "PORTAL_OIDC_ISSUER": "http://127.0.0.1:9", "DISPATCH_FK_ENDPOINT": "http://127.0.0.1:9",
           "STATS_RATE_LIMIT": "1000000/minute"}  # fmt: skip
    processes: dict[str, ServiceProcess] = {}
    logs = {name: log_dir / f"{name}.log" for name in COMMANDS}
    try:
        for name, (command, prefix) in COMMANDS.items():
            processes[name] = ServiceProcess(
                command, {**env, f"{prefix}DB_SCHEMA": f"fz_{unique}_{name}"}, port_env=f"{prefix}PORT",
                port=ports[name], log=logs[name], stdout_to_log=True, own_session=True,
            )  # fmt: skip
            processes[name].spawn()
        for process in processes.values():
            await process.ready(within=120)
        # A citizen's session with consent, as the login creates it, for the portal's run with credentials.
        token, csrf = new_token(), new_token()
        pool = await create_pool(base.database_url, f"fz_{unique}_portal", application="test", max_size=1)
        try:
            await portal_repo.create_session(
                pool, token_hash(token), csrf=csrf, citizen_ref="f" * 64, personnummer="191212121212",
                given_name="Tolvan", family_name="Tolvansson", id_token="", consent_given=True,
                now=datetime.now(UTC),
            )  # fmt: skip
        finally:
            await pool.close()
        portal_headers = [f"Cookie: {SESSION_COOKIE}={token}", f"{CSRF_HEADER}: {csrf}", f"Origin: {urls['portal']}"]
        yield Services(urls, logs, portal_headers)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.stop(timeout=20)
        await delete_topics_of(base.kafka_bootstrap_servers, unique)
        for name in COMMANDS:
            await drop_schema(base.database_url, f"fz_{unique}_{name}")


def fuzz(url: str, headers: list[str], report_dir: Path, *extra: str) -> tuple[int, str, dict[str, int], float]:
    """Run schemathesis over `url`/openapi.json: its exit code, output, figures and seconds taken."""
    command = [
        *(str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run", f"{url}/openapi.json"),
        *("--checks", "all", "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing"),
        *("--workers", "1", "--seed", "1", "--request-timeout", "30"),
        *("--report", "junit", "--report-dir", str(report_dir)),
    ]
    for header in headers:
        command += ["-H", header]
    command += extra
    started = time.monotonic()
    # In the report folder: schemathesis keeps a cache of what it found in .schemathesis/ of its working directory.
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, cwd=report_dir)
    return done.returncode, done.stdout + done.stderr, figures(done.stdout), time.monotonic() - started


def figures(output: str) -> dict[str, int]:
    """Operations, test cases and failures from schemathesis' summary."""
    found: dict[str, int] = {}
    for key, pattern in (("operations", r"Selected:\s+(\d+)"), ("cases", r"(\d+) generated"),
                         ("failures", r"(\d+) failures?")):  # fmt: skip
        match = re.search(pattern, output)
        found[key] = int(match[1]) if match else 0
    return found


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("service", list(COMMANDS))
@pytest.mark.parametrize("credentials", [True, False], ids=["with-credentials", "without"])
async def test_no_server_error_and_no_schema_mismatch(
    services: Services, service: str, credentials: bool, tmp_path: Path
) -> None:
    headers = (services.portal_headers if service == "portal" else CREDENTIALS[service]) if credentials else []
    # The citizen's session must last the run: withdrawing consent ends what every other operation needs.
    extra = ("--exclude-path", "/api/v1/consent/withdrawal") if service == "portal" and credentials else ()
    code, output, numbers, seconds = await asyncio.to_thread(fuzz, services.urls[service], headers, tmp_path, *extra)
    print(json.dumps({"service": service, "credentials": credentials, **numbers, "seconds": round(seconds, 1)}))
    server_errors = [line for line in services.logs[service].read_text(errors="replace").splitlines()
                     if "http.request.failed" in line]  # fmt: skip
    assert code == 0, output[-12000:]
    assert server_errors == [], server_errors[:3]
