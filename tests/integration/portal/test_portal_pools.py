"""The portal's two pools: requests on one that skips asyncpg's reset query (a transaction left open is still
rolled back on release), the relay's session advisory lock on one that resets."""

from __future__ import annotations

from typing import Any

import pytest

from services.kit.db import create_pool, migrate
from services.kit.service import app_state
from services.kit.settings import ServiceSettings
from services.portal.app import MIGRATIONS
from services.portal.deps import Portal
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration


async def test_a_pool_without_reset_still_rolls_back_what_was_left_open(
    base_settings: ServiceSettings, schema: str
) -> None:
    await migrate(base_settings.database_url, schema, MIGRATIONS)
    pool = await create_pool(base_settings.database_url, schema, application="test", max_size=1, reset_session=False)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute(
                "INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at) "
                "VALUES ('left-open', NULL, 'list', 'ok', now())"
            )
        async with pool.acquire() as conn:  # the one connection again
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM access_log WHERE citizen_ref = 'left-open'") == 0
            assert await conn.fetchval("SHOW search_path") == schema
    finally:
        await pool.close()


async def test_requests_and_the_relay_use_separate_pools(portal: PortalHarness) -> None:
    state: Any = app_state(portal.app, Portal)  # Any: the asserts read asyncpg's private `_reset`
    assert state.pool is not state.relay_pool
    assert state.pool._reset is not None  # requests: no reset query
    assert state.relay_pool._reset is None  # relay, consumer, housekeeping: asyncpg's full reset
