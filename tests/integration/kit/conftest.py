"""Fixtures of the kit's integration tests (consumer, outbox relay): a kit schema (outbox, tracking) and topics of
their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.kit.db import create_pool, migrate
from services.kit.settings import ServiceSettings
from tests.harness import topic_prefix


@pytest.fixture
def settings(base_settings: ServiceSettings, unique: str) -> ServiceSettings:
    return base_settings.model_copy(update={"topic_prefix": topic_prefix(unique)})


@pytest.fixture
async def pool(settings: ServiceSettings, schema: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """The kit's tables (outbox, processed_events) and an `effects` table, in the test's own schema."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "test_0001_effects.sql").write_text(
        "CREATE TABLE effects (event_id uuid NOT NULL, citizen_ref text NOT NULL);"
    )
    await migrate(settings.database_url, schema, migrations)
    pool = await create_pool(settings.database_url, schema, application="test")
    yield pool
    await pool.close()
