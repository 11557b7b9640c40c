"""Dispatch under faults: Försäkringskassan down for two minutes with sends queued, and dispatch SIGKILLed at
random points during 500 sends. Both are checked by counting what the simulator received."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.envelope import decode
from schemas.events import DispatchSucceeded
from schemas.topics import DISPATCH_OUTCOMES
from services.dispatch import repo
from services.dispatch.app import create_app, prepare
from services.dispatch.bootstrap import DispatchService
from services.dispatch.settings import DispatchSettings
from services.kit.db import create_pool
from services.kit.service import app_state
from tests.harness import ServiceProcess, connect, eventually, free_port, outbox_empty, read_topic, running
from tests.integration.dispatch.conftest import Feed, FkSim, ledger

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def delivered_count(settings: DispatchSettings, kind: str = "send") -> int:
    async with connect(settings.database_url, settings.db_schema) as conn:
        n: int = await conn.fetchval("SELECT count(*) FROM sends WHERE state = 'delivered' AND kind = $1", kind)
        return n


async def outcome_events(settings: DispatchSettings) -> dict[str, set[str]]:
    """Distinct outcome event ids per certificate (a relay republishing the same event after a crash is one)."""
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topic(DISPATCH_OUTCOMES.name), timeout=30)
    events: dict[str, set[str]] = defaultdict(set)
    for record in records:
        envelope = decode(record.value or b"")
        assert isinstance(envelope.data, DispatchSucceeded), envelope.data
        events[envelope.data.certificate_id].add(str(envelope.id))
    return events


@pytest.mark.timeout(600)  # the outage alone takes two minutes
async def test_fk_down_two_minutes_with_sends_queued_delivers_each_once_after_recovery(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim
) -> None:
    n = 100
    certs = [feed.certificate("LISJP") for _ in range(n)]
    outage = timedelta(minutes=2)
    down_until = datetime.now(UTC) + outage
    await fk.faults(down_until=down_until.isoformat())
    started = time.monotonic()
    app = create_app(dispatch_settings)
    async with running(app):
        for cert, ref in certs:
            await feed.release(cert, ref)
        for cert, ref in certs:
            await feed.request(cert.id, ref)
        sender = app_state(app, DispatchService).sender

        async def circuit_open() -> bool:
            workers = sender.workers
            return "FKASSA" in workers and workers["FKASSA"][0].breaker.state.value in ("open", "half_open")

        await eventually(circuit_open, timeout=30, what="the circuit to open")
        queued = await eventually(lambda: _ledger_rows(dispatch_settings, n), what="every send queued")
        assert all(r["state"] in ("pending", "in_flight") for r in queued)
        await eventually(
            lambda: _all_delivered(dispatch_settings, n), timeout=outage.total_seconds() + 60, interval=0.5,
            what="every queued send delivered after the outage",
        )  # fmt: skip
        recovered_after = time.monotonic() - started
        await eventually(
            lambda: outbox_empty(dispatch_settings.database_url, dispatch_settings.db_schema), what="outbox drained"
        )
    assert datetime.now(UTC) >= down_until
    received = await fk.received_counts()
    counts = [received[cert.id] for cert, _ in certs]
    attempts = sum(r["attempts"] for r in await ledger(dispatch_settings))
    events = await outcome_events(dispatch_settings)
    print(
        f"\n[dispatch-outage] queued={n} outage_s={outage.total_seconds():.0f} all_delivered_after_s="
        f"{recovered_after:.1f} received_once={counts.count(1)} lost={counts.count(0)} "
        f"duplicated={sum(1 for c in counts if c > 1)} ledger_attempts={attempts}"
    )
    assert counts == [1] * n
    assert all(len(events[cert.id]) == 1 for cert, _ in certs)
    # The breaker kept dispatch from hammering a recipient that was down: far fewer attempts than a retry loop.
    assert attempts < n * 3


async def _ledger_rows(settings: DispatchSettings, n: int) -> list[dict[str, object]]:
    rows = await ledger(settings)
    return rows if len(rows) >= n else []


async def _all_delivered(settings: DispatchSettings, n: int) -> bool:
    return await delivered_count(settings) >= n


def dispatch_process(settings: DispatchSettings, port: int, log: Path, **extra: str) -> ServiceProcess:
    """`minaintyg-dispatch` on `port` with short retry and lease times, its stderr appended to `log`."""
    env = {
        "DISPATCH_DB_SCHEMA": settings.db_schema,
        "DISPATCH_FK_ENDPOINT": settings.fk_endpoint,
        "MINAINTYG_TOPIC_PREFIX": settings.topic_prefix,
        "DISPATCH_RETRY_FIRST_SECONDS": "0.05",
        "DISPATCH_RETRY_MAX_SECONDS": "0.5",
        "DISPATCH_CALL_TIMEOUT_SECONDS": "2",
        "DISPATCH_LEASE_SECONDS": "15",
        "DISPATCH_BREAKER_OPEN_SECONDS": "0.2",
        "DISPATCH_POLL_SECONDS": "0.1",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    return ServiceProcess("minaintyg-dispatch", env, port_env="DISPATCH_PORT", port=port, log=log)


@pytest.mark.timeout(900)  # a loaded shared machine slows 20 restarts down
async def test_sigkill_at_random_points_during_500_sends_delivers_each_exactly_once(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim, unique: str, tmp_path: Path,
    no_processes: list[ServiceProcess],
) -> None:  # fmt: skip
    n, kills_wanted = 500, 20
    rng = random.Random(int(unique, 16))
    await prepare(dispatch_settings)
    pool = await create_pool(dispatch_settings.database_url, dispatch_settings.db_schema, application="t")
    try:
        fkassa = await repo.recipient(pool, "FKASSA")
        assert fkassa is not None
        # Fewer calls at a time, so more kills land while calls are under way.
        await repo.save_recipient(pool, fkassa.__class__(**{**fkassa.__dict__, "max_concurrency": 8}))
    finally:
        await pool.close()
    # Faults on top of the kills: errors, and answers lost after FK stored the certificate.
    await fk.faults(latency_ms=40, error_rate=0.05, drop_response_rate=0.03, seed=rng.randrange(2**31))
    certs = [feed.certificate("LISJP") for _ in range(n)]
    for cert, ref in certs:
        await feed.release(cert, ref)
    for cert, ref in certs:
        await feed.request(cert.id, ref)

    log = tmp_path / "dispatch.log"
    kill_points = sorted(rng.sample(range(5, n - 5), kills_wanted))
    process = dispatch_process(dispatch_settings, free_port(), log)
    no_processes.append(process)
    process.spawn()
    kills = 0
    started = time.monotonic()
    for point in kill_points:
        await eventually(
            functools.partial(_delivered_at_least, dispatch_settings, point), timeout=120, interval=0.005,
            what=f"{point} deliveries",
        )  # fmt: skip
        # A random moment after the count was reached: mid-call, mid-commit, mid-consume.
        await asyncio.sleep(rng.uniform(0, 0.05))
        process.kill()
        kills += 1
        process.spawn()
    await process.ready(within=60)
    await eventually(
        functools.partial(_delivered_at_least, dispatch_settings, n), timeout=180, interval=0.2, what="every send"
    )
    await eventually(
        lambda: outbox_empty(dispatch_settings.database_url, dispatch_settings.db_schema), what="outbox drained"
    )
    elapsed = time.monotonic() - started
    process.stop(timeout=30)

    received = await fk.received_counts()
    per_cert = Counter({cert.id: received[cert.id] for cert, _ in certs})
    delivered_once = sum(1 for c in per_cert.values() if c == 1)
    lost = sum(1 for c in per_cert.values() if c == 0)
    duplicated = sum(1 for c in per_cert.values() if c > 1)
    events = await outcome_events(dispatch_settings)
    outcome_dupes = sum(1 for cert, _ in certs if len(events[cert.id]) > 1)
    outcome_missing = sum(1 for cert, _ in certs if not events[cert.id])
    stats = await fk.stats()
    rows = await ledger(dispatch_settings)
    print(
        f"\n[dispatch-sigkill] in={n} kills={kills} at_delivered={kill_points} seconds={elapsed:.0f} out={n - lost} "
        f"received_once={delivered_once} lost={lost} duplicated={duplicated} "
        f"outcomes_missing={outcome_missing} outcomes_duplicated={outcome_dupes} "
        f"ledger_attempts={sum(r['attempts'] for r in rows)} fk_same_key_replays_total={stats['duplicates_by_key']} "
        f"fk_faults={stats['faults_injected_by_kind']}"
    )
    assert kills == kills_wanted
    assert lost == 0
    assert duplicated == 0
    assert delivered_once == n
    assert outcome_missing == 0
    assert outcome_dupes == 0
    assert all(r["state"] == "delivered" for r in rows)


async def _delivered_at_least(settings: DispatchSettings, count: int) -> bool:
    return await delivered_count(settings) >= count


async def test_a_call_cut_by_a_crash_is_taken_over_at_once_and_reconciled_not_sent_again(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim, tmp_path: Path,
    no_processes: list[ServiceProcess],
) -> None:  # fmt: skip
    """The process dies mid-call (FK stored the certificate, the answer was still on its way): the next process
    takes the row over through the dead one's advisory lock, long before the lease ends, and asks FK first."""
    await prepare(dispatch_settings)
    await fk.faults(latency_ms=5000)  # FK stores at once and answers after 5 s
    cert, ref = feed.certificate("LISJP")
    await feed.release(cert, ref)
    await feed.request(cert.id, ref)
    lease = {"DISPATCH_LEASE_SECONDS": "300", "DISPATCH_CALL_TIMEOUT_SECONDS": "30"}
    process = dispatch_process(dispatch_settings, free_port(), tmp_path / "dispatch.log", **lease)
    no_processes.append(process)
    process.spawn()
    await eventually(lambda: fk.receipts(cert.id), timeout=60, what="FK to store the certificate")
    process.kill()
    [row] = await ledger(dispatch_settings, cert.id)
    assert row["state"] == "in_flight"
    assert row["next_attempt_at"] > datetime.now(UTC) + timedelta(seconds=200)  # leased to the dead process

    await fk.faults()
    taken_over_from = time.monotonic()
    process.spawn()
    [outcome] = await feed.outcome_of(cert.id, timeout=60)
    took = time.monotonic() - taken_over_from
    process.stop(timeout=30)
    assert isinstance(outcome, DispatchSucceeded)
    assert took < 60  # not the 300 s lease
    [receipt] = await fk.receipts(cert.id)
    assert outcome.recipient_reference == receipt["receipt_id"]
    [row] = await ledger(dispatch_settings, cert.id)
    assert row["state"] == "delivered"
    assert row["attempts"] == 2  # the cut call, then the reconciliation that found it: no second POST
