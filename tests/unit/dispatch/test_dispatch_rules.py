"""Dispatch's pure rules: the registry rules of a request, the ledger row's state machine, the retry schedule and
the circuit breaker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.dispatch.domain import (
    AlreadyQueued,
    AlreadySent,
    Call,
    CertificateStatus,
    Circuit,
    CircuitBreaker,
    Claimed,
    Fail,
    KnownCertificate,
    Queue,
    Recipient,
    Reconcile,
    Refuse,
    Retry,
    RetrySchedule,
    SendKind,
    SendState,
    decide_after_failure,
    decide_claim,
    decide_not_received,
    decide_request,
    reason,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FK = Recipient("FKASSA", "Försäkringskassan", True, frozenset({"LISJP", "FK7263", "LUSE", "LUAE_NA", "LUAE_FS"}),
               "http://fk", "fk-http", True, 32)  # fmt: skip
ME = "a" * 64
OTHER = "b" * 64


def cert(
    status: CertificateStatus = CertificateStatus.RELEASED, type_: str = "LISJP", test: bool = False, ref: str = ME
) -> KnownCertificate:
    return KnownCertificate(ref, type_, test, status)


# --- registry rules of a request ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "certificate", "expected"),
    [
        (None, cert(), "RECIPIENT_INACTIVE"),
        (Recipient("X", "X", False, frozenset({"LISJP"}), "", "memory", False, 1), cert(), "RECIPIENT_INACTIVE"),
        (FK, None, "UNKNOWN_CERTIFICATE"),
        (FK, cert(ref=OTHER), "UNKNOWN_CERTIFICATE"),
        (FK, cert(CertificateStatus.REVOKED), "REVOKED"),
        (FK, cert(CertificateStatus.WITHDRAWN), "NO_CONSENT"),
        (FK, cert(test=True), "TEST_PATIENT"),
        (FK, cert(type_="AG7804"), "TYPE_NOT_ACCEPTED"),
        (FK, cert(type_="AG1-14"), "TYPE_NOT_ACCEPTED"),
    ],
)
def test_refusals(recipient: Recipient | None, certificate: KnownCertificate | None, expected: str) -> None:
    assert decide_request(recipient, certificate, ME, None) == Refuse(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("type_", ["LISJP", "FK7263", "LUSE", "LUAE_NA", "LUAE_FS"])
def test_försäkringskassan_takes_its_types(type_: str) -> None:
    assert decide_request(FK, cert(type_=type_), ME, None) == Queue()


def test_a_second_request_is_answered_by_the_first_send() -> None:
    assert decide_request(FK, cert(), ME, SendState.DELIVERED) == AlreadySent()
    assert decide_request(FK, cert(), ME, SendState.PENDING) == AlreadyQueued()
    assert decide_request(FK, cert(), ME, SendState.IN_FLIGHT) == AlreadyQueued()
    assert decide_request(FK, cert(), ME, SendState.FAILED) == Queue()  # a failed send may be asked for again
    # Sent, then revoked: the send happened; the revocation was forwarded.
    assert decide_request(FK, cert(CertificateStatus.REVOKED), ME, SendState.DELIVERED) == AlreadySent()
    # ...but never to another citizen.
    assert decide_request(FK, cert(ref=OTHER), ME, SendState.DELIVERED) == Refuse("UNKNOWN_CERTIFICATE")


def test_reasons_are_swedish_and_name_the_recipient_and_type() -> None:
    assert reason("TYPE_NOT_ACCEPTED", "Försäkringskassan", certificate_type="AG7804") == (
        "Försäkringskassan tar inte emot intyg av typen Läkarintyg om arbetsförmåga – arbetsgivaren."
    )
    assert "24 timmar" in reason("DEADLINE_EXCEEDED", "Försäkringskassan", deadline_hours=24)
    assert "samtycke" in reason("NO_CONSENT", "Försäkringskassan")


# --- the ledger row's state machine ------------------------------------------------------------------------


def claimed(
    state: SendState = SendState.PENDING,
    kind: SendKind = SendKind.SEND,
    status: CertificateStatus | None = CertificateStatus.RELEASED,
    attempts: int = 1,
    deadline: datetime = NOW + timedelta(hours=24),
) -> Claimed:
    return Claimed(kind, state, attempts, deadline, status)


def test_a_pending_row_is_sent() -> None:
    assert decide_claim(claimed(), NOW) == Call()


def test_a_row_found_in_flight_is_reconciled_before_any_call_even_past_its_deadline_or_revoked() -> None:
    assert decide_claim(claimed(SendState.IN_FLIGHT), NOW) == Reconcile()
    assert decide_claim(claimed(SendState.IN_FLIGHT, deadline=NOW), NOW) == Reconcile()
    assert decide_claim(claimed(SendState.IN_FLIGHT, status=CertificateStatus.REVOKED), NOW) == Reconcile()


def test_not_received_after_reconciliation_means_send_unless_no_longer_allowed() -> None:
    assert decide_not_received(claimed(SendState.IN_FLIGHT), NOW) == Call()
    assert decide_not_received(claimed(SendState.IN_FLIGHT, deadline=NOW), NOW) == Fail("DEADLINE_EXCEEDED")
    revoked = claimed(SendState.IN_FLIGHT, status=CertificateStatus.REVOKED)
    assert decide_not_received(revoked, NOW) == Fail("REVOKED")


def test_a_queued_send_of_a_certificate_revoked_or_withdrawn_since_fails_without_a_call() -> None:
    assert decide_claim(claimed(status=CertificateStatus.REVOKED), NOW) == Fail("REVOKED")
    assert decide_claim(claimed(status=CertificateStatus.WITHDRAWN), NOW) == Fail("NO_CONSENT")
    assert decide_claim(claimed(status=None), NOW) == Fail("NO_CONSENT")


def test_past_the_deadline_a_pending_send_fails() -> None:
    assert decide_claim(claimed(deadline=NOW), NOW) == Fail("DEADLINE_EXCEEDED")


def test_revocations_are_always_called_they_are_idempotent_at_the_recipient() -> None:
    revoke = claimed(SendState.IN_FLIGHT, SendKind.REVOKE, CertificateStatus.REVOKED, deadline=NOW)
    assert decide_claim(revoke, NOW) == Call()


def test_after_a_failure_the_row_is_retried_and_a_maybe_delivered_one_is_reconciled_next() -> None:
    rng = random.Random(1)
    schedule = RetrySchedule(1.0, 300.0)
    definite = decide_after_failure(claimed(), maybe_delivered=False, now=NOW, schedule=schedule, rng=rng)
    assert isinstance(definite, Retry)
    assert definite.state is SendState.PENDING
    assert NOW <= definite.at <= NOW + timedelta(seconds=1)
    maybe = decide_after_failure(claimed(), maybe_delivered=True, now=NOW, schedule=schedule, rng=rng)
    assert isinstance(maybe, Retry)
    assert maybe.state is SendState.IN_FLIGHT


def test_a_retry_that_would_come_after_the_deadline_is_a_final_failure_unless_it_may_have_arrived() -> None:
    schedule = RetrySchedule(1000.0, 1000.0)
    rng = random.Random(3)
    row = claimed(attempts=5, deadline=NOW + timedelta(microseconds=1))
    assert decide_after_failure(row, maybe_delivered=False, now=NOW, schedule=schedule, rng=rng) == Fail(
        "DEADLINE_EXCEEDED"
    )
    retry = decide_after_failure(row, maybe_delivered=True, now=NOW, schedule=schedule, rng=rng)
    assert isinstance(retry, Retry)
    assert retry.state is SendState.IN_FLIGHT


def test_while_the_circuit_is_open_a_failed_send_waits_for_the_probe_not_its_own_backoff() -> None:
    schedule = RetrySchedule(1.0, 300.0)
    rng = random.Random(5)
    row = claimed(attempts=9)  # its own backoff would be up to 256 s
    waiting = decide_after_failure(row, maybe_delivered=False, now=NOW, schedule=schedule, rng=rng, circuit_wait=3.0)
    assert waiting == Retry(NOW + timedelta(seconds=3), SendState.PENDING)
    maybe = decide_after_failure(row, maybe_delivered=True, now=NOW, schedule=schedule, rng=rng, circuit_wait=3.0)
    assert maybe == Retry(NOW + timedelta(seconds=3), SendState.IN_FLIGHT)  # still reconciled first
    # The deadline is kept: waiting for the circuit past it is a final failure, unless the call may have arrived.
    near = claimed(attempts=1, deadline=NOW + timedelta(seconds=2))
    assert decide_after_failure(
        near, maybe_delivered=False, now=NOW, schedule=schedule, rng=rng, circuit_wait=3.0
    ) == Fail("DEADLINE_EXCEEDED")
    assert isinstance(
        decide_after_failure(near, maybe_delivered=True, now=NOW, schedule=schedule, rng=rng, circuit_wait=3.0), Retry
    )


# --- the retry schedule -------------------------------------------------------------------------------------


def test_ceiling_doubles_from_the_first_pause_up_to_the_cap() -> None:
    schedule = RetrySchedule(1.0, 300.0)
    assert [schedule.ceiling(n) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert schedule.ceiling(10_000) == 300


@given(
    first=st.floats(0.001, 10),
    cap=st.floats(0.001, 1000),
    attempt=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_full_jitter_stays_between_zero_and_the_ceiling(first: float, cap: float, attempt: int, seed: int) -> None:
    schedule = RetrySchedule(first, cap)
    pause = schedule.pause(attempt, random.Random(seed))
    assert 0 <= pause <= schedule.ceiling(attempt) <= cap


def test_full_jitter_spreads_retries() -> None:
    schedule = RetrySchedule(1.0, 60.0)
    rng = random.Random(7)
    pauses = [schedule.pause(7, rng) for _ in range(2000)]
    assert min(pauses) < 3
    assert max(pauses) > 57
    assert 25 < sum(pauses) / len(pauses) < 35  # uniform on [0, 60]


# --- the circuit breaker ------------------------------------------------------------------------------------


def state_of(breaker: CircuitBreaker) -> Circuit:
    return breaker.state  # a call, so that mypy does not narrow the state across the breaker's methods


def test_the_circuit_opens_after_consecutive_failures_and_probes_once_when_half_open() -> None:
    breaker = CircuitBreaker(failures=3, open_seconds=5, max_open_seconds=20)
    assert breaker.allowance(0, 10) == 10
    breaker.failed(0)
    breaker.failed(0)
    breaker.succeeded()  # a success resets the count
    for _ in range(3):
        breaker.failed(1)
    assert state_of(breaker) is Circuit.OPEN
    assert breaker.allowance(5.9, 10) == 0
    assert breaker.allowance(6.0, 10) == 1  # half-open: one probe
    assert state_of(breaker) is Circuit.HALF_OPEN
    breaker.started()
    assert breaker.allowance(6.1, 10) == 0  # while the probe runs, nothing else
    breaker.failed(7)  # the probe failed: open again, twice as long
    assert state_of(breaker) is Circuit.OPEN
    assert breaker.allowance(16.9, 10) == 0
    assert breaker.allowance(17.0, 10) == 1
    breaker.started()
    breaker.succeeded()
    assert state_of(breaker) is Circuit.CLOSED
    assert breaker.allowance(17.1, 10) == 10


def test_a_probe_that_made_no_call_frees_the_half_open_circuit() -> None:
    breaker = CircuitBreaker(failures=1, open_seconds=1, max_open_seconds=1)
    breaker.failed(0)
    assert breaker.allowance(1, 4) == 1
    breaker.started()
    assert breaker.allowance(1, 4) == 0
    breaker.finished()  # e.g. the claimed row failed for good without a call
    assert breaker.allowance(1, 4) == 1


def test_the_circuit_tells_how_long_sends_wait_and_when_the_recipient_is_back() -> None:
    breaker = CircuitBreaker(failures=2, open_seconds=5, max_open_seconds=20)
    breaker.failed(0)
    assert breaker.wait(0) is None  # still closed: a failed send backs off on its own
    breaker.failed(1)
    assert breaker.wait(1) == 5  # open: until the probe
    assert breaker.wait(7) == 0
    assert breaker.allowance(7, 4) == 1
    breaker.started()
    assert breaker.wait(7) is None  # half-open
    assert breaker.succeeded() is True  # the probe got an answer: the recipient is back, release its sends
    assert breaker.succeeded() is False  # an ordinary success of a closed circuit


def test_the_open_pause_is_capped() -> None:
    breaker = CircuitBreaker(failures=1, open_seconds=5, max_open_seconds=20)
    now = 0.0
    for _ in range(10):
        breaker.failed(now)
        pause = breaker.open_until - now
        now = breaker.open_until
        assert breaker.allowance(now, 1) == 1
        breaker.started()
    assert pause == 20
