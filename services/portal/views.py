"""What the citizen reads: a certificate as Swedish sections of labelled rows (shared by the pages and the PDF),
and list items with their badges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas import codesystems
from schemas.certificate import COUNTY_NAMES, Ag7804Content, Certificate, Diagnosis, LisjpContent, RelationKind
from schemas.certificate_types import CERTIFICATE_TYPES
from services.kit.swedish import RECIPIENTS, STATES, STOCKHOLM, fmt_date, fmt_personnummer, fmt_time, word
from services.portal.domain import DispatchView, badges, send_state
from services.portal.repo import DispatchRow, HistoryRow, ListRow

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


# The question numbers of the form (LISJP / FK 7804; AG7804 shares them and adds 100), by content field.
QUESTIONS = {
    "assessment_basis": "1",
    "occupations": "28",
    "occupation_text": "29",
    "diagnoses": "6",
    "functional_impairment": "35",
    "activity_limitation": "17",
    "ongoing_treatment": "19",
    "planned_treatment": "20",
    "sick_leave_periods": "32",
    "working_time_arrangement": "33",
    "travel_to_work": "34",
    "prognosis": "39",
    "work_measures": "40",
    "work_measures_description": "40",
    "other_information": "25",
    "wants_contact_with_fk": "26",
    "contact_reason": "26",
    "contagious_disease_leave": "27",
    "diagnosis_to_employer": "100",
}


@dataclass(frozen=True)
class Row:
    field: str
    label: str
    value: str

    @property
    def question(self) -> str | None:
        """The form's question number of this row, if it is a question."""
        return QUESTIONS.get(self.field)


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)


def yes_no(value: object) -> str:
    return "Ja" if value else "Nej"


def type_name(code: str) -> str:
    known = CERTIFICATE_TYPES.get(code)
    return f"{known.name} ({code})" if known else code


def header_sections(certificate: Certificate) -> list[Section]:
    """Who issued the certificate, where, when, and for whom."""
    unit = certificate.care_unit
    address = unit.address
    issuer = certificate.issuer
    patient = certificate.patient
    rows = [
        Row("id", "Intygs-id", certificate.id),
        Row("signed_at", "Signerat", fmt_time(certificate.signed_at)),
        Row("issuer", "Utfärdare", ", ".join(x for x in (issuer.name, issuer.title) if x)),
        Row("care_unit", "Vårdenhet", unit.name),
        Row("care_unit_address", "Adress", f"{address.street}, {address.postal_code} {address.city}"),
        Row("care_unit_phone", "Telefon", unit.phone),
        Row("care_unit_county", "Län", COUNTY_NAMES.get(unit.county, unit.county.value)),
        Row("care_provider", "Vårdgivare", unit.care_provider.name),
    ]
    patient_rows = [
        Row("patient_name", "Namn", f"{patient.given_name} {patient.family_name}"),
        Row("personnummer", "Personnummer", fmt_personnummer(patient.personnummer)),
    ]
    if patient.address:
        a = patient.address
        patient_rows.append(Row("patient_address", "Adress", f"{a.street}, {a.postal_code} {a.city}"))
    if certificate.relation:
        relation = certificate.relation
        rows.append(Row("relation", RELATION_KINDS[relation.kind], relation.certificate_id))
    return [Section("Intyget", rows), Section("Patient", patient_rows)]


RELATION_KINDS = {
    RelationKind.REPLACES: "Ersätter",
    RelationKind.COMPLEMENTS: "Kompletterar",
    RelationKind.EXTENDS: "Förlänger",
}
CONTENT_MODELS: dict[str, type[LisjpContent]] = {"LISJP": LisjpContent, "AG7804": Ag7804Content}


def content_of(certificate_type: str, content: Mapping[str, Any]) -> LisjpContent:
    """The typed content of a certificate type from its JSON form (e.g. an employer copy, which leaves fields out)."""
    return CONTENT_MODELS[certificate_type].model_validate(content)


def diagnosis_text(diagnosis: Diagnosis) -> str:
    """A diagnosis as the citizen reads it: the code and its Swedish name from the code list (with the code system
    when it is not ICD-10-SE), then the doctor's own description (question 6.1) if there is one."""
    entry = codesystems.find(diagnosis.code_system, diagnosis.code)
    if entry is None:  # a code an older rule let through: shown as the doctor wrote it
        text = diagnosis.code
    else:
        text = f"{entry.written} {entry.swedish_name}"
        if diagnosis.code_system != codesystems.ICD10SE:
            text += f" ({codesystems.CODE_SYSTEM_NAMES[diagnosis.code_system]})"
    return text + (f". Läkarens beskrivning: {diagnosis.description}" if diagnosis.description else "")


def content_sections(content: LisjpContent) -> list[Section]:
    """The questions of an LISJP or AG7804 with Swedish labels, in form order; unanswered ones left out."""
    sections: list[Section] = []

    def add(title: str, rows: Iterable[Row | None]) -> None:
        present = [r for r in rows if r is not None]
        if present:
            sections.append(Section(title, present))

    def text(name: str, label: str, value: str | None) -> Row | None:
        return Row(name, label, value) if value else None

    add(
        "Grund för medicinskt underlag",
        [
            Row("assessment_basis", BASIS[b.kind], fmt_date(b.date) + (f" – {b.description}" if b.description else ""))
            for b in content.assessment_basis or []
        ],
    )
    occupations = content.occupations or []
    add(
        "Sysselsättning",
        [
            Row("occupations", "Sysselsättning", ", ".join(OCCUPATIONS[o] for o in occupations))
            if occupations
            else None,
            text("occupation_text", "Yrke och arbetsuppgifter", content.occupation_text),
        ],
    )
    add(
        "Diagnos",
        [
            Row("diagnoses", "Huvuddiagnos" if i == 0 else "Bidiagnos", diagnosis_text(d))
            for i, d in enumerate(content.diagnoses or [])
        ],
    )
    add(
        "Sjukdomens konsekvenser för patienten",
        [
            text("functional_impairment", "Funktionsnedsättning", content.functional_impairment),
            text("activity_limitation", "Aktivitetsbegränsning", content.activity_limitation),
        ],
    )
    add(
        "Medicinsk behandling",
        [
            text("ongoing_treatment", "Pågående medicinska behandlingar", content.ongoing_treatment),
            text("planned_treatment", "Planerade medicinska behandlingar", content.planned_treatment),
        ],
    )
    periods = [
        Row("sick_leave_periods", f"{DEGREES[p.degree]} ({p.degree} %)", f"{fmt_date(p.start)} – {fmt_date(p.end)}")
        for p in content.sick_leave_periods or []
    ]
    arrangement = content.working_time_arrangement
    prognosis = content.prognosis
    add(
        "Bedömning",
        [
            *periods,
            Row(
                "working_time_arrangement",
                "Arbetstidsförläggning",
                yes_no(arrangement.recommended) + (f" – {arrangement.motivation}" if arrangement.motivation else ""),
            )
            if arrangement
            else None,
            Row("travel_to_work", "Resor till och från arbetet", yes_no(content.travel_to_work))
            if content.travel_to_work is not None
            else None,
            Row("prognosis", "Prognos", PROGNOSES[prognosis.kind].format(days=prognosis.days or "?"))
            if prognosis
            else None,
        ],
    )
    measures = content.work_measures or []
    add(
        "Åtgärder",
        [
            Row("work_measures", "Arbetslivsinriktade åtgärder", ", ".join(MEASURES[m] for m in measures))
            if measures
            else None,
            text("work_measures_description", "Beskrivning av åtgärder", content.work_measures_description),
        ],
    )
    to_employer = content.diagnosis_to_employer if isinstance(content, Ag7804Content) else None
    add(
        "Övrigt",
        [
            text("other_information", "Övriga upplysningar", content.other_information),
            Row("wants_contact_with_fk", "Kontakt med Försäkringskassan önskas", "Ja")
            if content.wants_contact_with_fk
            else None,
            text("contact_reason", "Anledning till kontakt", content.contact_reason),
            Row("contagious_disease_leave", "Avstängning enligt smittskyddslagen", "Ja")
            if content.contagious_disease_leave
            else None,
            Row("diagnosis_to_employer", "Diagnosen förmedlas till arbetsgivaren", yes_no(to_employer))
            if to_employer is not None
            else None,
        ],
    )
    return sections


def dispatch_views(rows: Sequence[DispatchRow]) -> list[DispatchView]:
    return [DispatchView(r.recipient_id, r.state, r.reason, r.outcome_at or r.requested_at) for r in rows]


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


def list_item(row: ListRow, now: datetime, new_days: int) -> ListItem:
    replaced = row.replaced_by is not None
    signed_at = row.signed_at.astimezone(STOCKHOLM)  # years and dates as the citizen reads them
    return ListItem(
        id=row.id,
        type=row.type,
        type_name=type_name(row.type),
        signed_at=signed_at,
        signed_date=signed_at.date().isoformat(),
        care_unit_name=row.care_unit_name,
        care_unit_hsa=row.care_unit_hsa,
        issuer_name=row.issuer_name,
        archived=row.archived,
        replaced=replaced,
        send_state=row.send_state,
        badges=badges(
            certificate_type=row.type,
            signed_at=row.signed_at,
            replaced=replaced,
            send=row.send_state,
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


def history_rows(rows: Sequence[HistoryRow]) -> list[dict[str, str]]:
    """The status history as the citizen reads it."""
    result = []
    for r in rows:
        label = word(STATES, r.state)
        if r.state == "SENT":
            label = f"Skickat till {word(RECIPIENTS, r.party)}"
        elif r.state == "REPLACED":
            label = f"Ersatt av intyg {r.detail}"
        result.append({"state": r.state, "label": label, "party": r.party, "at": fmt_time(r.at)})
    return result


def send_status(dispatches: Sequence[DispatchView]) -> str | None:
    return send_state(dispatches)


def actor_text(actor: str | None, action: str = "") -> str:
    """Who did it, as the citizen reads it: themselves, the party that fetched it, or the operator (by identity)."""
    if actor is None:
        return "Du"
    if action == "fetched":
        return word(RECIPIENTS, actor)
    return f"Driftpersonal ({actor})"
