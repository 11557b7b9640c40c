"""Valid LISJP v1 and AG7804 v1 certificates in the RIV-TA transport model, with realistic values, for tests.

`lisjp()` and `ag7804()` answer every question of their form (svar 1 twice, to show both a plain and an 'Annat'
grund); `SIGNED` is their signing time and `TODAY` the date to check them on. The small builders (`text`, `code`,
`period`, `svar`) make variants: `replace_svar(intyg, ...)` swaps answers in a sample.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

from schemas.riv import namespaces as ns
from schemas.riv.transport import CV, II, DatePeriod, Delsvar, Enhet, HosPersonal, Intyg, Patient, Svar, Vardgivare

SIGNED = datetime(2026, 3, 2, 10, 15, 30)  # noqa: DTZ001 - the contract's times are naive Swedish local time
TODAY = SIGNED.date()
LISJP_ID = "9f0c3a52-6d1e-4b8a-a0d4-2c6f1e7b8a31"
AG7804_ID = "3b7e2d90-1c4f-4e6a-9b2d-5a8c0f3e1d47"
UNIT_HSA_ID = "SE2321000016-H489"
ICD10_SE = ns.ICD10_SE_OID


def text(delsvar_id: str, value: str) -> Delsvar:
    """A text, boolean or date delsvar (its content as written)."""
    return Delsvar(id=delsvar_id, text=value)


def code(delsvar_id: str, value: str, code_system: str, display_name: str | None = None) -> Delsvar:
    return Delsvar(id=delsvar_id, value=CV(value, code_system, display_name=display_name), elements=1)


def period(delsvar_id: str, start: date | None, end: date | None) -> Delsvar:
    return Delsvar(id=delsvar_id, value=DatePeriod(start, end), elements=1)


def svar(svar_id: str, *delsvar: Delsvar, instans: int | None = None) -> Svar:
    return Svar(id=svar_id, delsvar=delsvar, instans=instans)


def replace_svar(intyg: Intyg, *svar: Svar, drop: tuple[str, ...] = ()) -> Intyg:
    """The sample with every answer to the ids in `drop` removed and `svar` appended."""
    kept = tuple(s for s in intyg.svar if s.id not in drop)
    return dataclasses.replace(intyg, svar=kept + svar)


def skapad_av() -> HosPersonal:
    return HosPersonal(
        personal_id=II(ns.HSA_ID_OID, "SE2321000016-H2R5"),
        fullstandigt_namn="Ajla Doktor",
        forskrivarkod="1234567",
        befattningar=(CV("203090", ns.KV_BEFATTNING, display_name="Läkare legitimerad, annan"),),
        specialistkompetenser=(CV("Allmänmedicin", "", display_name="Allmänmedicin"),),
        enhet=Enhet(
            enhets_id=II(ns.HSA_ID_OID, UNIT_HSA_ID),
            arbetsplatskod=II(ns.ARBETSPLATSKOD_OID, "1234567890"),
            enhetsnamn="Vårdcentralen Småmåla",
            postadress="Storgatan 1",
            postnummer="12345",
            postort="Småmåla",
            telefonnummer="0101234567890",
            epost="vardcentralen.smamala@example.se",
            vardgivare=Vardgivare(vardgivare_id=II(ns.HSA_ID_OID, "SE2321000016-15CQ"), vardgivarnamn="Region Småland"),
        ),
    )


def patient() -> Patient:
    return Patient(
        person_id=II(ns.PERSONNUMMER_OID, "191212121212"),
        fornamn="Tolvan",
        efternamn="Tolvansson",
        postadress="Svensson, Storgatan 1, PL 1234",
        postnummer="12345",
        postort="Småmåla",
    )


def _common_svar() -> list[Svar]:
    """The answers LISJP and AG7804 share (svar 1, 27, 28, 29, 6, 35, 17, 19, 20, 32, 37, 33, 34, 39, 40, 44, 25)."""
    return [
        svar(
            "1",
            code("1.1", "UNDERSOKNING", "KV_FKMU_0001", "Min undersökning av patienten"),
            text("1.2", "2026-03-02"),
            instans=1,
        ),
        svar(
            "1",
            code("1.1", "ANNAT", "KV_FKMU_0001", "Annat"),
            text("1.2", "2026-02-20"),
            text("1.3", "Intyg från företagshälsovården"),
            instans=2,
        ),
        svar("27", text("27.1", "false")),
        svar("28", code("28.1", "NUVARANDE_ARBETE", "KV_FKMU_0002", "Nuvarande arbete"), instans=1),
        svar("29", text("29.1", "Projektledare, planerar och leder byggprojekt")),
        svar(
            "6",
            text("6.1", "Utmattningssyndrom"),
            code("6.2", "F438A", ICD10_SE, "Utmattningssyndrom"),
            text("6.3", "Lätt depressiv episod"),
            code("6.4", "F320", ICD10_SE, "Lätt depressiv episod"),
            text("6.5", "Sömnstörning, ospecificerad"),
            code("6.6", "G479", ICD10_SE, "Sömnstörning, ospecificerad"),
        ),
        svar("35", text("35.1", "Nedsatt koncentrationsförmåga och minne, uttalad uttröttbarhet")),
        svar("17", text("17.1", "Klarar inte att planera och genomföra arbetsuppgifter under längre tid")),
        svar("19", text("19.1", "Samtalsbehandling hos psykolog, Vårdcentralen Småmåla")),
        svar("20", text("20.1", "KBT-behandling planeras, Vårdcentralen Småmåla")),
        svar(
            "32",
            code("32.1", "HALFTEN", "KV_FKMU_0003", "50%"),
            period("32.2", date(2026, 3, 2), date(2026, 3, 15)),
            instans=1,
        ),
        svar(
            "32",
            code("32.1", "EN_FJARDEDEL", "KV_FKMU_0003", "25%"),
            period("32.2", date(2026, 3, 16), date(2026, 4, 12)),
            instans=2,
        ),
        svar("37", text("37.1", "Längre sjukskrivning än FMB anger behövs för gradvis återgång")),
        svar("33", text("33.1", "true"), text("33.2", "Arbete förmiddagar ger bäst förutsättningar för återgång")),
        svar("34", text("34.1", "false")),
        svar(
            "39",
            code(
                "39.1",
                "ATER_X_ANTAL_DGR",
                "KV_FKMU_0006",
                "Patienten kommer med stor sannolikhet att återgå helt i nuvarande sysselsättning efter x antal dagar",
            ),
            code("39.3", "SEXTIO_DGR", "KV_FKMU_0007", "60 dagar"),
        ),
        svar("40", code("40.1", "ARBETSTRANING", "KV_FKMU_0004", "Arbetsträning"), instans=1),
        svar("40", code("40.1", "KONTAKT_FHV", "KV_FKMU_0004", "Kontakt med företagshälsovård"), instans=2),
        svar("44", text("44.1", "Arbetsträning med stöd av företagshälsovården")),
        svar("25", text("25.1", "Patienten har haft liknande besvär 2023")),
    ]


def lisjp() -> Intyg:
    """A valid LISJP v1 (Läkarintyg för sjukpenning), every question answered."""
    answers = _common_svar()
    answers.insert(4, svar("28", code("28.1", "PROGRAM", "KV_FKMU_0002", "Arbetsmarknadspolitiskt program"), instans=2))
    answers.insert(6, svar("30", text("30.1", "Praktik inom arbetsmarknadspolitiskt program")))
    answers += [
        svar("26", text("26.1", "true"), text("26.2", "Avstämningsmöte med arbetsgivaren önskas")),
        svar("9001", text("9001.1", "Patienten deltar i rehabiliteringsprogram sedan februari")),
    ]
    return Intyg(
        intygs_id=II(UNIT_HSA_ID, LISJP_ID),
        typ=CV("LISJP", ns.KV_INTYGSTYP, display_name="Läkarintyg för sjukpenning"),
        version="1.0",
        signeringstidpunkt=SIGNED,
        skickat_tidpunkt=SIGNED + timedelta(seconds=5),
        mottagare=(CV("FKASSA", ns.KV_PART, display_name="Försäkringskassan"),),
        patient=patient(),
        skapad_av=skapad_av(),
        svar=tuple(answers),
    )


def ag7804() -> Intyg:
    """A valid AG7804 v1 (Läkarintyg om arbetsförmåga – arbetsgivaren), every question answered (svar 101 has no
    rule and no known meaning in v1, so it is left out)."""
    answers = _common_svar()
    answers.insert(5, svar("100", text("100.1", "true")))
    answers.append(svar("103", text("103.1", "true"), text("103.2", "Vill diskutera anpassning av arbetsuppgifterna")))
    return Intyg(
        intygs_id=II(UNIT_HSA_ID, AG7804_ID),
        typ=CV("AG7804", ns.KV_INTYGSTYP, display_name="Läkarintyg om arbetsförmåga – arbetsgivaren"),
        version="1.0",
        signeringstidpunkt=SIGNED,
        skickat_tidpunkt=SIGNED + timedelta(seconds=5),
        patient=patient(),
        skapad_av=skapad_av(),
        svar=tuple(answers),
    )
