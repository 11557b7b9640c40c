"""The portal's pure rules: who may log in, badges and grouping of the list, what an employer copy may omit,
when sending is offered. No I/O; the clock is passed in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.certificate_types import CERTIFICATE_TYPES

FKASSA = "FKASSA"
RECIPIENT_NAMES = {FKASSA: "Försäkringskassan"}
ACR_PREFIX = "http://id.elegnamnden.se/loa/1.0/loa"

STATE_LABELS = {
    "RECEIVED": "Mottaget",
    "SENT": "Skickat",
    "ARCHIVED": "Arkiverat",
    "RESTORED": "Återställt",
    "REPLACED": "Ersatt",
}


def assurance_level(acr: object) -> int | None:
    """The level (2, 3, 4) of an `acr` URI of the Swedish trust framework, or None if it is not one."""
    if not isinstance(acr, str) or not acr.startswith(ACR_PREFIX):
        return None
    level = acr.removeprefix(ACR_PREFIX)
    return int(level) if level in ("1", "2", "3", "4") else None


def is_new(signed_at: datetime, now: datetime, days: int = 14) -> bool:
    """A certificate issued within the last `days` days gets the 'Nytt' badge."""
    return now - signed_at <= timedelta(days=days)


def receives(recipient_id: str, certificate_type: str) -> bool:
    """Whether a recipient takes certificates of this type (the type registry names the main recipient)."""
    known = CERTIFICATE_TYPES.get(certificate_type)
    return known is not None and known.main_recipient == recipient_id


@dataclass(frozen=True)
class DispatchView:
    recipient_id: str
    state: str  # REQUESTED, SUCCEEDED, FAILED
    reason: str | None
    at: datetime


def send_state(dispatches: Sequence[DispatchView], recipient_id: str = FKASSA) -> str | None:
    """The state of the latest send request to a recipient, or None if there was none."""
    mine = [d for d in dispatches if d.recipient_id == recipient_id]
    if not mine:
        return None
    active = [d for d in mine if d.state in ("REQUESTED", "SUCCEEDED")]
    return (active or sorted(mine, key=lambda d: d.at))[-1].state


def may_send(certificate_type: str, replaced: bool, dispatches: Sequence[DispatchView]) -> bool:
    """Sending to Försäkringskassan is offered for its types, unless sent or on its way, or replaced."""
    return (
        receives(FKASSA, certificate_type) and not replaced and send_state(dispatches) not in ("REQUESTED", "SUCCEEDED")
    )


def badges(
    *, certificate_type: str, signed_at: datetime, replaced: bool, send: str | None, now: datetime, new_days: int = 14
) -> list[str]:
    """The badges of a certificate in the list."""
    result: list[str] = []
    if is_new(signed_at, now, new_days):
        result.append("Nytt")
    if replaced:
        result.append("Ersatt")
    if receives(FKASSA, certificate_type):
        if send == "SUCCEEDED":
            result.append("Skickat")
        elif send == "REQUESTED":
            result.append("Skickas…")
        else:
            result.append("Ej skickat")
    return result


def group_by_year(items: Iterable[Any], signed_at: str = "signed_at") -> list[tuple[int, list[Any]]]:
    """Items grouped by the year they were signed, newest year first and newest first within a year."""
    groups: dict[int, list[Any]] = {}
    for item in sorted(items, key=lambda i: _get(i, signed_at), reverse=True):
        groups.setdefault(_get(item, signed_at).year, []).append(item)
    return sorted(groups.items(), reverse=True)


def _get(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


# --- Employer copy (DOMAIN.md "Printing and saving") -----------------------------------------------------

# Content fields an LISJP employer copy may leave out; everything else (basis, occupation, periods, working time,
# travel, prognosis, work-related measures) is always printed.
LISJP_OPTIONAL = (
    "diagnoses",
    "functional_impairment",
    "activity_limitation",
    "ongoing_treatment",
    "planned_treatment",
    "other_information",
    "wants_contact_with_fk",
    "contact_reason",
)
# Fields shown together with another: leaving out the first leaves out the second.
_COUPLED = {"wants_contact_with_fk": ("contact_reason",), "work_measures": ("work_measures_description",)}


class EmployerCopyError(ValueError):
    """A choice the employer-copy rules do not allow."""


def employer_optional_fields(certificate_type: str, content: dict[str, Any]) -> list[str]:
    """The content fields the citizen may leave out of an employer copy of this certificate."""
    smittskydd = bool(content.get("contagious_disease_leave"))
    if certificate_type == "LISJP":
        fields = [f for f in LISJP_OPTIONAL if f != "contact_reason"]
    elif CERTIFICATE_TYPES.get(certificate_type) is not None and CERTIFICATE_TYPES[certificate_type].employer_facing:
        fields = ["diagnoses"]
    else:
        return []
    if smittskydd:
        fields = [f for f in fields if f != "diagnoses"]  # the diagnosis stays when the leave is for smittskydd
    return [f for f in fields if content.get(f) not in (None, [], False, "")]


def employer_copy(certificate_type: str, content: dict[str, Any], omit: Iterable[str]) -> tuple[dict[str, Any], bool]:
    """The content of an employer copy without the `omit`ted fields, and whether anything was left out.

    AG7804's diagnosis reaches the employer only if the patient asked for it (question 100)."""
    omitted = set(omit)
    allowed = set(employer_optional_fields(certificate_type, content))
    refused = sorted(omitted - allowed)
    if refused:
        raise EmployerCopyError(f"får inte väljas bort i detta intyg: {', '.join(refused)}")
    if (
        certificate_type == "AG7804"
        and not content.get("diagnosis_to_employer")
        and content.get("diagnoses")
        and not content.get("contagious_disease_leave")
    ):
        omitted.add("diagnoses")
    for field in list(omitted):
        omitted.update(_COUPLED.get(field, ()))
    copy = {k: v for k, v in content.items() if k not in omitted}
    left_out = any(content.get(f) not in (None, [], False, "") for f in omitted)
    return copy, left_out
