"""Mina intyg in one statement (session check, idle clock, the list and its access-log row): every guarantee the
separate steps gave still holds, also across two portal processes sharing the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.portal.app import create_app
from services.portal.security import token_hash
from tests.harness import eventually, in_process
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration


@asynccontextmanager
async def second_portal(portal: PortalHarness) -> AsyncIterator[httpx.AsyncClient]:
    """Another portal process on the same database (consumer and relay off)."""
    settings = portal.settings.model_copy(update={"consumer_enabled": False, "relay_enabled": False})
    async with in_process(create_app(settings), settings.public_origin) as client:
        yield client


async def list_rows(portal: PortalHarness, citizen: Citizen) -> int:
    n: int = await portal.pool.fetchval(
        "SELECT count(*) FROM access_log WHERE citizen_ref = $1 AND action = 'list'", citizen.ref
    )
    return n


async def last_seen(portal: PortalHarness, citizen: Citizen) -> datetime:
    seen: datetime = await portal.pool.fetchval(
        "SELECT last_seen FROM sessions WHERE id_hash = $1", token_hash(citizen.token)
    )
    return seen


async def test_logout_in_one_process_ends_the_list_in_another_at_once(portal: PortalHarness) -> None:
    anna = await portal.login(portal.citizen(8))
    first = await portal.release(anna)
    second = await portal.release(anna)

    async def both() -> bool:
        return len(await portal.listed(anna)) == 2

    await eventually(both, what="anna's two certificates")
    newest_first = sorted([first, second], key=lambda c: c["signed_at"], reverse=True)
    assert await portal.listed(anna) == [c["id"] for c in newest_first]
    async with second_portal(portal) as other:
        page = await other.get("/intyg", headers=anna.cookie)
        assert page.status_code == 200
        assert first["id"] in page.text
        assert second["id"] in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        logout = await portal.client.post("/logout", headers=anna.posting(), data={"csrf_token": anna.csrf})
        assert logout.status_code == 303
        rows = await list_rows(portal, anna)
        refused = await other.get("/intyg", headers=anna.cookie)
        assert refused.status_code == 303
        assert refused.headers["location"] == "/?inloggning=kravs"
        assert (await other.get("/api/v1/certificates", headers=anna.cookie)).status_code == 401
        assert await list_rows(portal, anna) == rows  # nothing listed, nothing logged


async def test_every_list_is_logged_and_restarts_the_idle_clock(portal: PortalHarness) -> None:
    bo = await portal.login(portal.citizen(9))
    empty = await portal.client.get("/intyg", headers=bo.cookie)
    assert empty.status_code == 200
    assert "Du har inga intyg ännu" in empty.text
    assert await list_rows(portal, bo) == 1

    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    await portal.pool.execute("UPDATE sessions SET last_seen = $2 WHERE id_hash = $1", token_hash(bo.token),
                              ten_minutes_ago)  # fmt: skip
    assert (await portal.client.get("/intyg/arkiverade", headers=bo.cookie)).status_code == 200
    assert await last_seen(portal, bo) > ten_minutes_ago + timedelta(minutes=9)  # restarted
    assert (await portal.client.get("/api/v1/certificates?archived=true", headers=bo.cookie)).status_code == 200
    assert await list_rows(portal, bo) == 3

    await portal.pool.execute("UPDATE sessions SET last_seen = $2 WHERE id_hash = $1", token_hash(bo.token),
                              datetime.now(UTC) - timedelta(minutes=31))  # fmt: skip
    timed_out = await portal.client.get("/intyg", headers=bo.cookie)
    assert timed_out.status_code == 303
    assert timed_out.headers["location"] == "/?inloggning=kravs"
    assert (await portal.client.get("/api/v1/certificates", headers=bo.cookie)).status_code == 401
    assert await list_rows(portal, bo) == 3

    carl = await portal.login(portal.citizen(10), consent=False)
    no_consent = await portal.client.get("/intyg", headers=carl.cookie)
    assert no_consent.status_code == 303
    assert no_consent.headers["location"] == "/samtycke"
    assert (await portal.client.get("/api/v1/certificates", headers=carl.cookie)).status_code == 403
    assert await list_rows(portal, carl) == 0
    assert (
        await portal.client.get("/intyg", headers={"Cookie": "__Host-minaintyg-session=" + "x" * 200})
    ).status_code == 303
