"""Operator commands (`minaintyg-admin dispatch …`, run as the real command) and the final failure after the
deadline: the citizen's send request fails for good, the operator lists it and re-drives it (with their identity,
recorded on the ledger row and in the citizen's access log); there is no command that sends for a citizen."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from schemas.events import DispatchFailed, DispatchSucceeded
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.dispatch.app import create_app
from services.dispatch.settings import DispatchSettings
from tests.harness import connect, drop_schema, eventually, read_topic, run_command, running
from tests.integration.dispatch.conftest import Feed, FkSim, ledger

pytestmark = pytest.mark.integration


async def admin(settings: DispatchSettings, *args: str, **env: str) -> tuple[int, str]:
    env = {
        "DISPATCH_DB_SCHEMA": settings.db_schema,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "PORTAL_DB_SCHEMA": f"{settings.db_schema}_portal",
        **env,
    }
    return await run_command("minaintyg-admin", *args, env=env)


@pytest.fixture
async def portal_schema(dispatch_settings: DispatchSettings) -> AsyncIterator[str]:
    """The portal schema the admin tool writes the citizen's access log to (dropped afterwards)."""
    name = f"{dispatch_settings.db_schema}_portal"
    yield name
    await drop_schema(dispatch_settings.database_url, name)


async def test_the_citizens_send_fails_after_the_deadline_and_the_operator_re_drives_it(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim, portal_schema: str
) -> None:
    settings = dispatch_settings.model_copy(update={"deadline_hours": 2 / 3600})  # two seconds
    cert, ref = feed.certificate("LISJP")
    async with running(create_app(settings)):
        code, out = await admin(settings, "dispatch", "request", cert.id)
        assert code == 2, out  # gone: nothing is sent without the citizen's own action
        assert "invalid choice: 'request'" in out

        await fk.faults(down_until="2999-01-01T00:00:00Z")
        await feed.release(cert, ref)
        await eventually(lambda: _has_copy(settings, cert.id), what="the released copy")
        await feed.request(cert.id, ref)  # the citizen's request, as the portal makes it

        [failed] = await feed.outcome_of(cert.id, timeout=30)
        assert isinstance(failed, DispatchFailed)
        assert failed.reason_code == "DEADLINE_EXCEEDED"
        assert failed.reason.startswith("Försäkringskassan kunde inte ta emot intyget inom")
        assert failed.citizen_ref == ref

        code, out = await admin(settings, "dispatch", "list", "--failed")
        assert code == 0
        assert cert.id in out
        assert "DEADLINE_EXCEEDED" in out
        code, out = await admin(settings, "dispatch", "list", "--stuck", "--older-than", "0")
        assert cert.id not in out

        await fk.faults()
        assert await fk.receipts(cert.id) == []
        code, out = await admin(settings, "dispatch", "retry", cert.id)
        assert code == 1  # who does it must be said
        assert "--operator or MINAINTYG_OPERATOR" in out
        code, out = await admin(settings, "dispatch", "retry", cert.id, MINAINTYG_OPERATOR="anna.svensson")
        assert code == 0, out
        assert "due now" in out
        outcomes = await feed.outcome_of(cert.id, count=2, timeout=30)
        assert isinstance(outcomes[1], DispatchSucceeded)
        assert len(await fk.receipts(cert.id)) == 1
        [row] = await ledger(settings, cert.id)
        assert row["state"] == "delivered"
        assert row["retried_by"] == "anna.svensson"
        async with connect(settings.database_url, portal_schema) as conn:
            logged = await conn.fetch("SELECT * FROM access_log WHERE citizen_ref = $1", ref)
        assert [(r["certificate_id"], r["action"], r["actor"]) for r in logged] == [
            (cert.id, "operator_dispatch_retry", "anna.svensson")
        ]

        code, out = await admin(settings, "dispatch", "retry", "no-such-certificate", "--operator", "anna.svensson")
        assert code == 1
        assert "no unfinished or failed send" in out
    requests = await read_topic(settings.kafka_bootstrap_servers, settings.topic(PORTAL_DISPATCH_REQUESTS.name))
    assert [r.key for r in requests] == [cert.id.encode()]


async def _has_copy(settings: DispatchSettings, certificate_id: str) -> bool:
    async with connect(settings.database_url, settings.db_schema) as conn:
        return bool(await conn.fetchval("SELECT true FROM certificates WHERE id = $1", certificate_id))


async def test_the_dead_letter_topic_of_requests_can_be_replayed(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim, dispatch_app: httpx.AsyncClient
) -> None:
    await feed.raw(PORTAL_DISPATCH_REQUESTS.name, b"k", b"not json")
    dlq = dispatch_settings.topic(PORTAL_DISPATCH_REQUESTS.name) + ".dlq"
    await eventually(lambda: read_topic(dispatch_settings.kafka_bootstrap_servers, dlq), what="the dead letter")
    code, out = await admin(dispatch_settings, "dlq", "list", PORTAL_DISPATCH_REQUESTS.name)
    assert code == 0, out
    assert "InvalidEvent" in out
    code, out = await admin(dispatch_settings, "dlq", "replay", PORTAL_DISPATCH_REQUESTS.name)
    assert code == 1, out  # who replays must be said
    code, out = await admin(dispatch_settings, "dlq", "replay", PORTAL_DISPATCH_REQUESTS.name, "--operator", "ops1")
    assert code == 0, out
    assert "replayed 1 message(s)" in out
    # Replayed onto the request topic, it is consumed again (and, still poison, dead-lettered again).
    await eventually(
        lambda: _count_at_least(dispatch_settings.kafka_bootstrap_servers, dlq, 2), what="the second dead letter"
    )


async def _count_at_least(bootstrap: str, topic: str, n: int) -> bool:
    return len(await read_topic(bootstrap, topic)) >= n
