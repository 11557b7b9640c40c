"""The gate's rules, pure: what a certificate arrival, a revocation or a consent change means for one citizen."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Consent(StrEnum):
    NONE = "none"
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


class CertificateStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"
    REVOKED = "revoked"
    PURGED = "purged"  # held past the retention: the document is gone, the fact that it was released is kept


@dataclass(frozen=True)
class KnownCertificate:
    status: CertificateStatus
    ever_released: bool


class Arrival(StrEnum):
    RELEASE = "release"
    HOLD = "hold"
    ALREADY_KNOWN = "already_known"


def decide_arrival(consent: Consent, known: KnownCertificate | None) -> Arrival:
    """A certificate arrives: released while consent is given, held otherwise; a known id changes nothing.

    A revocation that came first leaves a revoked row, so the late certificate is never released.
    """
    if known is not None:
        return Arrival.ALREADY_KNOWN
    return Arrival.RELEASE if consent is Consent.GIVEN else Arrival.HOLD


class Revocation(StrEnum):
    FORWARD = "forward"  # it was released at some time: portal, dispatch and stats must hear of it
    DROP_HELD = "drop_held"  # never released: the held copy goes, nobody else knew of it
    REMEMBER = "remember"  # not seen yet: remember the revocation, so the certificate is never released
    ALREADY_REVOKED = "already_revoked"


def decide_revocation(known: KnownCertificate | None) -> Revocation:
    if known is None:
        return Revocation.REMEMBER
    if known.status is CertificateStatus.REVOKED:
        return Revocation.ALREADY_REVOKED
    return Revocation.FORWARD if known.ever_released else Revocation.DROP_HELD


class UnknownTextVersion(ValueError):
    """Consent given to a text that is not the one shown now."""


class GiveOutcome(StrEnum):
    GIVEN = "given"
    ALREADY_GIVEN = "already_given"


def decide_give(current: Consent, text_version: str, current_text_version: str) -> GiveOutcome:
    """Consent counts only for the text shown now; giving it twice is harmless."""
    if text_version != current_text_version:
        raise UnknownTextVersion(f"text version {text_version!r} is not the current one ({current_text_version})")
    return GiveOutcome.ALREADY_GIVEN if current is Consent.GIVEN else GiveOutcome.GIVEN


class WithdrawOutcome(StrEnum):
    WITHDRAWN = "withdrawn"
    NOT_GIVEN = "not_given"


def decide_withdraw(current: Consent) -> WithdrawOutcome:
    """Withdrawing what is not given is harmless and says so."""
    return WithdrawOutcome.WITHDRAWN if current is Consent.GIVEN else WithdrawOutcome.NOT_GIVEN
