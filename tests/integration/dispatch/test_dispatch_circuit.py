"""Recovery after an outage: sends that failed while a recipient's circuit was open wait for the circuit, not for
their own backoff, and the probe that closes the circuit makes every waiting send of that recipient due at once.

Against an in-memory recipient (the registry's `memory` adapter kind), with individual backoffs of up to ten
minutes: without the mechanism the queue would take that long to drain after the recipient is back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch import repo
from services.dispatch.adapters import MEMORY_RECIPIENTS, InMemoryRecipient
from services.dispatch.app import create_app, prepare
from services.dispatch.bootstrap import DispatchService
from services.dispatch.domain import Circuit, Recipient
from services.dispatch.settings import DispatchSettings
from services.kit.db import create_pool
from services.kit.service import app_state
from services.kit.settings import ServiceSettings
from tests.harness import eventually, running
from tests.integration.dispatch.conftest import Feed, ledger, make_settings

pytestmark = pytest.mark.integration

RECIPIENT = "INSURER_OUTAGE"
BREAKER_FAILURES = 3


@pytest.fixture
def dispatch_settings(base_settings: ServiceSettings, schema: str, unique: str) -> DispatchSettings:
    """No simulator needed; a failed send's own backoff is up to ten minutes."""
    return make_settings(
        schema, unique, "http://127.0.0.1:9", retry_first_seconds=600.0, retry_max_seconds=600.0,
        breaker_failures=BREAKER_FAILURES, breaker_open_seconds=0.3, breaker_max_open_seconds=1.0,
    )  # fmt: skip


async def test_sends_queued_in_an_outage_wait_for_the_circuit_and_are_all_released_when_it_closes(
    dispatch_settings: DispatchSettings, feed: Feed
) -> None:
    n = 30
    endpoint = f"memory://{dispatch_settings.db_schema}"
    double = MEMORY_RECIPIENTS.setdefault(endpoint, InMemoryRecipient())
    double.down = True
    await prepare(dispatch_settings)
    pool = await create_pool(dispatch_settings.database_url, dispatch_settings.db_schema, application="t")
    try:
        await repo.save_recipient(
            pool,
            Recipient(RECIPIENT, "Försäkringsbolaget O", True, frozenset({"LISJP"}), endpoint, "memory", False, 32),
        )
    finally:
        await pool.close()
    certs = [feed.certificate("LISJP") for _ in range(n)]
    app = create_app(dispatch_settings)
    async with running(app):
        for cert, ref in certs:
            await feed.release(cert, ref)
        for cert, ref in certs:
            await feed.request(cert.id, ref, RECIPIENT)

        async def queued_and_circuit_open() -> bool:
            workers = app_state(app, DispatchService).sender.workers
            if RECIPIENT not in workers or workers[RECIPIENT][0].breaker.state is Circuit.CLOSED:
                return False
            rows = await ledger(dispatch_settings)
            return len(rows) == n and sum(1 for r in rows if r["attempts"] >= 1) >= n // 2

        await eventually(queued_and_circuit_open, timeout=60, interval=0.2, what="the sends tried in the outage")
        rows = await ledger(dispatch_settings)
        assert all(r["state"] in ("pending", "in_flight") for r in rows)
        # Only the failures before the circuit opened backed off on their own; the others wait for the circuit.
        later = datetime.now(UTC) + timedelta(seconds=30)
        assert sum(1 for r in rows if r["next_attempt_at"] > later) <= BREAKER_FAILURES - 1
        calls_in_outage = double.calls
        assert calls_in_outage < 2 * n  # sends waiting for the circuit were not called again and again

        double.down = False
        back = time.monotonic()

        async def all_delivered() -> bool:
            return all(r["state"] == "delivered" for r in await ledger(dispatch_settings))

        # Far less than the individual backoffs (up to 600 s): the closing probe released every waiting send.
        await eventually(all_delivered, timeout=20, interval=0.2, what="every send delivered after the outage")
        drained_in = time.monotonic() - back
    assert [double.deliveries(cert.id) for cert, _ in certs] == [1] * n
    print(
        f"\n[dispatch-circuit] queued={n} drained_after_recovery_s={drained_in:.1f} calls_in_outage={calls_in_outage}"
    )
