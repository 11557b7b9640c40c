"""What the citizen reads: a certificate as Swedish sections of labelled rows (shared by the pages and the PDF),
and list items with their badges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.certificate import COUNTY_NAMES, County
from schemas.certificate_types import CERTIFICATE_TYPES
from services.portal.domain import STATE_LABELS, DispatchView, badges, send_state

STOCKHOLM = ZoneInfo("Europe/Stockholm")

BASIS = {
    "UNDERSOKNING": "Min undersökning av patienten",
    "TELEFONKONTAKT": "Min telefonkontakt med patienten",
    "JOURNALUPPGIFTER": "Journaluppgifter",
    "ANNAT": "Annat",
}
OCCUPATIONS = {
    "NUVARANDE_ARBETE": "Nuvarande arbete",
    "ARBETSSOKANDE": "Arbetssökande",
    "FORALDRALEDIG": "Föräldraledighet för vård av barn",
    "STUDIER": "Studier",
}
DEGREES = {25: "En fjärdedel", 50: "Hälften", 75: "Tre fjärdedelar", 100: "Helt nedsatt"}
PROGNOSES = {
    "ATER_X_ANTAL_DGR": "Patienten förväntas kunna återgå helt i nuvarande sysselsättning inom {days} dagar",
    "STOR_SANNOLIKHET": "Patienten förväntas i stor utsträckning kunna återgå i nuvarande sysselsättning",
    "SANNOLIKT_EJ_ATERGA_TILL_SYSSELSATTNING": "Patienten kan sannolikt inte återgå i nuvarande sysselsättning",
    "PROGNOS_OKLAR": "Prognos för återgång i sysselsättning är oklar",
}
MEASURES = {
    "EJ_AKTUELLT": "Inte aktuellt",
    "ARBETSTRANING": "Arbetsträning",
    "ARBETSANPASSNING": "Arbetsanpassning",
    "SOKA_NYTT_ARBETE": "Söka nytt arbete",
    "BESOK_ARBETSPLATS": "Besök på arbetsplatsen",
    "ERGONOMISK": "Ergonomisk bedömning",
    "HJALPMEDEL": "Hjälpmedel",
    "KONTAKT_FHV": "Kontakt med företagshälsovård",
    "OMFORDELNING": "Omfördelning av arbetsuppgifter",
    "OVRIGA_ATGARDER": "Övrigt",
}
FIELD_LABELS = {
    "diagnoses": "Diagnos",
    "functional_impairment": "Funktionsnedsättning",
    "activity_limitation": "Aktivitetsbegränsning",
    "ongoing_treatment": "Pågående medicinska behandlingar",
    "planned_treatment": "Planerade medicinska behandlingar",
    "other_information": "Övriga upplysningar",
    "wants_contact_with_fk": "Kontakt med Försäkringskassan",
}


@dataclass(frozen=True)
class Row:
    field: str
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)


def fmt_date(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def fmt_time(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(STOCKHOLM).strftime("%Y-%m-%d kl. %H:%M")


def yes_no(value: object) -> str:
    return "Ja" if value else "Nej"


def type_name(code: str) -> str:
    known = CERTIFICATE_TYPES.get(code)
    return f"{known.name} ({code})" if known else code


def header_sections(document: Mapping[str, Any]) -> list[Section]:
    """Who issued the certificate, where, when, and for whom."""
    unit = document["care_unit"]
    address = unit["address"]
    issuer = document["issuer"]
    patient = document["patient"]
    county = COUNTY_NAMES.get(County(unit["county"]), unit["county"])
    rows = [
        Row("id", "Intygs-id", document["id"]),
        Row("signed_at", "Signerat", fmt_time(document["signed_at"])),
        Row("issuer", "Utfärdare", ", ".join(x for x in (issuer["name"], issuer.get("title")) if x)),
        Row("care_unit", "Vårdenhet", unit["name"]),
        Row("care_unit_address", "Adress", f"{address['street']}, {address['postal_code']} {address['city']}"),
        Row("care_unit_phone", "Telefon", unit["phone"]),
        Row("care_unit_county", "Län", county),
        Row("care_provider", "Vårdgivare", unit["care_provider"]["name"]),
    ]
    patient_rows = [
        Row("patient_name", "Namn", f"{patient['given_name']} {patient['family_name']}"),
        Row("personnummer", "Personnummer", patient["personnummer"]),
    ]
    if patient.get("address"):
        a = patient["address"]
        patient_rows.append(Row("patient_address", "Adress", f"{a['street']}, {a['postal_code']} {a['city']}"))
    if document.get("relation"):
        kinds = {"REPLACES": "Ersätter", "COMPLEMENTS": "Kompletterar", "EXTENDS": "Förlänger"}
        relation = document["relation"]
        rows.append(Row("relation", kinds.get(relation["kind"], relation["kind"]), relation["certificate_id"]))
    return [Section("Intyget", rows), Section("Patient", patient_rows)]


def content_sections(certificate_type: str, content: Mapping[str, Any]) -> list[Section]:
    """The questions of an LISJP or AG7804 with Swedish labels, in form order; unanswered ones left out."""
    sections: list[Section] = []

    def add(title: str, rows: Iterable[Row | None]) -> None:
        present = [r for r in rows if r is not None]
        if present:
            sections.append(Section(title, present))

    def text(name: str, label: str) -> Row | None:
        value = content.get(name)
        return Row(name, label, str(value)) if value not in (None, "") else None

    add(
        "Grund för medicinskt underlag",
        [
            Row("assessment_basis", BASIS.get(b["kind"], b["kind"]),
                fmt_date(b["date"]) + (f" – {b['description']}" if b.get("description") else ""))
            for b in content.get("assessment_basis") or []
        ],
    )  # fmt: skip
    occupations = content.get("occupations") or []
    add(
        "Sysselsättning",
        [
            Row("occupations", "Sysselsättning", ", ".join(OCCUPATIONS.get(o, o) for o in occupations))
            if occupations
            else None,
            text("occupation_text", "Yrke och arbetsuppgifter"),
        ],
    )
    add(
        "Diagnos",
        [
            Row("diagnoses", "Huvuddiagnos" if i == 0 else "Bidiagnos",
                d["code"] + (f" – {d['description']}" if d.get("description") else ""))
            for i, d in enumerate(content.get("diagnoses") or [])
        ],
    )  # fmt: skip
    add(
        "Sjukdomens konsekvenser för patienten",
        [text("functional_impairment", "Funktionsnedsättning"), text("activity_limitation", "Aktivitetsbegränsning")],
    )
    add(
        "Medicinsk behandling",
        [
            text("ongoing_treatment", "Pågående medicinska behandlingar"),
            text("planned_treatment", "Planerade medicinska behandlingar"),
        ],
    )
    periods = [
        Row("sick_leave_periods", f"{DEGREES.get(p['degree'], p['degree'])} ({p['degree']} %)",
            f"{fmt_date(p['start'])} – {fmt_date(p['end'])}")
        for p in content.get("sick_leave_periods") or []
    ]  # fmt: skip
    arrangement = content.get("working_time_arrangement")
    prognosis = content.get("prognosis")
    add(
        "Bedömning",
        [
            *periods,
            Row("working_time_arrangement", "Arbetstidsförläggning",
                yes_no(arrangement["recommended"]) + (f" – {arrangement['motivation']}"
                                                       if arrangement.get("motivation") else ""))
            if arrangement else None,
            Row("travel_to_work", "Resor till och från arbetet", yes_no(content["travel_to_work"]))
            if content.get("travel_to_work") is not None else None,
            Row("prognosis", "Prognos", PROGNOSES.get(prognosis["kind"], prognosis["kind"]).format(
                days=prognosis.get("days") or "?")) if prognosis else None,
        ],
    )  # fmt: skip
    measures = content.get("work_measures") or []
    add(
        "Åtgärder",
        [
            Row("work_measures", "Arbetslivsinriktade åtgärder", ", ".join(MEASURES.get(m, m) for m in measures))
            if measures
            else None,
            text("work_measures_description", "Beskrivning av åtgärder"),
        ],
    )
    add(
        "Övrigt",
        [
            text("other_information", "Övriga upplysningar"),
            Row("wants_contact_with_fk", "Kontakt med Försäkringskassan önskas", "Ja")
            if content.get("wants_contact_with_fk")
            else None,
            text("contact_reason", "Anledning till kontakt"),
            Row("contagious_disease_leave", "Avstängning enligt smittskyddslagen", "Ja")
            if content.get("contagious_disease_leave")
            else None,
            Row(
                "diagnosis_to_employer",
                "Diagnosen förmedlas till arbetsgivaren",
                yes_no(content.get("diagnosis_to_employer")),
            )
            if certificate_type == "AG7804" and content.get("diagnosis_to_employer") is not None
            else None,
        ],
    )
    return sections


def dispatch_views(rows: Sequence[Any]) -> list[DispatchView]:
    return [
        DispatchView(r["recipient_id"], r["state"], r["reason"], r["outcome_at"] or r["requested_at"]) for r in rows
    ]


@dataclass(frozen=True)
class ListItem:
    id: str
    type: str
    type_name: str
    signed_at: datetime
    care_unit_name: str
    care_unit_hsa: str
    issuer_name: str
    archived: bool
    replaced: bool
    send_state: str | None
    badges: list[str]
    signed_date: str = ""  # signed_at as YYYY-MM-DD (Stockholm), for the pages

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "type_name": self.type_name,
            "signed_at": self.signed_at.isoformat(),
            "care_unit": {"hsa_id": self.care_unit_hsa, "name": self.care_unit_name},
            "issuer_name": self.issuer_name,
            "archived": self.archived,
            "replaced": self.replaced,
            "send_state": self.send_state,
            "badges": self.badges,
        }


def list_item(row: Any, now: datetime, new_days: int) -> ListItem:
    replaced = row["replaced_by"] is not None
    signed_at = row["signed_at"].astimezone(STOCKHOLM)  # years and dates as the citizen reads them
    return ListItem(
        id=row["id"],
        type=row["type"],
        type_name=type_name(row["type"]),
        signed_at=signed_at,
        signed_date=signed_at.date().isoformat(),
        care_unit_name=row["care_unit_name"],
        care_unit_hsa=row["care_unit_hsa"],
        issuer_name=row["issuer_name"],
        archived=row["archived"],
        replaced=replaced,
        send_state=row["send_state"],
        badges=badges(
            certificate_type=row["type"],
            signed_at=row["signed_at"],
            replaced=replaced,
            send=row["send_state"],
            now=now,
            new_days=new_days,
        ),
    )


STATUS_FILTERS = {"nytt": "Nytt", "skickat": "Skickat", "ej-skickat": "Ej skickat", "ersatt": "Ersatt"}


def filter_items(
    items: Sequence[ListItem], *, year: int | None, cert_type: str | None, care_unit: str | None, status: str | None
) -> list[ListItem]:
    """The list filters: year, type, care unit and status (a badge)."""
    wanted_badge = STATUS_FILTERS.get(status or "")
    return [
        i
        for i in items
        if (year is None or i.signed_at.year == year)
        and (not cert_type or i.type == cert_type)
        and (not care_unit or i.care_unit_hsa == care_unit)
        and (wanted_badge is None or wanted_badge in i.badges)
    ]


def history_rows(rows: Sequence[Any]) -> list[dict[str, str]]:
    """The status history as the citizen reads it."""
    result = []
    for r in rows:
        label = STATE_LABELS.get(r["state"], r["state"])
        if r["state"] == "SENT":
            label = f"Skickat till {r['party']}"
        elif r["state"] == "REPLACED":
            label = f"Ersatt av intyg {r['detail']}"
        result.append({"state": r["state"], "label": label, "party": r["party"], "at": fmt_time(r["at"])})
    return result


def send_status(dispatches: Sequence[DispatchView]) -> str | None:
    return send_state(dispatches)
