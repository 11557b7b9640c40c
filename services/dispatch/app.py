"""Dispatch: run by the kit's service host (wired by `bootstrap.py`: the consumer of released certificates and send
requests, the senders and the outbox relay); `/readyz` shows the recipients' circuits."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from services.dispatch import repo
from services.dispatch.bootstrap import CONSUMED_TOPICS, bootstrap
from services.dispatch.handlers import Clock
from services.dispatch.settings import DispatchSettings
from services.kit.db import close_pool, create_pool, migrate
from services.kit.service import service_app

__all__ = ["CONSUMED_TOPICS", "MIGRATIONS", "create_app", "prepare"]

MIGRATIONS = Path(__file__).parent / "migrations"


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def prepare(settings: DispatchSettings) -> None:
    """Migrate the schema and point the seeded Försäkringskassan entry at the configured endpoint."""
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    pool = await create_pool(settings.database_url, settings.db_schema, application="dispatch-prepare", max_size=1)
    try:
        await repo.set_endpoint(pool, "FKASSA", *settings.fk_entry())
    finally:
        await close_pool(pool)


def create_app(settings: DispatchSettings | None = None, clock: Clock = _utc_now) -> FastAPI:
    settings = settings or DispatchSettings()
    return service_app(
        "dispatch",
        settings,
        functools.partial(bootstrap, settings=settings, clock=clock),
        migrations=MIGRATIONS,
        title="Mina intyg – dispatch",
        summary="Sends certificates to recipients (Försäkringskassan first), exactly once, whatever fails.",
        max_body_bytes=16 * 1024,
    )
