"""The consent gate's decisions (services.consent.domain) as pure functions over (consent state, event).

Every combination of the inputs is enumerated, so a change to any rule shows up here.
"""

from __future__ import annotations

import itertools

import pytest

from services.consent.domain import (
    Arrival,
    CertificateStatus,
    Consent,
    GiveOutcome,
    KnownCertificate,
    Revocation,
    UnknownTextVersion,
    WithdrawOutcome,
    decide_arrival,
    decide_give,
    decide_revocation,
    decide_withdraw,
)

CURRENT = "2025-1"

# Every row the certificates table can hold for an id, and "no row" (None).
KNOWN: list[KnownCertificate | None] = [
    None,
    *(KnownCertificate(status, ever) for status, ever in itertools.product(CertificateStatus, (False, True))),
]


def known_id(known: KnownCertificate | None) -> str:
    return "unknown" if known is None else f"{known.status.value}-ever_released={known.ever_released}"


# --- arrival ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("consent", list(Consent), ids=str)
@pytest.mark.parametrize("known", KNOWN, ids=known_id)
def test_arrival_every_combination(consent: Consent, known: KnownCertificate | None) -> None:
    if known is not None:
        expected = Arrival.ALREADY_KNOWN  # redelivery, or a revocation that came first: never released again
    elif consent is Consent.GIVEN:
        expected = Arrival.RELEASE
    else:
        expected = Arrival.HOLD
    assert decide_arrival(consent, known) is expected


@pytest.mark.parametrize("consent", list(Consent), ids=str)
def test_certificate_revoked_before_it_arrives_is_never_released(consent: Consent) -> None:
    remembered = KnownCertificate(CertificateStatus.REVOKED, ever_released=False)
    assert decide_arrival(consent, remembered) is Arrival.ALREADY_KNOWN


def test_new_certificate_is_released_only_while_consent_is_given() -> None:
    assert [decide_arrival(c, None) for c in (Consent.NONE, Consent.GIVEN, Consent.WITHDRAWN)] == [
        Arrival.HOLD,
        Arrival.RELEASE,
        Arrival.HOLD,
    ]


# --- revocation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("known", KNOWN, ids=known_id)
def test_revocation_every_combination(known: KnownCertificate | None) -> None:
    if known is None:
        expected = Revocation.REMEMBER
    elif known.status is CertificateStatus.REVOKED:
        expected = Revocation.ALREADY_REVOKED
    elif known.ever_released:
        expected = Revocation.FORWARD
    else:
        expected = Revocation.DROP_HELD
    assert decide_revocation(known) is expected


def test_revocation_of_a_certificate_released_once_and_held_again_after_withdrawal_is_forwarded() -> None:
    # Withdrawal puts released certificates back on hold; the other services did see them, so they must hear.
    assert decide_revocation(KnownCertificate(CertificateStatus.HELD, ever_released=True)) is Revocation.FORWARD


def test_revocation_of_a_released_certificate_is_forwarded() -> None:
    assert decide_revocation(KnownCertificate(CertificateStatus.RELEASED, ever_released=True)) is Revocation.FORWARD


def test_revocation_of_a_never_released_certificate_is_dropped_silently() -> None:
    assert decide_revocation(KnownCertificate(CertificateStatus.HELD, ever_released=False)) is Revocation.DROP_HELD


def test_second_revocation_changes_nothing_whatever_the_history() -> None:
    for ever in (False, True):
        assert (
            decide_revocation(KnownCertificate(CertificateStatus.REVOKED, ever_released=ever))
            is Revocation.ALREADY_REVOKED
        )


def test_revocation_before_arrival_is_remembered() -> None:
    assert decide_revocation(None) is Revocation.REMEMBER


# --- give -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("current", list(Consent), ids=str)
def test_give_with_current_text(current: Consent) -> None:
    expected = GiveOutcome.ALREADY_GIVEN if current is Consent.GIVEN else GiveOutcome.GIVEN
    assert decide_give(current, CURRENT, CURRENT) is expected


@pytest.mark.parametrize("current", list(Consent), ids=str)
@pytest.mark.parametrize("text_version", ["2024-1", "2025-2", "", "2025-1 ", "2025-1\n"])
def test_give_with_any_other_text_is_refused_in_every_state(current: Consent, text_version: str) -> None:
    with pytest.raises(UnknownTextVersion) as raised:
        decide_give(current, text_version, CURRENT)
    assert CURRENT in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_give_compares_text_versions_exactly() -> None:
    assert decide_give(Consent.NONE, "2026-1", "2026-1") is GiveOutcome.GIVEN
    with pytest.raises(UnknownTextVersion):
        decide_give(Consent.NONE, "2025-1", "2026-1")  # the text shown earlier no longer counts


# --- withdraw ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("current", list(Consent), ids=str)
def test_withdraw_every_state(current: Consent) -> None:
    expected = WithdrawOutcome.WITHDRAWN if current is Consent.GIVEN else WithdrawOutcome.NOT_GIVEN
    assert decide_withdraw(current) is expected


# --- a sequence through the pure rules --------------------------------------------------------------------------


def test_rules_compose_over_a_consent_lifecycle() -> None:
    consent = Consent.NONE
    assert decide_withdraw(consent) is WithdrawOutcome.NOT_GIVEN
    assert decide_arrival(consent, None) is Arrival.HOLD
    assert decide_give(consent, CURRENT, CURRENT) is GiveOutcome.GIVEN
    consent = Consent.GIVEN
    assert decide_give(consent, CURRENT, CURRENT) is GiveOutcome.ALREADY_GIVEN
    assert decide_arrival(consent, None) is Arrival.RELEASE
    assert decide_withdraw(consent) is WithdrawOutcome.WITHDRAWN
    consent = Consent.WITHDRAWN
    assert decide_withdraw(consent) is WithdrawOutcome.NOT_GIVEN
    assert decide_arrival(consent, None) is Arrival.HOLD
    assert decide_give(consent, CURRENT, CURRENT) is GiveOutcome.GIVEN
