"""Consent's gate under real concurrency: per-citizen serialisation by the citizen's row lock, through PostgreSQL.

About 300 operations on 3 citizens (certificates issued, redelivered and revoked, some before they are issued; intake
batches through the set-based handler; consent given and withdrawn) are fired at once with asyncio.gather over a
pool of 10 connections, each in its own transaction as the handlers and the idempotent consumer run them. The
outcome is then checked from the outbox, in id order per citizen, and from the certificates table:

* every certificate.released lies inside a consent period (between consent.given and the next consent.withdrawn);
* no certificate is released twice within one period, and a period's releases are in issue order (`seq`);
* every consent.withdrawn is followed by citizen.data_withdrawn, and given/withdrawn alternate;
* a revoked certificate was forwarded (certificate.revoked) exactly once if it was ever released and never
  otherwise, and is not released after that;
* for a citizen whose final state is given, every certificate not revoked was released exactly once in the final
  period.

Then consent is given for every citizen and the checks run again, so the last one applies to all three.

Two further tests show the lock itself, deterministically: with one transaction of a citizen left open, a consent
change for that citizen waits for it (seen in pg_stat_activity) and then sees what it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.certificate import CERTIFICATE_ADAPTER, Certificate
from schemas.envelope import Envelope, decode, new_envelope
from schemas.events import (
    CertificateIssued,
    CertificateReleased,
    CertificateRevoked,
    CitizenDataWithdrawn,
    ConsentGiven,
    ConsentWithdrawn,
    EventData,
)
from schemas.topics import CONSENT_EVENTS, CONSENT_RELEASED
from services.consent.app import MIGRATIONS
from services.consent.domain import GiveOutcome, WithdrawOutcome
from services.consent.handlers import (
    Gate,
    certificate_arrived,
    give_consent,
    on_intake_batch,
    on_intake_event,
    withdraw_consent,
)
from services.consent.settings import ConsentSettings
from services.kit.db import Connection, Pool, create_pool, migrate
from services.kit.settings import ServiceSettings
from tests.harness import eventually

pytestmark = pytest.mark.integration

SEED = 20260316
CITIZENS = 3
POOL_SIZE = 10
TEXT = "2025-1"
T0 = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
CITIZEN_REFS = [hashlib.sha256(f"concurrency-citizen-{i}".encode()).hexdigest() for i in range(CITIZENS)]

# Operations per kind; batches carry 2-5 intake events each.
ISSUES, REDELIVERIES, REVOCATIONS, GIVES, WITHDRAWALS, BATCHES = 120, 15, 45, 50, 50, 20


@dataclass(frozen=True)
class Op:
    kind: str  # issue | redeliver | revoke | give | withdraw | batch
    citizen: int
    events: tuple[EventData, ...] = ()


@dataclass
class Audit:
    """What the outbox says, and every broken rule found on the way."""

    violations: list[str] = field(default_factory=list)
    given: dict[str, bool] = field(default_factory=dict)
    periods: dict[str, list[list[str]]] = field(default_factory=lambda: defaultdict(list))
    released: Counter[str] = field(default_factory=Counter)
    forwarded: dict[str, int] = field(default_factory=dict)  # certificate -> outbox id of the forwarded revocation
    withdrawals: int = 0

    def fail(self, message: str) -> None:
        self.violations.append(message)


class Clock:
    def __init__(self) -> None:
        self.ticks = itertools.count()

    def __call__(self) -> datetime:
        return T0 + timedelta(milliseconds=next(self.ticks))


def plan(factory: CertificateFactory, rng: random.Random) -> tuple[list[Op], dict[str, Certificate]]:
    """The operations, shuffled with a fixed seed: revocations may come before their certificate."""
    certificates: dict[str, Certificate] = {}
    owner: dict[str, int] = {}

    def new_certificate(citizen: int) -> CertificateIssued:
        cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate(person=factory.persons[citizen], now=T0))
        certificates[cert.id] = cert
        owner[cert.id] = citizen
        return CertificateIssued(
            citizen_ref=CITIZEN_REFS[citizen], certificate=cert, test_patient=False, received_at=T0
        )

    def revocation(certificate_id: str) -> CertificateRevoked:
        return CertificateRevoked(
            citizen_ref=CITIZEN_REFS[owner[certificate_id]],
            certificate_id=certificate_id,
            certificate_type=certificates[certificate_id].type,
            revoked_at=T0,
        )

    issued = [new_certificate(rng.randrange(CITIZENS)) for _ in range(ISSUES)]
    ops = [Op("issue", CITIZEN_REFS.index(d.citizen_ref), (d,)) for d in issued]
    ops += [Op("redeliver", CITIZEN_REFS.index(d.citizen_ref), (d,)) for d in rng.sample(issued, REDELIVERIES)]
    ops += [
        Op("revoke", owner[d.certificate.id], (revocation(d.certificate.id),)) for d in rng.sample(issued, REVOCATIONS)
    ]
    for _ in range(BATCHES):
        events: list[EventData] = []
        for _ in range(rng.randrange(2, 6)):
            roll = rng.random()
            if roll < 0.5:
                events.append(new_certificate(rng.randrange(CITIZENS)))
            elif roll < 0.7:
                events.append(rng.choice(issued))
            else:
                events.append(revocation(rng.choice(list(certificates))))
        ops.append(Op("batch", -1, tuple(events)))
    ops += [Op("give", rng.randrange(CITIZENS)) for _ in range(GIVES)]
    ops += [Op("withdraw", rng.randrange(CITIZENS)) for _ in range(WITHDRAWALS)]
    rng.shuffle(ops)
    return ops, certificates


def envelope_of(data: EventData, clock: Clock) -> Envelope:
    return new_envelope(data, source="test", time=clock(), correlation_id="c")


def runner(gate: Gate, pool: Pool, clock: Clock) -> Callable[[Op], Awaitable[None]]:
    async def run(op: Op) -> None:
        ref = CITIZEN_REFS[op.citizen] if op.citizen >= 0 else ""
        if op.kind == "give":
            await give_consent(gate, ref, text_version=TEXT, channel="portal", correlation_id="c")
        elif op.kind == "withdraw":
            await withdraw_consent(gate, ref, channel="portal", correlation_id="c")
        elif op.kind == "batch":
            envelopes = [envelope_of(d, clock) for d in op.events]
            async with pool.acquire() as conn, conn.transaction():
                await on_intake_batch(gate, conn, envelopes)
        else:
            envelope = envelope_of(op.events[0], clock)
            async with pool.acquire() as conn, conn.transaction():
                await on_intake_event(gate, conn, envelope)

    return run


async def lock_waiters(conn: Connection, application: str) -> int:
    """How many of the pool's sessions wait for a lock right now."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", application
    )
    return n


async def sample_lock_waits(database_url: str, application: str, done: asyncio.Event) -> int:
    """The most sessions seen waiting for a lock at once while the operations run (for the summary)."""
    conn = await asyncpg.connect(database_url)
    most = 0
    try:
        while not done.is_set():
            most = max(most, await lock_waiters(conn, application))
            with contextlib.suppress(TimeoutError):  # sample every 2 ms until the operations are done
                await asyncio.wait_for(done.wait(), timeout=0.002)
    finally:
        await conn.close()
    return most


async def audit(pool: Pool, settings: ConsentSettings) -> Audit:
    """Walk the outbox in id order, per citizen."""
    events_topic, released_topic = settings.topic(CONSENT_EVENTS.name), settings.topic(CONSENT_RELEASED.name)
    seq = {r["id"]: r["seq"] for r in await pool.fetch("SELECT id, seq FROM certificates")}
    found = Audit(given={ref: False for ref in CITIZEN_REFS})
    last_type: dict[str, str] = {}
    for row in await pool.fetch("SELECT id, topic, key, value FROM outbox ORDER BY id"):
        envelope = decode(row["value"])
        data = envelope.data
        ref: str = data.citizen_ref  # type: ignore[attr-defined]  # every event here names its citizen
        at = f"outbox {row['id']} ({envelope.type}, citizen {CITIZEN_REFS.index(ref)})"
        if row["key"] != ref.encode():
            found.fail(f"{at}: key is not the citizen")
        if last_type.get(ref) == "consent.withdrawn" and not isinstance(data, CitizenDataWithdrawn):
            found.fail(f"{at}: consent.withdrawn not followed by citizen.data_withdrawn")
        topic_ok = row["topic"] == (
            events_topic if isinstance(data, ConsentGiven | ConsentWithdrawn) else released_topic
        )
        if not topic_ok:
            found.fail(f"{at}: on topic {row['topic']}")
        if isinstance(data, ConsentGiven):
            if found.given[ref]:
                found.fail(f"{at}: consent.given while given")
            found.given[ref] = True
            found.periods[ref].append([])
        elif isinstance(data, ConsentWithdrawn):
            if not found.given[ref]:
                found.fail(f"{at}: consent.withdrawn while not given")
            found.given[ref] = False
            found.withdrawals += 1
        elif isinstance(data, CitizenDataWithdrawn):
            if last_type.get(ref) != "consent.withdrawn":
                found.fail(f"{at}: citizen.data_withdrawn without a withdrawal just before")
        elif isinstance(data, CertificateReleased):
            cid = data.certificate.id
            if not found.given[ref]:
                found.fail(f"{at}: {cid} released outside a consent period")
            else:
                period = found.periods[ref][-1]
                if cid in period:
                    found.fail(f"{at}: {cid} released twice in one consent period")
                if period and seq.get(period[-1], -1) >= seq.get(cid, -1):
                    found.fail(f"{at}: {cid} released out of issue order")
                period.append(cid)
            if cid in found.forwarded:
                found.fail(f"{at}: {cid} released after its revocation was forwarded")
            found.released[cid] += 1
        elif isinstance(data, CertificateRevoked):
            cid = data.certificate_id
            if cid not in found.released:
                found.fail(f"{at}: revocation of never-released {cid} forwarded")
            if cid in found.forwarded:
                found.fail(f"{at}: revocation of {cid} forwarded twice")
            found.forwarded[cid] = row["id"]
        else:
            found.fail(f"{at}: unexpected event")
        last_type[ref] = envelope.type
    await check_tables(pool, found)
    return found


async def check_tables(pool: Pool, found: Audit) -> None:
    consents = {r["citizen_ref"]: r["consent"] for r in await pool.fetch("SELECT citizen_ref, consent FROM citizens")}
    for ref in CITIZEN_REFS:
        if (consents.get(ref) == "given") != found.given[ref]:
            found.fail(f"citizen {CITIZEN_REFS.index(ref)}: table says {consents.get(ref)}, outbox disagrees")
    rows = await pool.fetch("SELECT id, citizen_ref, status, ever_released FROM certificates ORDER BY seq")
    for row in rows:
        cid, ref = row["id"], row["citizen_ref"]
        if row["ever_released"] != (cid in found.released):
            found.fail(f"{cid}: ever_released={row['ever_released']} but released {found.released[cid]} times")
        if row["status"] == "revoked" and (cid in found.released) != (cid in found.forwarded):
            found.fail(f"{cid}: revoked, released={cid in found.released}, forwarded={cid in found.forwarded}")
        if row["status"] != "revoked" and cid in found.forwarded:
            found.fail(f"{cid}: revocation forwarded but the certificate is {row['status']}")
        if row["status"] == "released" and not found.given[ref]:
            found.fail(f"{cid}: released while the citizen's consent is not given")
    for ref in CITIZEN_REFS:
        if not found.given[ref]:
            continue
        final = found.periods[ref][-1]
        not_revoked = {r["id"] for r in rows if r["citizen_ref"] == ref and r["status"] != "revoked"}
        missing = not_revoked - set(final)
        if missing:
            found.fail(f"citizen {CITIZEN_REFS.index(ref)}: {len(missing)} certificates not released in final period")
        counts = Counter(final)
        if any(n != 1 for n in counts.values()):
            found.fail(f"citizen {CITIZEN_REFS.index(ref)}: a certificate released more than once in final period")


async def test_gate_serialises_each_citizen_under_concurrent_operations(
    base_settings: ServiceSettings, schema: str
) -> None:
    settings = ConsentSettings(db_schema=schema, environment="test")
    application = f"consent-{schema}"
    await migrate(base_settings.database_url, schema, MIGRATIONS)
    pool = await create_pool(base_settings.database_url, schema, application=application, max_size=POOL_SIZE)
    try:
        clock = Clock()
        gate = Gate(settings=settings, pool=pool, clock=clock, on_commit=lambda: None)
        ops, certificates = plan(CertificateFactory(seed=SEED), random.Random(SEED))
        run = runner(gate, pool, clock)

        done = asyncio.Event()
        sampler = asyncio.create_task(sample_lock_waits(base_settings.database_url, application, done))
        try:
            await asyncio.gather(*(run(op) for op in ops))
        finally:
            done.set()
            most_waiting = await sampler

        found = await audit(pool, settings)
        assert found.violations == []
        stored = {r["id"] for r in await pool.fetch("SELECT id FROM certificates")}
        assert stored == set(certificates)  # nothing lost: every certificate or its revocation is there
        storm = found

        # Consent for everyone at the end: the completeness rule then applies to every citizen.
        await asyncio.gather(*(run(Op("give", c)) for c in range(CITIZENS)))
        found = await audit(pool, settings)
        assert found.violations == []
        assert all(found.given.values())
        assert await pool.fetchval("SELECT count(*) FROM certificates WHERE status = 'held'") == 0

        periods = sum(len(p) for p in storm.periods.values())
        print(
            f"\nconsent concurrency: operations={len(ops)} releases={sum(storm.released.values())} "
            f"periods={periods} withdrawals={storm.withdrawals} forwarded_revocations={len(storm.forwarded)} "
            f"most_sessions_waiting_for_a_lock={most_waiting} violations={len(storm.violations)}"
        )
    finally:
        await pool.close()


# --- the lock itself, deterministically: an operation waits for the citizen's open transaction --------------------


@pytest.fixture
async def gate(base_settings: ServiceSettings, schema: str) -> AsyncIterator[Gate]:
    await migrate(base_settings.database_url, schema, MIGRATIONS)
    pool = await create_pool(base_settings.database_url, schema, application=f"consent-{schema}", max_size=4)
    try:
        yield Gate(
            settings=ConsentSettings(db_schema=schema, environment="test"),
            pool=pool,
            clock=Clock(),
            on_commit=lambda: None,
        )
    finally:
        await pool.close()


def issued(factory: CertificateFactory, citizen: int) -> CertificateIssued:
    cert = CERTIFICATE_ADAPTER.validate_python(factory.certificate(person=factory.persons[citizen], now=T0))
    return CertificateIssued(citizen_ref=CITIZEN_REFS[citizen], certificate=cert, test_patient=False, received_at=T0)


async def outbox_types(gate: Gate) -> list[tuple[str, str | None]]:
    rows = await gate.pool.fetch("SELECT value FROM outbox ORDER BY id")
    return [(e.type, e.subject) for e in (decode(r["value"]) for r in rows)]


async def until_waiting(gate: Gate, schema: str) -> None:
    async with gate.pool.acquire() as conn:
        await eventually(lambda: lock_waiters(conn, f"consent-{schema}"), timeout=10, what="a session to wait")


async def test_consent_waits_for_an_arrival_in_flight_and_releases_it(gate: Gate, schema: str) -> None:
    """Without the lock, consent would read the held certificates before the arrival commits, and the certificate,
    held under a consent that is no longer current, would stay held while consent is given."""
    # The citizen is known already (a withdrawal without consent creates the row and changes nothing), so only the
    # row lock, not the insert of a new row, can make the consent wait.
    assert await withdraw_consent(gate, CITIZEN_REFS[0], channel="portal", correlation_id="c") is (
        WithdrawOutcome.NOT_GIVEN
    )
    data = issued(CertificateFactory(seed=SEED), 0)
    async with gate.pool.acquire() as conn:
        arrival = conn.transaction()
        await arrival.start()
        await certificate_arrived(gate, conn, data, envelope_of(data, Clock()))  # held: no consent yet
        consent = asyncio.create_task(
            give_consent(gate, CITIZEN_REFS[0], text_version=TEXT, channel="portal", correlation_id="c")
        )
        await until_waiting(gate, gate.settings.db_schema)
        assert not consent.done()
        await arrival.commit()
    assert await consent == (GiveOutcome.GIVEN, 1)
    assert await outbox_types(gate) == [("consent.given", None), ("certificate.released", data.certificate.id)]
    assert await gate.pool.fetchval("SELECT status FROM certificates") == "released"


async def test_withdrawal_waits_for_a_release_in_flight_and_holds_it_again(gate: Gate, schema: str) -> None:
    """Without the lock, the withdrawal would miss a release decided under the old consent and leave it released."""
    await give_consent(gate, CITIZEN_REFS[1], text_version=TEXT, channel="portal", correlation_id="c")
    data = issued(CertificateFactory(seed=SEED), 1)
    async with gate.pool.acquire() as conn:
        arrival = conn.transaction()
        await arrival.start()
        await certificate_arrived(gate, conn, data, envelope_of(data, Clock()))  # released: consent is given
        withdrawal = asyncio.create_task(withdraw_consent(gate, CITIZEN_REFS[1], channel="portal", correlation_id="c"))
        await until_waiting(gate, gate.settings.db_schema)
        assert not withdrawal.done()
        await arrival.commit()
    assert await withdrawal is WithdrawOutcome.WITHDRAWN
    assert await outbox_types(gate) == [
        ("consent.given", None),
        ("certificate.released", data.certificate.id),
        ("consent.withdrawn", None),
        ("citizen.data_withdrawn", None),
    ]
    assert await gate.pool.fetchval("SELECT status FROM certificates") == "held"
