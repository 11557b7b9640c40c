"""Certificate models: the part every certificate type shares, and the content of each type.

The models describe shape only. The rules a certificate must follow to be accepted (LISJP's mandatory questions,
overlapping periods, valid ICD-10 codes...) live with intake, because rules may tighten while every certificate
already on a topic must still parse.

Adding a type means: a content model, a `CertificateBase` subclass with a `Literal` type code, and an entry in
`Certificate` and in `schemas.certificate_types.CERTIFICATE_TYPES`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from schemas.base import Frozen

CertificateId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
HsaId = Annotated[str, Field(min_length=3, max_length=31, description="HSA-id, e.g. SE2321000016-15CQ")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
FreeText = Annotated[str, Field(min_length=1, max_length=4000)]
# A person's name as the national contracts carry it: empty for a person with a protected identity.
NameText = Annotated[str, Field(max_length=200)]


class County(StrEnum):
    """Swedish counties (län) by their official two-digit code."""

    STOCKHOLM = "01"
    UPPSALA = "03"
    SODERMANLAND = "04"
    OSTERGOTLAND = "05"
    JONKOPING = "06"
    KRONOBERG = "07"
    KALMAR = "08"
    GOTLAND = "09"
    BLEKINGE = "10"
    SKANE = "12"
    HALLAND = "13"
    VASTRA_GOTALAND = "14"
    VARMLAND = "17"
    OREBRO = "18"
    VASTMANLAND = "19"
    DALARNA = "20"
    GAVLEBORG = "21"
    VASTERNORRLAND = "22"
    JAMTLAND = "23"
    VASTERBOTTEN = "24"
    NORRBOTTEN = "25"


COUNTY_NAMES: dict[County, str] = {
    County.STOCKHOLM: "Stockholms län",
    County.UPPSALA: "Uppsala län",
    County.SODERMANLAND: "Södermanlands län",
    County.OSTERGOTLAND: "Östergötlands län",
    County.JONKOPING: "Jönköpings län",
    County.KRONOBERG: "Kronobergs län",
    County.KALMAR: "Kalmar län",
    County.GOTLAND: "Gotlands län",
    County.BLEKINGE: "Blekinge län",
    County.SKANE: "Skåne län",
    County.HALLAND: "Hallands län",
    County.VASTRA_GOTALAND: "Västra Götalands län",
    County.VARMLAND: "Värmlands län",
    County.OREBRO: "Örebro län",
    County.VASTMANLAND: "Västmanlands län",
    County.DALARNA: "Dalarnas län",
    County.GAVLEBORG: "Gävleborgs län",
    County.VASTERNORRLAND: "Västernorrlands län",
    County.JAMTLAND: "Jämtlands län",
    County.VASTERBOTTEN: "Västerbottens län",
    County.NORRBOTTEN: "Norrbottens län",
}


class Address(Frozen):
    street: ShortText
    postal_code: Annotated[str, Field(pattern=r"^\d{3} ?\d{2}$")]
    city: ShortText


class CodedValue(Frozen):
    """A code with the name it is shown by (a position or a specialist competence of the issuer)."""

    code: ShortText
    name: ShortText | None = None


class Patient(Frozen):
    personnummer: Annotated[str, Field(min_length=10, max_length=13, description="Personnummer or samordningsnummer")]
    given_name: NameText
    family_name: NameText
    middle_name: ShortText | None = None
    address: Address | None = None
    test_patient: bool = Field(False, description="Marked by the national platform; never counted or sent")


class Issuer(Frozen):
    hsa_id: HsaId
    name: NameText
    title: ShortText | None = None
    prescriber_code: Annotated[str, Field(min_length=1, max_length=20)] | None = Field(
        None, description="Förskrivarkod (RIV-TA skapadAv/forskrivarkod)"
    )
    positions: Annotated[list[CodedValue], Field(max_length=10)] | None = Field(
        None, description="Befattningar, HSA codes (code system 1.2.752.129.2.2.1.4)"
    )
    specialities: Annotated[list[CodedValue], Field(max_length=10)] | None = Field(
        None, description="Specialistkompetenser"
    )


class CareProvider(Frozen):
    hsa_id: HsaId
    name: ShortText


class CareUnit(Frozen):
    hsa_id: HsaId
    name: ShortText
    address: Address
    phone: Annotated[str, Field(min_length=5, max_length=20, pattern=r"^[0-9+\- ]+$")]
    county: County
    care_provider: CareProvider
    workplace_code: ShortText | None = Field(None, description="Arbetsplatskod (root 1.2.752.29.4.71)")
    email: ShortText | None = None


class RelationKind(StrEnum):
    REPLACES = "REPLACES"
    COMPLEMENTS = "COMPLEMENTS"
    EXTENDS = "EXTENDS"


class Relation(Frozen):
    kind: RelationKind
    certificate_id: CertificateId


# --- LISJP content (question numbers as on form FK 7804) ---------------------------------------------------


class BasisKind(StrEnum):
    """Question 1: what the assessment is based on."""

    EXAMINATION = "UNDERSOKNING"
    PHONE_CONTACT = "TELEFONKONTAKT"
    RECORDS = "JOURNALUPPGIFTER"
    OTHER = "ANNAT"


class AssessmentBasis(Frozen):
    kind: BasisKind
    date: date
    description: FreeText | None = Field(None, description="Required when kind is ANNAT")


class OccupationKind(StrEnum):
    """Question 28: the patient's occupation."""

    CURRENT_WORK = "NUVARANDE_ARBETE"
    JOB_SEEKER = "ARBETSSOKANDE"
    PARENTAL_LEAVE = "FORALDRALEDIG"
    STUDIES = "STUDIER"
    PROGRAMME = "PROGRAM"  # a labour-market programme (question 30; LISJP only)


class Diagnosis(Frozen):
    """Question 6: one diagnosis code (the first in a list is the main diagnosis) in the code system its OID names:
    ICD-10-SE (the default) or primary care's KSH97-P. Intake checks the code against that code system's list."""

    code: Annotated[
        str,
        Field(min_length=3, max_length=6, description="ICD-10-SE or KSH97-P code, e.g. F32.9, F329, F43.8A or A02-P"),
    ]
    description: ShortText | None = None
    # Optional with a default: every certificate issued before the field existed used ICD-10-SE.
    code_system: Annotated[
        str,
        Field(
            max_length=64,
            pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$",
            description="OID of the code system: 1.2.752.116.1.1.1.1.3 ICD-10-SE, 1.2.752.116.1.3.1.4.1 KSH97-P",
        ),
    ] = "1.2.752.116.1.1.1.1.3"


class SickLeavePeriod(Frozen):
    """Question 32: one period of reduced work capacity."""

    degree: Literal[25, 50, 75, 100] = Field(description="Reduction of work capacity in percent")
    start: date
    end: date


class WorkingTimeArrangement(Frozen):
    """Question 33: whether the working time may be arranged differently."""

    recommended: bool
    motivation: FreeText | None = None


class PrognosisKind(StrEnum):
    """Question 39: prognosis for return to work."""

    BACK_WITHIN_DAYS = "ATER_X_ANTAL_DGR"
    LIKELY = "STOR_SANNOLIKHET"
    UNLIKELY = "SANNOLIKT_EJ_ATERGA_TILL_SYSSELSATTNING"
    UNCLEAR = "PROGNOS_OKLAR"


class Prognosis(Frozen):
    kind: PrognosisKind
    days: Literal[30, 60, 90, 180, 365] | None = Field(None, description="Required with ATER_X_ANTAL_DGR")


class WorkMeasure(StrEnum):
    """Question 40: work-related measures; EJ_AKTUELLT excludes the others."""

    NOT_RELEVANT = "EJ_AKTUELLT"
    WORK_TRAINING = "ARBETSTRANING"
    WORK_ADAPTATION = "ARBETSANPASSNING"
    FIND_NEW_WORK = "SOKA_NYTT_ARBETE"
    WORKPLACE_VISIT = "BESOK_ARBETSPLATS"
    ERGONOMICS = "ERGONOMISK"
    AIDS = "HJALPMEDEL"
    OCCUPATIONAL_HEALTH = "KONTAKT_FHV"
    CONFLICT_MANAGEMENT = "KONFLIKTHANTERING"  # LISJP only
    REDISTRIBUTION = "OMFORDELNING"
    OTHER = "OVRIGA_ATGARDER"


class SupplementaryAnswer(Frozen):
    """An answer to one of Försäkringskassan's supplementary questions (tilläggsfrågor, ids 9001–9999)."""

    question: Annotated[int, Field(ge=9000, le=9999)]
    text: FreeText


class LisjpContent(Frozen):
    """The questions of Läkarintyg för sjukpenning (FK 7804)."""

    assessment_basis: Annotated[list[AssessmentBasis], Field(max_length=4)] | None = Field(
        None, description="Question 1"
    )
    occupations: Annotated[list[OccupationKind], Field(max_length=4)] | None = Field(None, description="Question 28")
    occupation_text: FreeText | None = Field(None, description="Question 29, required with NUVARANDE_ARBETE")
    programme_activities: FreeText | None = Field(None, description="Question 30, required with PROGRAM")
    diagnoses: Annotated[list[Diagnosis], Field(max_length=3)] | None = Field(
        None, description="Question 6: main diagnosis first, then up to two secondary"
    )
    functional_impairment: FreeText | None = Field(None, description="Question 35")
    activity_limitation: FreeText | None = Field(None, description="Question 17")
    ongoing_treatment: FreeText | None = Field(None, description="Question 19")
    planned_treatment: FreeText | None = Field(None, description="Question 20")
    sick_leave_periods: Annotated[list[SickLeavePeriod], Field(max_length=4)] | None = Field(
        None, description="Question 32"
    )
    fmb_motivation: FreeText | None = Field(
        None, description="Question 37: why the sick leave exceeds the insurance-medical decision support (FMB)"
    )
    working_time_arrangement: WorkingTimeArrangement | None = Field(None, description="Question 33")
    travel_to_work: bool | None = Field(None, description="Question 34: travel to and from work instead")
    prognosis: Prognosis | None = Field(None, description="Question 39")
    work_measures: Annotated[list[WorkMeasure], Field(max_length=10)] | None = Field(None, description="Question 40")
    work_measures_description: FreeText | None = Field(None, description="Question 44")
    other_information: FreeText | None = Field(None, description="Question 25")
    wants_contact_with_fk: bool = Field(False, description="Question 26")
    contact_reason: FreeText | None = None
    contagious_disease_leave: bool = Field(False, description="Question 27: smittskydd")
    supplementary: Annotated[list[SupplementaryAnswer], Field(max_length=100)] | None = Field(
        None, description="Försäkringskassan's supplementary questions (LISJP)"
    )


class Ag7804Content(LisjpContent):
    """Läkarintyg om arbetsförmåga – arbetsgivaren: LISJP's content plus question 100."""

    diagnosis_to_employer: bool | None = Field(
        None, description="Question 100: the patient wants the diagnosis passed on to the employer"
    )
    wants_contact_with_employer: bool | None = Field(None, description="Question 103: contact with the employer")
    employer_contact_reason: FreeText | None = Field(None, description="Question 103.2")


# --- Certificates -----------------------------------------------------------------------------------------


class CertificateBase(Frozen):
    """What every certificate type carries."""

    id: CertificateId
    type_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "1.0"
    signed_at: AwareDatetime
    sent_at: AwareDatetime | None = Field(None, description="When the care system sent it (RIV-TA skickatTidpunkt)")
    id_root: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="The root of the id in the national contracts (usually the issuing unit's HSA-id)"
    )
    patient: Patient
    issuer: Issuer
    care_unit: CareUnit
    relation: Relation | None = None


class LisjpCertificate(CertificateBase):
    type: Literal["LISJP"]
    content: LisjpContent


class Ag7804Certificate(CertificateBase):
    type: Literal["AG7804"]
    content: Ag7804Content


Certificate = Annotated[LisjpCertificate | Ag7804Certificate, Field(discriminator="type")]
CERTIFICATE_ADAPTER: TypeAdapter[LisjpCertificate | Ag7804Certificate] = TypeAdapter(Certificate)
