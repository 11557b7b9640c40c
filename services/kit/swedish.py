"""Swedish presentation, the one place for it: what a person reads is in Swedish words and Swedish time.

Times are shown in Europe/Stockholm (CET/CEST, whatever the server's zone), dates are the Swedish calendar date
(rules that depend on "today", such as the age of 16 at login, use `swedish_date`), a personnummer is shown as
`ÅÅÅÅMMDD-NNNN`, and the codes the services store (`RECEIVED`, `FKASSA`, `employer_copy_preview`, ...) become the
words the citizen reads. The portal's pages and PDFs and the statistics dashboard use it; no service logic does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")

MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)
MONTHS_SHORT = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")

# What the citizen (or someone acting on the record) did, as the access log stores it.
ACCESS_ACTIONS = {
    "": "Läst intyget",
    "read": "Läst intyget",
    "list": "Visat listan över dina intyg",
    "print": "Skrivit ut intyget",
    "save": "Sparat intyget som PDF",
    "employer_copy_preview": "Förhandsgranskat anpassat intyg för arbetsgivaren",
    "employer_copy_print": "Skrivit ut anpassat intyg för arbetsgivaren",
    "employer_copy_save": "Sparat anpassat intyg för arbetsgivaren som PDF",
    "send_preview": "Förhandsgranskat att skicka intyget",
    "send": "Skickat intyget",
    "archive": "Arkiverat intyget",
    "restore": "Återställt intyget",
    "extract": "Hämtat utdrag om dina uppgifter",
    "request_rectification": "Begärt rättelse",
    "request_blocking": "Begärt spärr",
    # A party fetched the certificate on the citizen's behalf (Försäkringskassan's e-service, issue #13).
    "fetched": "Hämtat intyget från Mina intyg",
    # Operator actions on the citizen's record (services/operator.py), with who did it beside them.
    "operator_dispatch_retry": "Ett nytt försök att skicka intyget som du begärt gjordes",
    "operator_dlq_replay": "En händelse om intyget behandlades på nytt efter ett tekniskt fel",
    "operator_stats_rebuild": "Statistiken byggdes om (avidentifierat)",
}
OUTCOMES = {"ok": "Genomfört", "not_found": "Nekad (intyget hittades inte)", "refused": "Nekad", "denied": "Nekad"}
# A certificate's status history.
STATES = {
    "RECEIVED": "Mottaget",
    "SENT": "Skickat",
    "ARCHIVED": "Arkiverat",
    "RESTORED": "Återställt",
    "REPLACED": "Ersatt",
}
# A send request's state.
DISPATCH_STATES = {"REQUESTED": "Skickas", "SUCCEEDED": "Skickat", "FAILED": "Kunde inte skickas"}
RECIPIENTS = {"FKASSA": "Försäkringskassan"}
CONSENT_ACTIONS = {"given": "Samtycke givet", "withdrawn": "Samtycke återkallat"}
REQUEST_KINDS = {"RECTIFICATION": "Begäran om rättelse", "BLOCKING": "Begäran om spärr"}

_DIGITS = re.compile(r"\d{12}")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"\d{4}-Q[1-4]")


def word(table: Mapping[str, str], code: str | None) -> str:
    """The Swedish word for a stored code; a code the table does not know is shown as it is (never hidden)."""
    if code is None:
        return ""
    return table.get(code, code)


def local(moment: datetime | str) -> datetime:
    """A moment (aware datetime or ISO 8601 text) in Swedish time."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        raise ValueError("a naive time has no place in Swedish time")
    return value.astimezone(STOCKHOLM)


def swedish_date(moment: datetime) -> date:
    """The calendar date in Sweden at a moment: what "today" means for a Swedish rule."""
    return local(moment).date()


def fmt_time(moment: datetime | str) -> str:
    """`2026-03-29 kl. 14:05` in Swedish time."""
    return local(moment).strftime("%Y-%m-%d kl. %H:%M")


def fmt_date(value: date | datetime | str) -> str:
    """`2026-03-29`; a moment is first put in Swedish time."""
    if isinstance(value, datetime):
        return swedish_date(value).isoformat()
    if isinstance(value, str):
        return fmt_date(datetime.fromisoformat(value)) if "T" in value else value
    return value.isoformat()


def month_name(year: int, month: int) -> str:
    """`mars 2026`."""
    return f"{MONTHS[month - 1]} {year}"


def month_short(year: int, month: int) -> str:
    """`mar 2026` (chart axes)."""
    return f"{MONTHS_SHORT[month - 1]} {year}"


def swedish_period(label: object) -> object:
    """A period as the statistics publish it (`2026-03`, `2026-Q1`, `2026`) in Swedish (`mars 2026`,
    `kvartal 1 2026`, `2026`); anything else as it is."""
    if not isinstance(label, str):
        return label
    if _MONTH.fullmatch(label):
        return month_name(int(label[:4]), int(label[5:]))
    if _QUARTER.fullmatch(label):
        return f"kvartal {label[6]} {label[:4]}"
    return label


def fmt_personnummer(number: str) -> str:
    """`ÅÅÅÅMMDD-NNNN` from a stored 12-digit personnummer (with or without a separator); anything else as it is."""
    digits = number.replace("-", "").replace("+", "")
    if not _DIGITS.fullmatch(digits):
        return number
    return f"{digits[:8]}-{digits[8:]}"
