"""Sessions end 12 hours after login however busy they are (the absolute lifetime), besides the 30-minute idle
timeout; both are enforced in the one query every request's session lookup makes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.portal.security import token_hash
from tests.integration.portal.conftest import PortalHarness

pytestmark = pytest.mark.integration


async def test_a_busy_session_ends_at_its_absolute_lifetime(portal: PortalHarness) -> None:
    assert portal.settings.session_absolute_seconds == 12 * 3600
    young, old = await portal.login(portal.citizen(0)), await portal.login(portal.citizen(1))
    # Both were active a moment ago; one was created 12 hours and a minute ago.
    await portal.pool.execute(
        "UPDATE sessions SET created_at = created_at - $2::interval, last_seen = now() WHERE id_hash = $1",
        token_hash(old.token),
        timedelta(hours=12, minutes=1),
    )
    assert (await portal.client.get("/api/v1/me", headers=young.cookie)).status_code == 200
    assert (await portal.client.get("/api/v1/me", headers=old.cookie)).status_code == 401
    listed = await portal.client.get("/intyg", headers=old.cookie)  # the list page has its own session query
    assert listed.status_code == 303
    assert listed.headers["location"] == "/?inloggning=kravs"
    # Once past its lifetime it is no longer touched, so the idle purge removes it.
    last_seen = await portal.pool.fetchval("SELECT last_seen FROM sessions WHERE id_hash = $1", token_hash(old.token))
    assert (await portal.client.get("/api/v1/me", headers=old.cookie)).status_code == 401
    assert (
        await portal.pool.fetchval("SELECT last_seen FROM sessions WHERE id_hash = $1", token_hash(old.token))
        == last_seen
    )
