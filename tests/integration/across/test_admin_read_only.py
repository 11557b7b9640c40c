"""Read-only operator commands never create or migrate a schema: on a database a service has not set up they say
so and change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.kit.settings import ServiceSettings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def admin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; sys.argv[0] = 'minaintyg-admin'; from services.admin import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
    )


async def schema_exists(settings: ServiceSettings, name: str) -> bool:
    conn = await asyncpg.connect(settings.database_url)
    try:
        found: bool = await conn.fetchval("SELECT count(*) > 0 FROM pg_namespace WHERE nspname = $1", name)
        return found
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("command", "variable", "service"),
    [
        (["care-units", "list"], "INTAKE_DB_SCHEMA", "intake"),
        (["dispatch", "list", "--failed"], "DISPATCH_DB_SCHEMA", "dispatch"),
        (["dispatch", "list", "--stuck"], "DISPATCH_DB_SCHEMA", "dispatch"),
    ],
)
async def test_a_read_only_command_does_not_create_or_migrate_a_schema(
    base_settings: ServiceSettings, command: list[str], variable: str, service: str
) -> None:
    schema = f"t_ro_{uuid.uuid4().hex[:10]}"
    done = admin(*command, env={variable: schema})
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{service} has not set up schema {schema} yet" in done.stderr
    assert not await schema_exists(base_settings, schema)
