"""The consent gate under random interleavings of issue, revoke, give and withdraw, through the real database.

A hypothesis state machine drives the real handlers (services.consent.handlers) against a fresh PostgreSQL schema
per run and reads what they emit from the outbox table. Intake events go through `on_intake_event`, one transaction
each, and through `on_intake_batch` (the set-based path the idempotent consumer takes for a fetched batch), several
in one transaction; both must have the same effect. After every step two independent checks run:

* the differential check: the new outbox rows are exactly the events a small in-memory model of the gate expects,
  and the certificates table holds exactly the rows the model expects;
* the invariant check, from the outbox alone: a certificate is released only while its citizen's consent is given
  and at most once per consent period; while consent is given every certificate of the citizen that is not revoked
  has been released in the current period, in issue order; every withdrawal is followed by citizen.data_withdrawn;
  a revocation is forwarded only for a certificate that was released, and a revoked certificate is never released
  afterwards (nor ever, when the revocation came before the certificate).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test

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
from services.consent.domain import CertificateStatus, Consent, GiveOutcome, UnknownTextVersion, WithdrawOutcome
from services.consent.handlers import Gate, give_consent, on_intake_batch, on_intake_event, withdraw_consent
from services.consent.settings import ConsentSettings
from services.kit.db import Pool, create_pool, migrate
from services.kit.settings import ServiceSettings
from tests.harness import drop_schema

pytestmark = pytest.mark.integration

TEXT = "2025-1"
OLD_TEXT = "2024-1"
CITIZENS = 2  # few citizens, so that consent changes and arrivals meet often
T0 = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)
CITIZEN_REFS = [hashlib.sha256(f"stateful-citizen-{i}".encode()).hexdigest() for i in range(CITIZENS)]

T = TypeVar("T")

# One intake event of a batch: (what, citizen, which existing certificate when it names one).
IntakeOp = tuple[str, int, int]
INTAKE_BATCHES = st.lists(
    st.tuples(
        st.sampled_from(["issue", "redeliver", "revoke", "revoke_before_issue", "issue_after_revocation"]),
        st.integers(0, CITIZENS - 1),
        st.integers(0, 2**16),
    ),
    min_size=2,
    max_size=6,
)


@dataclass(frozen=True)
class CertRef:
    """A certificate the machine made: its id and the index of its citizen."""

    id: str
    citizen: int

    def __repr__(self) -> str:
        return f"CertRef({self.id[:8]}, citizen={self.citizen})"


@dataclass(frozen=True)
class Event:
    """One outbox row as the checks compare it."""

    topic: str
    type: str
    key: str
    citizen_ref: str
    certificate_id: str | None


@dataclass
class CitizenModel:
    ref: str
    consent: Consent = Consent.NONE
    arrived: list[str] = field(default_factory=list)  # certificates that reached the gate, in issue order
    periods: list[list[str]] = field(default_factory=list)  # releases per consent period (model)


@dataclass
class ObservedCitizen:
    """What the outbox alone says about one citizen."""

    given: bool = False
    periods: list[list[str]] = field(default_factory=list)
    last_type: str | None = None
    released_ever: set[str] = field(default_factory=set)


def event_of(topic: str, key: bytes, envelope: Envelope) -> Event:
    data = envelope.data
    certificate_id: str | None = None
    if isinstance(data, CertificateReleased):
        certificate_id = data.certificate.id
    elif isinstance(data, CertificateRevoked):
        certificate_id = data.certificate_id
    citizen_ref: str = data.citizen_ref  # type: ignore[attr-defined]  # every event here names its citizen
    return Event(topic, envelope.type, key.decode(), citizen_ref, certificate_id)


class GateMachine(RuleBasedStateMachine):
    issued: Bundle[CertRef] = Bundle("issued")
    revoked_unseen: Bundle[CertRef] = Bundle("revoked_unseen")
    database_url: ClassVar[str]  # set by the test, from the session's settings

    def __init__(self) -> None:
        super().__init__()
        self.schema = f"t_sm_{uuid.uuid4().hex}"
        self.settings = ConsentSettings(db_schema=self.schema, environment="test", text_versions=[OLD_TEXT, TEXT])
        self.released_topic = self.settings.topic(CONSENT_RELEASED.name)
        self.events_topic = self.settings.topic(CONSENT_EVENTS.name)
        self.factory = CertificateFactory(seed=4711)
        self.ticks = itertools.count()
        self.loop = asyncio.new_event_loop()
        self.pool: Pool | None = None
        try:
            self.run(migrate(self.database_url, self.schema, MIGRATIONS))
            self.pool = self.run(create_pool(self.database_url, self.schema, application="consent-stateful-test"))
        except BaseException:
            self.teardown()
            raise
        self.gate = Gate(settings=self.settings, pool=self.pool, clock=self.clock, on_commit=lambda: None)

        # The model.
        self.citizens = [CitizenModel(ref) for ref in CITIZEN_REFS]
        self.certificates: dict[str, Certificate] = {}
        self.owner: dict[str, int] = {}
        self.rows: dict[str, tuple[CertificateStatus, bool]] = {}  # id -> (status, ever_released)
        self.revoked_first: set[str] = set()  # revoked before the certificate reached the gate
        self.expected: list[Event] = []  # events the current step should emit
        self.delivered: list[CertRef] = []  # every certificate delivered, redeliveries included
        self.unseen: list[CertRef] = []  # revoked, never delivered yet

        # What the outbox said so far.
        self.last_outbox_id = 0
        self.observed = [ObservedCitizen() for _ in CITIZEN_REFS]
        self.forwarded: set[str] = set()

    # --- plumbing -----------------------------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def clock(self) -> datetime:
        return T0 + timedelta(seconds=next(self.ticks))

    def teardown(self) -> None:
        try:
            try:
                if self.pool is not None:
                    self.run(self.pool.close())
            finally:
                self.run(self._drop_schema())
            self.run(self.loop.shutdown_asyncgens())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    async def _drop_schema(self) -> None:
        await drop_schema(self.database_url, self.schema)

    def new_certificate(self, citizen: int) -> CertRef:
        person = self.factory.persons[citizen]
        cert = CERTIFICATE_ADAPTER.validate_python(self.factory.certificate(person=person, now=T0))
        assert cert.id not in self.certificates
        self.certificates[cert.id] = cert
        self.owner[cert.id] = citizen
        return CertRef(cert.id, citizen)

    def envelope(self, data: EventData) -> Envelope:
        return new_envelope(data, source="test", time=self.clock(), correlation_id="c")

    def issued_event(self, ref: CertRef) -> Envelope:
        self.delivered.append(ref)
        if ref in self.unseen:
            self.unseen.remove(ref)
        return self.envelope(
            CertificateIssued(
                citizen_ref=CITIZEN_REFS[ref.citizen],
                certificate=self.certificates[ref.id],
                test_patient=False,
                received_at=self.clock(),
            )
        )

    def revoked_event(self, ref: CertRef) -> Envelope:
        return self.envelope(
            CertificateRevoked(
                citizen_ref=CITIZEN_REFS[ref.citizen],
                certificate_id=ref.id,
                certificate_type=self.certificates[ref.id].type,
                revoked_at=self.clock(),
            )
        )

    def intake(self, envelope: Envelope) -> None:
        """One event as the idempotent consumer handles it on its own: in a transaction of its own."""

        async def consume() -> None:
            assert self.pool is not None
            async with self.pool.acquire() as conn, conn.transaction():
                await on_intake_event(self.gate, conn, envelope)

        self.run(consume())

    def intake_many(self, envelopes: list[Envelope]) -> None:
        """Several events as the idempotent consumer handles a fetched batch: one transaction, set-based."""

        async def consume() -> None:
            assert self.pool is not None
            async with self.pool.acquire() as conn, conn.transaction():
                await on_intake_batch(self.gate, conn, envelopes)

        self.run(consume())

    def deliver_certificate(self, ref: CertRef) -> None:
        self.intake(self.issued_event(ref))

    def deliver_revocation(self, ref: CertRef) -> None:
        self.intake(self.revoked_event(ref))

    def expect(self, topic: str, event_type: str, citizen: int, certificate_id: str | None = None) -> None:
        ref = CITIZEN_REFS[citizen]
        self.expected.append(Event(topic, event_type, ref, ref, certificate_id))

    # --- the model ----------------------------------------------------------------------------------------------

    def model_arrival(self, ref: CertRef) -> None:
        citizen = self.citizens[ref.citizen]
        if ref.id in self.rows:
            return  # a redelivery, or a revocation came first: nothing happens
        citizen.arrived.append(ref.id)
        if citizen.consent is Consent.GIVEN:
            self.rows[ref.id] = (CertificateStatus.RELEASED, True)
            citizen.periods[-1].append(ref.id)
            self.expect(self.released_topic, "certificate.released", ref.citizen, ref.id)
        else:
            self.rows[ref.id] = (CertificateStatus.HELD, False)

    def model_revocation(self, ref: CertRef) -> None:
        known = self.rows.get(ref.id)
        if known is None:
            self.rows[ref.id] = (CertificateStatus.REVOKED, False)
            self.revoked_first.add(ref.id)
        elif known[0] is CertificateStatus.REVOKED:
            pass
        elif known[1]:
            self.rows[ref.id] = (CertificateStatus.REVOKED, True)
            self.expect(self.released_topic, "certificate.revoked", ref.citizen, ref.id)
        else:
            self.rows[ref.id] = (CertificateStatus.REVOKED, False)

    def model_give(self, index: int) -> tuple[GiveOutcome, int]:
        citizen = self.citizens[index]
        if citizen.consent is Consent.GIVEN:
            return GiveOutcome.ALREADY_GIVEN, 0
        citizen.consent = Consent.GIVEN
        self.expect(self.events_topic, "consent.given", index)
        held = [c for c in citizen.arrived if self.rows[c][0] is CertificateStatus.HELD]
        for certificate_id in held:
            self.rows[certificate_id] = (CertificateStatus.RELEASED, True)
            self.expect(self.released_topic, "certificate.released", index, certificate_id)
        citizen.periods.append(list(held))
        return GiveOutcome.GIVEN, len(held)

    def model_withdraw(self, index: int) -> WithdrawOutcome:
        citizen = self.citizens[index]
        if citizen.consent is not Consent.GIVEN:
            return WithdrawOutcome.NOT_GIVEN
        citizen.consent = Consent.WITHDRAWN
        self.expect(self.events_topic, "consent.withdrawn", index)
        self.expect(self.released_topic, "citizen.data_withdrawn", index)
        for certificate_id in citizen.arrived:
            status, ever = self.rows[certificate_id]
            if status is CertificateStatus.RELEASED:
                self.rows[certificate_id] = (CertificateStatus.HELD, ever)
        return WithdrawOutcome.WITHDRAWN

    # --- rules --------------------------------------------------------------------------------------------------

    @rule(target=issued, citizen=st.integers(0, CITIZENS - 1))
    def issue(self, citizen: int) -> CertRef:
        ref = self.new_certificate(citizen)
        self.deliver_certificate(ref)
        self.model_arrival(ref)
        self.check_step()
        return ref

    @rule(ref=issued)
    def redeliver(self, ref: CertRef) -> None:
        self.deliver_certificate(ref)
        self.model_arrival(ref)
        self.check_step()

    @rule(ref=issued)
    def revoke(self, ref: CertRef) -> None:
        self.deliver_revocation(ref)
        self.model_revocation(ref)
        self.check_step()

    @rule(target=revoked_unseen, citizen=st.integers(0, CITIZENS - 1))
    def revoke_before_issue(self, citizen: int) -> CertRef:
        ref = self.new_certificate(citizen)
        self.unseen.append(ref)
        self.deliver_revocation(ref)
        self.model_revocation(ref)
        self.check_step()
        return ref

    @rule(target=issued, ref=consumes(revoked_unseen))
    def issue_after_revocation(self, ref: CertRef) -> CertRef:
        self.deliver_certificate(ref)
        self.model_arrival(ref)
        self.check_step()
        return ref

    @rule(ops=INTAKE_BATCHES)
    def intake_batch(self, ops: list[IntakeOp]) -> None:
        """A batch through on_intake_batch, which must have the effect of its events one by one."""
        envelopes: list[Envelope] = []
        for kind, citizen, pick in ops:
            if kind == "redeliver" and self.delivered:
                ref = self.delivered[pick % len(self.delivered)]
                envelopes.append(self.issued_event(ref))
                self.model_arrival(ref)
            elif kind == "revoke" and self.delivered:
                ref = self.delivered[pick % len(self.delivered)]
                envelopes.append(self.revoked_event(ref))
                self.model_revocation(ref)
            elif kind == "revoke_before_issue":
                ref = self.new_certificate(citizen)
                self.unseen.append(ref)
                envelopes.append(self.revoked_event(ref))
                self.model_revocation(ref)
            elif kind == "issue_after_revocation" and self.unseen:
                ref = self.unseen[pick % len(self.unseen)]
                envelopes.append(self.issued_event(ref))
                self.model_arrival(ref)
            else:
                ref = self.new_certificate(citizen)
                envelopes.append(self.issued_event(ref))
                self.model_arrival(ref)
        self.intake_many(envelopes)
        self.check_step()

    @rule(citizen=st.integers(0, CITIZENS - 1))
    def give(self, citizen: int) -> None:
        # Consent to a text that is no longer shown counts for nothing, whatever the state.
        with pytest.raises(UnknownTextVersion):
            self.run(
                give_consent(
                    self.gate, CITIZEN_REFS[citizen], text_version=OLD_TEXT, channel="portal", correlation_id="c"
                )
            )
        self.check_step()
        outcome = self.run(
            give_consent(self.gate, CITIZEN_REFS[citizen], text_version=TEXT, channel="portal", correlation_id="c")
        )
        assert outcome == self.model_give(citizen)
        new = self.check_step()
        if outcome[0] is GiveOutcome.GIVEN:
            # The batch released at consent comes right after consent.given, in issue order.
            assert new[0].type == "consent.given"
            batch = [e.certificate_id for e in new[1:]]
            arrived = self.citizens[citizen].arrived
            assert batch == sorted(batch, key=lambda c: arrived.index(c or ""))

    @rule(citizen=st.integers(0, CITIZENS - 1))
    def withdraw(self, citizen: int) -> None:
        outcome = self.run(withdraw_consent(self.gate, CITIZEN_REFS[citizen], channel="portal", correlation_id="c"))
        assert outcome is self.model_withdraw(citizen)
        self.check_step()

    # --- checks -------------------------------------------------------------------------------------------------

    def check_step(self) -> list[Event]:
        """The new outbox rows are exactly the expected ones, and each keeps the invariants."""
        rows = self.run(self._new_outbox_rows())
        new: list[Event] = []
        for row in rows:
            envelope = decode(row["value"])
            event = event_of(row["topic"], row["key"], envelope)
            self.observe(event, envelope)
            new.append(event)
            self.last_outbox_id = row["id"]
        expected, self.expected = self.expected, []
        assert new == expected
        return new

    async def _new_outbox_rows(self) -> list[asyncpg.Record]:
        assert self.pool is not None
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT id, topic, key, value FROM outbox WHERE id > $1 ORDER BY id", self.last_outbox_id
        )
        return rows

    def observe(self, event: Event, envelope: Envelope) -> None:
        """Invariants of one outbox row given the rows before it (independent of the model's rules)."""
        assert event.key == event.citizen_ref
        index = CITIZEN_REFS.index(event.citizen_ref)
        seen = self.observed[index]
        data = envelope.data
        if seen.last_type == "consent.withdrawn":
            assert isinstance(data, CitizenDataWithdrawn), "a withdrawal must be followed by citizen.data_withdrawn"
        if isinstance(data, ConsentGiven):
            assert event.topic == self.events_topic
            assert not seen.given, "consent.given twice without a withdrawal in between"
            seen.given = True
            seen.periods.append([])
        elif isinstance(data, ConsentWithdrawn):
            assert event.topic == self.events_topic
            assert seen.given, "consent.withdrawn without consent"
            seen.given = False
        elif isinstance(data, CitizenDataWithdrawn):
            assert event.topic == self.released_topic
            assert seen.last_type == "consent.withdrawn"
        elif isinstance(data, CertificateReleased):
            certificate_id = data.certificate.id
            assert event.topic == self.released_topic
            assert envelope.subject == certificate_id
            assert self.owner[certificate_id] == index
            assert data.certificate == self.certificates[certificate_id]  # the held document is the one issued
            assert seen.given, f"{certificate_id} released without consent"
            assert certificate_id not in seen.periods[-1], f"{certificate_id} released twice in one consent period"
            assert certificate_id not in self.forwarded, f"{certificate_id} released after its revocation"
            assert certificate_id not in self.revoked_first, f"{certificate_id} released though revoked first"
            seen.periods[-1].append(certificate_id)
            seen.released_ever.add(certificate_id)
        elif isinstance(data, CertificateRevoked):
            assert event.topic == self.released_topic
            assert data.certificate_id in seen.released_ever, "revocation forwarded for a never-released certificate"
            assert data.certificate_id not in self.forwarded, "revocation forwarded twice"
            self.forwarded.add(data.certificate_id)
        else:
            raise AssertionError(f"unexpected event {envelope.type}")
        seen.last_type = envelope.type

    @invariant()
    def consent_periods_are_complete(self) -> None:
        """While consent is given, every certificate not revoked has been released once in this period."""
        for index, (model, seen) in enumerate(zip(self.citizens, self.observed, strict=True)):
            assert seen.given == (model.consent is Consent.GIVEN), f"citizen {index}"
            assert seen.periods == model.periods, f"citizen {index}"
            if not seen.given:
                continue
            period = seen.periods[-1]
            not_revoked = [c for c in model.arrived if self.rows[c][0] is not CertificateStatus.REVOKED]
            assert set(not_revoked) <= set(period), f"citizen {index}: not released in this period"
            assert period == [c for c in model.arrived if c in period], f"citizen {index}: not in issue order"
            revoked_in_period = {c for c in period if self.rows[c][0] is CertificateStatus.REVOKED}
            assert revoked_in_period <= self.forwarded, f"citizen {index}: revoked after release, not forwarded"

    @invariant()
    def database_matches_the_model(self) -> None:
        rows = self.run(self._database_state())
        assert rows == {cid: (status, ever, CITIZEN_REFS[self.owner[cid]]) for cid, (status, ever) in self.rows.items()}
        consents = self.run(self._consents())
        for model in self.citizens:
            assert consents.get(model.ref, Consent.NONE) is model.consent

    async def _database_state(self) -> dict[str, tuple[CertificateStatus, bool, str]]:
        assert self.pool is not None
        rows = await self.pool.fetch("SELECT id, status, ever_released, citizen_ref FROM certificates")
        return {r["id"]: (CertificateStatus(r["status"]), r["ever_released"], r["citizen_ref"]) for r in rows}

    async def _consents(self) -> dict[str, Consent]:
        assert self.pool is not None
        rows = await self.pool.fetch("SELECT citizen_ref, consent FROM citizens")
        return {r["citizen_ref"]: Consent(r["consent"]) for r in rows}


def test_gate_under_random_interleavings(base_settings: ServiceSettings) -> None:
    class Machine(GateMachine):
        database_url = base_settings.database_url

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
