"""A service killed while it runs its start-up migrations can start again (the lock dies with the process).

yoyo's own lock was a committed row that only its `finally` removed: after a SIGKILL mid-migration every later start
of every replica exited with LockTimeout until someone ran `yoyo break-lock`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from services.kit.db import migrate
from services.kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]


async def _wait_for_query(database_url: str, marker: str, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    conn = await asyncpg.connect(database_url)
    try:
        while time.monotonic() < deadline:
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                f"%{marker}%",
            )
            if running:
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("the migration never started")


async def test_a_start_after_a_kill_during_migrations_migrates(
    base_settings: ServiceSettings, schema: str, tmp_path: Path
) -> None:
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    (tmp_path / "0001.slow.sql").write_text(f"CREATE TABLE slow_marker (x int);\nSELECT pg_sleep(2) AS {marker};\n")
    script = (
        "import asyncio, sys; from pathlib import Path; from services.kit.db import migrate; "
        "asyncio.run(migrate(sys.argv[1], sys.argv[2], Path(sys.argv[3])))"
    )
    child = subprocess.Popen(  # noqa: ASYNC220 - killed below, never awaited
        [sys.executable, "-c", script, base_settings.database_url, schema, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        await _wait_for_query(base_settings.database_url, marker, deadline_seconds=60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

    # The next start takes the lock as soon as the dead session is gone, and applies what the killed one rolled back.
    applied = await asyncio.wait_for(migrate(base_settings.database_url, schema, tmp_path), timeout=60)
    assert "0001.slow" in applied
    conn = await asyncpg.connect(base_settings.database_url)
    try:
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".slow_marker') == 0  # noqa: S608 - our schema
    finally:
        await conn.close()


async def test_concurrent_starts_migrate_once(base_settings: ServiceSettings, schema: str, tmp_path: Path) -> None:
    (tmp_path / "0001.once.sql").write_text("CREATE TABLE once_marker (x int);\nSELECT pg_sleep(0.5);\n")
    results = await asyncio.gather(*(migrate(base_settings.database_url, schema, tmp_path) for _ in range(3)))
    assert sorted("0001.once" in r for r in results) == [False, False, True]
