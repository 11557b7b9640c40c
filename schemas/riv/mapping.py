"""Between a certificate in the RIV-TA transport format (`transport.Intyg`) and Mina intyg's certificate model
(`schemas.certificate`), field by field, both ways: what a journal system registers is what Försäkringskassan
receives, nothing lost. The published rules (`rules.py`) are checked first; this module refuses only what our
model cannot hold, naming it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from schemas import codesystems
from schemas.certificate import (
    CERTIFICATE_ADAPTER,
    Ag7804Certificate,
    Ag7804Content,
    County,
    LisjpCertificate,
    PrognosisKind,
    RelationKind,
)
from schemas.identifiers import parse_personal_number
from schemas.riv import namespaces as ns
from schemas.riv.transport import (
    CV,
    II,
    DatePeriod,
    Delsvar,
    Enhet,
    HosPersonal,
    Intyg,
    Patient,
    Relation,
    Svar,
    Vardgivare,
)

SWEDEN = ZoneInfo("Europe/Stockholm")
Certificate = LisjpCertificate | Ag7804Certificate

TYPE_NAMES = {"LISJP": "Läkarintyg för sjukpenning", "AG7804": "Läkarintyg om arbetsförmåga – arbetsgivaren"}
KV_FKMU_0001, KV_FKMU_0002, KV_FKMU_0003 = "KV_FKMU_0001", "KV_FKMU_0002", "KV_FKMU_0003"
KV_FKMU_0004, KV_FKMU_0006, KV_FKMU_0007 = "KV_FKMU_0004", "KV_FKMU_0006", "KV_FKMU_0007"

DEGREES = {"HELT_NEDSATT": 100, "TRE_FJARDEDEL": 75, "HALFTEN": 50, "EN_FJARDEDEL": 25}
PROGNOSES = {
    "STOR_SANNOLIKHET": PrognosisKind.LIKELY,
    "SANNOLIKT_INTE": PrognosisKind.UNLIKELY,
    "PROGNOS_OKLAR": PrognosisKind.UNCLEAR,
    "ATER_X_ANTAL_DGR": PrognosisKind.BACK_WITHIN_DAYS,
}
DAYS = {
    "TRETTIO_DGR": 30,
    "SEXTIO_DGR": 60,
    "NITTIO_DGR": 90,
    "HUNDRAATTIO_DAGAR": 180,
    "TREHUNDRASEXTIOFEM_DAGAR": 365,
}
RELATIONS = {"ERSATT": RelationKind.REPLACES, "KOMPLT": RelationKind.COMPLEMENTS, "FRLANG": RelationKind.EXTENDS}
UNKNOWN_WORKPLACE = "0000000"
DIAGNOSIS_PARTS = (("6.1", "6.2"), ("6.3", "6.4"), ("6.5", "6.6"))  # (text, code): main, then two secondary
RELATION_NAMES = {"ERSATT": "Ersätter", "KOMPLT": "Kompletterar", "FRLANG": "Förlänger"}


class NotMappable(ValueError):
    """A certificate that follows the published rules but that Mina intyg's model cannot hold: every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- transport → model ------------------------------------------------------------------------------------------


def swedish_time_to_utc(value: datetime) -> datetime:
    """A contract time (Swedish local time, no zone) as an aware UTC time."""
    return value.replace(tzinfo=SWEDEN).astimezone(UTC)


def utc_to_swedish_time(value: datetime) -> datetime:
    return value.astimezone(SWEDEN).replace(tzinfo=None, microsecond=0)


def _boolean(delsvar: Delsvar | None) -> bool | None:
    return None if delsvar is None else delsvar.text in ("true", "1")


def _text(delsvar: Delsvar | None) -> str | None:
    return None if delsvar is None or not delsvar.text else delsvar.text


def _code(delsvar: Delsvar | None) -> str | None:
    return delsvar.value.code.strip() if delsvar is not None and isinstance(delsvar.value, CV) else None


def _address(street: str, postal_code: str, city: str) -> dict[str, str] | None:
    if not (street or postal_code or city):
        return None
    return {"street": street, "postal_code": postal_code, "city": city}


def to_certificate(intyg: Intyg, county: County) -> Certificate:
    """Our model of a registered certificate; `county` is the care unit's (from the register of connected units).
    Raises NotMappable naming every field our model refuses."""
    kind = intyg.typ.code
    if kind not in TYPE_NAMES:
        raise NotMappable([f"intygstypen {kind} tas inte emot av Mina intyg"])
    person = intyg.patient.person_id.extension
    one = {svar.id: svar for svar in intyg.svar if svar.instans is None}
    many: dict[str, list[Svar]] = {}
    for svar in intyg.svar:
        many.setdefault(svar.id, []).append(svar)

    def part(svar_id: str, delsvar_id: str) -> Delsvar | None:
        svar = one.get(svar_id) or next(iter(many.get(svar_id, [])), None)
        return None if svar is None else svar.part(delsvar_id)

    content: dict[str, Any] = {}
    if basis := many.get("1"):
        content["assessment_basis"] = [
            {
                "kind": _code(s.part("1.1")),
                "date": _date(s.part("1.2")),
                "description": _text(s.part("1.3")),
            }
            for s in sorted(basis, key=_instans)
        ]
    if occupations := many.get("28"):
        content["occupations"] = [_code(s.part("28.1")) for s in sorted(occupations, key=_instans)]
    content["occupation_text"] = _text(part("29", "29.1"))
    content["programme_activities"] = _text(part("30", "30.1"))
    if "6" in many:
        diagnoses = []
        for text_id, code_id in DIAGNOSIS_PARTS:
            code = part("6", code_id)
            if code is not None and isinstance(code.value, CV):
                diagnoses.append(
                    {
                        "code": code.value.code.strip(),
                        "code_system": code.value.code_system.strip(),
                        "description": _text(part("6", text_id)),
                    }
                )
        content["diagnoses"] = diagnoses or None
    content["functional_impairment"] = _text(part("35", "35.1"))
    content["activity_limitation"] = _text(part("17", "17.1"))
    content["ongoing_treatment"] = _text(part("19", "19.1"))
    content["planned_treatment"] = _text(part("20", "20.1"))
    if periods := many.get("32"):
        content["sick_leave_periods"] = [_period(s) for s in sorted(periods, key=_instans)]
    content["fmb_motivation"] = _text(part("37", "37.1"))
    if "33" in many:
        content["working_time_arrangement"] = {
            "recommended": _boolean(part("33", "33.1")),
            "motivation": _text(part("33", "33.2")),
        }
    content["travel_to_work"] = _boolean(part("34", "34.1"))
    if "39" in many:
        days = _code(part("39", "39.3"))
        content["prognosis"] = {
            "kind": PROGNOSES.get(_code(part("39", "39.1")) or "", _code(part("39", "39.1"))),
            "days": DAYS.get(days or "", days) if days else None,
        }
    if measures := many.get("40"):
        content["work_measures"] = [_code(s.part("40.1")) for s in sorted(measures, key=_instans)]
    content["work_measures_description"] = _text(part("44", "44.1"))
    content["other_information"] = _text(part("25", "25.1"))
    content["wants_contact_with_fk"] = bool(_boolean(part("26", "26.1")))
    content["contact_reason"] = _text(part("26", "26.2"))
    content["contagious_disease_leave"] = bool(_boolean(part("27", "27.1")))
    supplementary = [s for s in intyg.svar if s.id.isdigit() and 9000 <= int(s.id) <= 9999]
    if supplementary:
        content["supplementary"] = [
            {"question": int(s.id), "text": _text(s.part(f"{s.id}.1"))} for s in sorted(supplementary, key=_by_id)
        ]
    if kind == "AG7804":
        content["diagnosis_to_employer"] = _boolean(part("100", "100.1"))
        content["wants_contact_with_employer"] = _boolean(part("103", "103.1"))
        content["employer_contact_reason"] = _text(part("103", "103.2"))

    skapad_av = intyg.skapad_av
    enhet = skapad_av.enhet
    document: dict[str, Any] = {
        "id": intyg.intygs_id.extension,
        "id_root": intyg.intygs_id.root or None,
        "type": kind,
        "type_version": _type_version(intyg.version),
        "signed_at": swedish_time_to_utc(intyg.signeringstidpunkt) if intyg.signeringstidpunkt else None,
        "sent_at": swedish_time_to_utc(intyg.skickat_tidpunkt) if intyg.skickat_tidpunkt else None,
        "patient": {
            "personnummer": person,
            "given_name": intyg.patient.fornamn,
            "family_name": intyg.patient.efternamn,
            "middle_name": intyg.patient.mellannamn or None,
            "address": _address(intyg.patient.postadress, intyg.patient.postnummer, intyg.patient.postort),
        },
        "issuer": {
            "hsa_id": skapad_av.personal_id.extension,
            "name": skapad_av.fullstandigt_namn,
            "prescriber_code": skapad_av.forskrivarkod or None,
            "positions": [{"code": b.code, "name": b.display_name} for b in skapad_av.befattningar] or None,
            "specialities": [{"code": k.code, "name": k.display_name} for k in skapad_av.specialistkompetenser] or None,
        },
        "care_unit": {
            "hsa_id": enhet.enhets_id.extension,
            "name": enhet.enhetsnamn,
            "address": _address(enhet.postadress, enhet.postnummer, enhet.postort),
            "phone": enhet.telefonnummer,
            "county": county.value,
            "care_provider": {
                "hsa_id": enhet.vardgivare.vardgivare_id.extension,
                "name": enhet.vardgivare.vardgivarnamn,
            },
            "workplace_code": enhet.arbetsplatskod.extension or None,
            "email": enhet.epost,
        },
        "content": {k: v for k, v in content.items() if v is not None},
    }
    problems = _relation(intyg.relationer, document)
    try:
        certificate = CERTIFICATE_ADAPTER.validate_python(_drop_none(document))
    except ValidationError as exc:
        problems += [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise NotMappable(problems) from None
    if problems:
        raise NotMappable(problems)
    return certificate


def _relation(relationer: tuple[Relation, ...], document: dict[str, Any]) -> list[str]:
    if not relationer:
        return []
    if len(relationer) > 1:
        return ["Mina intyg tar emot högst en relation per intyg"]
    relation = relationer[0]
    kind = RELATIONS.get(relation.typ.code.strip())
    if kind is None:
        return [f"relationstypen {relation.typ.code} tas inte emot av Mina intyg (ERSATT, KOMPLT eller FRLANG)"]
    document["relation"] = {"kind": kind.value, "certificate_id": relation.intygs_id.extension}
    return []


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _path(loc: Iterable[int | str]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in TYPE_NAMES))


def _type_version(version: str) -> str:
    return version if "." in version else f"{version}.0"


def _instans(svar: Svar) -> int:
    return svar.instans or 0


def _by_id(svar: Svar) -> int:
    return int(svar.id)


def _date(delsvar: Delsvar | None) -> str | None:
    if delsvar is None:
        return None
    return delsvar.value.isoformat() if isinstance(delsvar.value, date) else delsvar.text


def _period(svar: Svar) -> dict[str, Any]:
    grade = _code(svar.part("32.1"))
    period = svar.part("32.2")
    value = period.value if period is not None and isinstance(period.value, DatePeriod) else DatePeriod(None, None)
    return {"degree": DEGREES.get(grade or "", grade), "start": value.start, "end": value.end}


# --- model → transport ------------------------------------------------------------------------------------------

NameOf = Callable[[str, str], str | None]


def _listed_name(code_system: str, code: str) -> str | None:
    entry = codesystems.find(code_system, code)
    return entry.swedish_name if entry is not None else None


@dataclass(frozen=True)
class Names:
    """Display names the transport format carries for codes: the diagnosis text (6.1) when the issuer wrote
    none is the code's Swedish name in its code list, as a journal system writes it."""

    diagnosis: NameOf = _listed_name


def _cv(code: str, system: str, display: str | None = None) -> CV:
    return CV(code=code, code_system=system, display_name=display)


def _svar(svar_id: str, *parts: Delsvar, instans: int | None = None) -> Svar:
    return Svar(id=svar_id, delsvar=parts, instans=instans)


def _t(delsvar_id: str, text: str) -> Delsvar:
    return Delsvar(id=delsvar_id, text=text)


def _b(delsvar_id: str, value: bool) -> Delsvar:
    return Delsvar(id=delsvar_id, text="true" if value else "false")


def _v(delsvar_id: str, value: CV | DatePeriod) -> Delsvar:
    return Delsvar(id=delsvar_id, value=value, elements=1)


def _hsa(extension: str) -> II:
    return II(root=ns.HSA_ID_OID, extension=extension)


def person_id(personnummer: str, on: date) -> II:
    """The contract's person-id: twelve digits (a ten-digit form's century as of `on`), a samordningsnummer by
    its own OID."""
    parsed = parse_personal_number(personnummer, on)
    root = ns.SAMORDNINGSNUMMER_OID if parsed.coordination_number else ns.PERSONNUMMER_OID
    return II(root=root, extension=parsed.digits)


def _svar_list(cert: Certificate, names: Names) -> list[Svar]:
    c = cert.content
    out: list[Svar] = []
    for i, basis in enumerate(c.assessment_basis or [], start=1):
        parts = [_v("1.1", _cv(basis.kind.value, KV_FKMU_0001)), _t("1.2", basis.date.isoformat())]
        if basis.description:
            parts.append(_t("1.3", basis.description))
        out.append(_svar("1", *parts, instans=i))
    if c.contagious_disease_leave:
        out.append(_svar("27", _b("27.1", True)))
    for i, occupation in enumerate(c.occupations or [], start=1):
        out.append(_svar("28", _v("28.1", _cv(occupation.value, KV_FKMU_0002)), instans=i))
    if c.occupation_text:
        out.append(_svar("29", _t("29.1", c.occupation_text)))
    if c.programme_activities:
        out.append(_svar("30", _t("30.1", c.programme_activities)))
    if c.diagnoses:
        parts = []
        for diagnosis, (text_id, code_id) in zip(c.diagnoses, DIAGNOSIS_PARTS, strict=False):
            code = diagnosis.code.replace(".", "").upper()
            described = diagnosis.description or names.diagnosis(diagnosis.code_system, code) or code
            parts += [_t(text_id, described), _v(code_id, _cv(code, diagnosis.code_system))]
        out.append(_svar("6", *parts))
    for svar_id, text in (
        ("35", c.functional_impairment),
        ("17", c.activity_limitation),
        ("19", c.ongoing_treatment),
        ("20", c.planned_treatment),
    ):
        if text:
            out.append(_svar(svar_id, _t(f"{svar_id}.1", text)))
    grades = {v: k for k, v in DEGREES.items()}
    for i, period in enumerate(c.sick_leave_periods or [], start=1):
        out.append(
            _svar(
                "32",
                _v("32.1", _cv(grades[period.degree], KV_FKMU_0003)),
                _v("32.2", DatePeriod(period.start, period.end)),
                instans=i,
            )
        )
    if c.fmb_motivation:
        out.append(_svar("37", _t("37.1", c.fmb_motivation)))
    if (arrangement := c.working_time_arrangement) is not None:
        parts = [_b("33.1", arrangement.recommended)]
        if arrangement.motivation:
            parts.append(_t("33.2", arrangement.motivation))
        out.append(_svar("33", *parts))
    if c.travel_to_work is not None:
        out.append(_svar("34", _b("34.1", c.travel_to_work)))
    if (prognosis := c.prognosis) is not None:
        prognoses = {v: k for k, v in PROGNOSES.items()}
        parts = [_v("39.1", _cv(prognoses[prognosis.kind], KV_FKMU_0006))]
        if prognosis.days is not None:
            days = {v: k for k, v in DAYS.items()}
            parts.append(_v("39.3", _cv(days[prognosis.days], KV_FKMU_0007)))
        out.append(_svar("39", *parts))
    for i, measure in enumerate(c.work_measures or [], start=1):
        out.append(_svar("40", _v("40.1", _cv(measure.value, KV_FKMU_0004)), instans=i))
    if c.work_measures_description:
        out.append(_svar("44", _t("44.1", c.work_measures_description)))
    if c.other_information:
        out.append(_svar("25", _t("25.1", c.other_information)))
    if c.wants_contact_with_fk:
        parts = [_b("26.1", True)]
        if c.contact_reason:
            parts.append(_t("26.2", c.contact_reason))
        out.append(_svar("26", *parts))
    if isinstance(c, Ag7804Content):
        if c.diagnosis_to_employer is not None:
            out.append(_svar("100", _b("100.1", c.diagnosis_to_employer)))
        if c.wants_contact_with_employer is not None:
            parts = [_b("103.1", c.wants_contact_with_employer)]
            if c.employer_contact_reason:
                parts.append(_t("103.2", c.employer_contact_reason))
            out.append(_svar("103", *parts))
    for answer in c.supplementary or []:
        out.append(_svar(str(answer.question), _t(f"{answer.question}.1", answer.text)))
    return out


def from_certificate(cert: Certificate, *, names: Names | None = None, sent_at: datetime | None = None) -> Intyg:
    """The certificate in the transport format (to Försäkringskassan, and in answers to its fetch)."""
    names = names or Names()
    unit = cert.care_unit
    patient_address = cert.patient.address
    unit_address = unit.address
    relation = cert.relation
    relation_codes = {v: k for k, v in RELATIONS.items()}
    sent = sent_at or cert.sent_at
    return Intyg(
        intygs_id=II(root=cert.id_root or unit.hsa_id, extension=cert.id),
        typ=_cv(cert.type, ns.KV_INTYGSTYP, TYPE_NAMES[cert.type]),
        version=cert.type_version,
        signeringstidpunkt=utc_to_swedish_time(cert.signed_at),
        skickat_tidpunkt=utc_to_swedish_time(sent) if sent else None,
        patient=Patient(
            person_id=person_id(cert.patient.personnummer, utc_to_swedish_time(cert.signed_at).date()),
            fornamn=cert.patient.given_name,
            efternamn=cert.patient.family_name,
            mellannamn=cert.patient.middle_name,
            postadress=patient_address.street if patient_address else "",
            postnummer=patient_address.postal_code if patient_address else "",
            postort=patient_address.city if patient_address else "",
        ),
        skapad_av=HosPersonal(
            personal_id=_hsa(cert.issuer.hsa_id),
            fullstandigt_namn=cert.issuer.name,
            forskrivarkod=cert.issuer.prescriber_code,
            befattningar=tuple(_cv(p.code, ns.KV_BEFATTNING, p.name) for p in cert.issuer.positions or []),
            specialistkompetenser=tuple(CV(s.code, "", display_name=s.name) for s in cert.issuer.specialities or []),
            enhet=Enhet(
                enhets_id=_hsa(unit.hsa_id),
                # The contract requires a workplace code; a unit delivered without one is sent as 0000000.
                arbetsplatskod=II(root=ns.ARBETSPLATSKOD_OID, extension=unit.workplace_code or UNKNOWN_WORKPLACE),
                enhetsnamn=unit.name,
                postadress=unit_address.street,
                postnummer=unit_address.postal_code,
                postort=unit_address.city,
                telefonnummer=unit.phone,
                epost=unit.email,
                vardgivare=Vardgivare(
                    vardgivare_id=_hsa(unit.care_provider.hsa_id), vardgivarnamn=unit.care_provider.name
                ),
            ),
        ),
        relationer=(
            ()
            if relation is None
            else (
                Relation(
                    typ=_cv(
                        relation_codes[relation.kind],
                        ns.KV_RELATION,
                        RELATION_NAMES[relation_codes[relation.kind]],
                    ),
                    intygs_id=II(root=cert.id_root or unit.hsa_id, extension=relation.certificate_id),
                ),
            )
        ),
        svar=tuple(_svar_list(cert, names)),
    )
