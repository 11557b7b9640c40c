"""Dispatch's rules, pure (no I/O; the clock and the random source are passed in).

- the registry rules: may this recipient take this certificate, asked by this citizen?
- the ledger row's state machine: pending → in_flight → delivered | failed, with retries on a durable schedule;
  a row found in flight (a crash, a lost answer) is reconciled by asking the recipient before any new call;
- the retry schedule (exponential backoff with full jitter) and a circuit breaker per recipient.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.certificate_types import CERTIFICATE_TYPES
from schemas.events import FailureCode


@dataclass(frozen=True)
class Recipient:
    """One row of the recipient registry."""

    id: str
    name: str
    active: bool
    certificate_types: frozenset[str]
    endpoint: str
    adapter_kind: str
    trusted_for_protected_identities: bool
    max_concurrency: int


class CertificateStatus(StrEnum):
    RELEASED = "released"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"  # the citizen withdrew consent: the copy is gone


@dataclass(frozen=True)
class KnownCertificate:
    citizen_ref: str
    type: str
    test_patient: bool
    status: CertificateStatus


class SendState(StrEnum):
    PENDING = "pending"  # nothing of it can have reached the recipient since the last definite answer
    IN_FLIGHT = "in_flight"  # a call was made and its result is unknown: ask the recipient before calling again
    DELIVERED = "delivered"
    FAILED = "failed"


class SendKind(StrEnum):
    SEND = "send"
    REVOKE = "revoke"


def reason(code: FailureCode, recipient_name: str, *, certificate_type: str = "", deadline_hours: float = 24) -> str:
    """The Swedish text the portal shows for a failure."""
    type_name = CERTIFICATE_TYPES[certificate_type].name if certificate_type in CERTIFICATE_TYPES else certificate_type
    texts: dict[FailureCode, str] = {
        "REVOKED": "Intyget har makulerats av vården och kan inte skickas.",
        "TYPE_NOT_ACCEPTED": f"{recipient_name} tar inte emot intyg av typen {type_name}.",
        "TEST_PATIENT": "Intyget gäller en testpatient och skickas inte till någon mottagare.",
        "NO_CONSENT": "Du har återkallat ditt samtycke. Intyget kan inte skickas förrän du har gett samtycke igen.",
        "UNKNOWN_CERTIFICATE": "Intyget finns inte i Mina intyg och kan inte skickas.",
        "RECIPIENT_INACTIVE": f"Mottagaren {recipient_name} tar inte emot intyg via Mina intyg just nu.",
        "DEADLINE_EXCEEDED": f"{recipient_name} kunde inte ta emot intyget inom {deadline_hours:g} timmar. "
        "Intyget skickades inte. Försök igen senare.",
        "REJECTED_BY_RECIPIENT": f"{recipient_name} tog inte emot intyget. Kontakta {recipient_name}.",
    }
    return texts[code]


# --- a request ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refuse:
    code: FailureCode


@dataclass(frozen=True)
class AlreadySent:
    """Delivered before: the answer is the earlier delivery, with no new call."""


@dataclass(frozen=True)
class AlreadyQueued:
    """A send of it is on its way: its outcome answers this request too."""


@dataclass(frozen=True)
class Queue:
    """Write a ledger row (or put a failed one back in the queue) and send."""


RequestDecision = Refuse | AlreadySent | AlreadyQueued | Queue


def refusal(recipient: Recipient | None, certificate: KnownCertificate | None, citizen_ref: str) -> Refuse | None:
    """The registry rules: why `recipient` may not get `certificate` for this citizen, or None if it may."""
    if recipient is None or not recipient.active:
        return Refuse("RECIPIENT_INACTIVE")
    if certificate is None or certificate.citizen_ref != citizen_ref:
        # Another citizen's certificate is unknown to this one: the answer must not tell that it exists.
        return Refuse("UNKNOWN_CERTIFICATE")
    if certificate.status is CertificateStatus.REVOKED:
        return Refuse("REVOKED")
    if certificate.status is CertificateStatus.WITHDRAWN:
        return Refuse("NO_CONSENT")
    if certificate.test_patient:
        return Refuse("TEST_PATIENT")
    if certificate.type not in recipient.certificate_types:
        return Refuse("TYPE_NOT_ACCEPTED")
    return None


def decide_request(
    recipient: Recipient | None,
    certificate: KnownCertificate | None,
    citizen_ref: str,
    existing: SendState | None,
) -> RequestDecision:
    """What a citizen's request to send a certificate to a recipient leads to."""
    if existing is SendState.DELIVERED and certificate is not None and certificate.citizen_ref == citizen_ref:
        return AlreadySent()
    refused = refusal(recipient, certificate, citizen_ref)
    if refused is not None:
        return refused
    if existing in (SendState.PENDING, SendState.IN_FLIGHT):
        return AlreadyQueued()
    return Queue()


# --- the retry schedule -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrySchedule:
    first_seconds: float = 1.0
    max_seconds: float = 300.0

    def ceiling(self, attempt: int) -> float:
        """The largest pause after failed attempt `attempt` (1-based): doubling, capped."""
        return min(self.max_seconds, self.first_seconds * 2.0 ** min(max(attempt, 1) - 1, 60))

    def pause(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the ceiling, so many retries after an outage do not come at once."""
        return rng.uniform(0, self.ceiling(attempt))


# --- the ledger row's state machine ------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A ledger row as a sender claimed it (the state it was in before the claim)."""

    kind: SendKind
    state_before: SendState
    attempts: int  # including this claim
    deadline_at: datetime
    certificate: CertificateStatus | None  # None: dispatch no longer holds the certificate


@dataclass(frozen=True)
class Call:
    """Call the recipient (send, or forward the revocation)."""


@dataclass(frozen=True)
class Reconcile:
    """Ask the recipient whether it already has it, then decide again with the answer."""


@dataclass(frozen=True)
class Fail:
    code: FailureCode


@dataclass(frozen=True)
class Retry:
    at: datetime
    state: SendState  # in_flight when the failed call may have arrived: the next claim reconciles first


ClaimAction = Call | Reconcile | Fail


def _unsendable(status: CertificateStatus | None) -> FailureCode | None:
    if status is None or status is CertificateStatus.WITHDRAWN:
        return "NO_CONSENT"
    if status is CertificateStatus.REVOKED:
        return "REVOKED"
    return None


def decide_claim(row: Claimed, now: datetime) -> ClaimAction:
    """What to do with a claimed row. A send whose earlier call may have arrived is never called again unasked."""
    if row.kind is SendKind.REVOKE:
        return Call()  # revocations are idempotent at the recipient: a repeat answers "already revoked"
    if row.state_before is SendState.IN_FLIGHT:
        return Reconcile()
    stop = _unsendable(row.certificate)
    if stop is not None:
        return Fail(stop)
    if now >= row.deadline_at:
        return Fail("DEADLINE_EXCEEDED")
    return Call()


def decide_not_received(row: Claimed, now: datetime) -> ClaimAction:
    """The recipient says it does not have the certificate: send it unless that is no longer allowed."""
    return decide_claim(Claimed(row.kind, SendState.PENDING, row.attempts, row.deadline_at, row.certificate), now)


def decide_after_failure(
    row: Claimed, *, maybe_delivered: bool, now: datetime, schedule: RetrySchedule, rng: random.Random,
    circuit_wait: float | None = None,
) -> Retry | Fail:  # fmt: skip
    """A call failed without a definite answer: retry later, or give up once past the deadline.

    A call that may have arrived is never given up on unasked: the retry reconciles first, even past the deadline.
    `circuit_wait`: seconds until the recipient's next probe when its circuit is open. The failure is then the
    recipient's, not the send's: the send waits for the circuit instead of backing off on its own (its own backoff
    would keep it waiting for minutes after the recipient is back), and is released when the probe succeeds.
    """
    pause = circuit_wait if circuit_wait is not None else schedule.pause(row.attempts, rng)
    at = now + timedelta(seconds=pause)
    if maybe_delivered:
        return Retry(at, SendState.IN_FLIGHT)
    if row.kind is SendKind.SEND and at >= row.deadline_at:
        return Fail("DEADLINE_EXCEEDED")
    return Retry(at, SendState.PENDING)


# --- the circuit breaker ----------------------------------------------------------------------------------


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Per recipient: after `failures` consecutive failures, stop calling; after a pause, let one probe through.

    The pause doubles with every failed probe up to `max_open_seconds`. Times are monotonic seconds.
    """

    failures: int = 5
    open_seconds: float = 5.0
    max_open_seconds: float = 60.0
    state: Circuit = Circuit.CLOSED
    consecutive: int = 0
    trips: int = 0
    open_until: float = 0.0
    probing: bool = False

    def allowance(self, now: float, free: int) -> int:
        """How many calls may start now, given `free` free slots."""
        if self.state is Circuit.OPEN and now >= self.open_until:
            self.state = Circuit.HALF_OPEN
        if self.state is Circuit.OPEN:
            return 0
        if self.state is Circuit.HALF_OPEN:
            return 0 if self.probing or free < 1 else 1
        return free

    def started(self) -> None:
        """A call starts (in half-open: the probe)."""
        if self.state is Circuit.HALF_OPEN:
            self.probing = True

    def finished(self) -> None:
        """A call ended, answered or not (a probe that made no call must not hold the circuit half-open)."""
        self.probing = False

    def succeeded(self) -> bool:
        """An answer came. True if that closed an open or half-open circuit (the recipient is back)."""
        reopened = self.state is not Circuit.CLOSED
        self.state, self.consecutive, self.trips, self.probing = Circuit.CLOSED, 0, 0, False
        return reopened

    def wait(self, now: float) -> float | None:
        """Seconds until the next probe while the circuit is open; None when calls may be made."""
        if self.state is not Circuit.OPEN:
            return None
        return max(self.open_until - now, 0.0)

    def failed(self, now: float) -> None:
        self.consecutive += 1
        if self.state is Circuit.HALF_OPEN or self.consecutive >= self.failures:
            if self.state is not Circuit.OPEN:
                self.trips += 1
            self.state = Circuit.OPEN
            self.probing = False
            self.open_until = now + min(self.max_open_seconds, self.open_seconds * 2.0 ** min(self.trips - 1, 30))
