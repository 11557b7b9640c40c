"""The business rules of LISJP v1 and AG7804 v1 (schemas.riv.rules): the valid samples pass, every assert of the
schematron is broken once, the quirks that change what is accepted, and the samples' round trip through the XSD."""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv import xml
from schemas.riv.rules import Violation, _ns, check
from schemas.riv.transport import Delsvar, Intyg, Svar
from tests.riv_samples import TODAY, ag7804, code, lisjp, period, svar, text

V = Violation
L = lisjp()
A = ag7804()
ICD = ns.ICD10_SE_OID


# --- making variants of the samples ----------------------------------------------------------------------------


def edit(intyg: Intyg, svar_id: str, fn: Callable[[Svar], Svar], nth: int = 0) -> Intyg:
    """Replace the nth answer to `svar_id` with fn(answer)."""
    seen, out = 0, []
    for s in intyg.svar:
        if s.id == svar_id:
            if seen == nth:
                s = fn(s)
            seen += 1
        out.append(s)
    return dataclasses.replace(intyg, svar=tuple(out))


def put(intyg: Intyg, svar_id: str, *delsvar: Delsvar, nth: int = 0) -> Intyg:
    """Set delsvar in the nth answer to `svar_id` (replacing those of the same id, else appending)."""

    def fn(s: Svar) -> Svar:
        parts = list(s.delsvar)
        for d in delsvar:
            at = next((i for i, p in enumerate(parts) if p.id == d.id), None)
            if at is None:
                parts.append(d)
            else:
                parts[at] = d
        return dataclasses.replace(s, delsvar=tuple(parts))

    return edit(intyg, svar_id, fn, nth)


def without(intyg: Intyg, svar_id: str, *delsvar_ids: str, nth: int = 0) -> Intyg:
    return edit(
        intyg,
        svar_id,
        lambda s: dataclasses.replace(s, delsvar=tuple(d for d in s.delsvar if d.id not in delsvar_ids)),
        nth,
    )


def only(*delsvar: Delsvar) -> Callable[[Svar], Svar]:
    """An edit: the answer with just these delsvar."""
    return lambda s: dataclasses.replace(s, delsvar=delsvar)


def also(*delsvar: Delsvar) -> Callable[[Svar], Svar]:
    """An edit: the answer with these delsvar appended."""
    return lambda s: dataclasses.replace(s, delsvar=(*s.delsvar, *delsvar))


def add(intyg: Intyg, *answers: Svar) -> Intyg:
    return dataclasses.replace(intyg, svar=intyg.svar + answers)


def drop(intyg: Intyg, *svar_ids: str) -> Intyg:
    return dataclasses.replace(intyg, svar=tuple(s for s in intyg.svar if s.id not in svar_ids))


def no_instans(intyg: Intyg, svar_id: str) -> Intyg:
    return edit(intyg, svar_id, lambda s: dataclasses.replace(s, instans=None))


def embedded(delsvar_id: str, value: str = "x") -> Delsvar:
    """A delsvar whose content sits inside an element the model does not type."""
    return Delsvar(id=delsvar_id, text=value, elements=1)


def kv(n: int) -> str:
    return f"KV_FKMU_000{n}"


# --- the valid samples -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("intyg", [L, A], ids=["LISJP", "AG7804"])
def test_valid_samples_pass(intyg: Intyg) -> None:
    assert check(intyg, TODAY) == []


@pytest.mark.parametrize("intyg", [L, A], ids=["LISJP", "AG7804"])
def test_samples_answer_every_question(intyg: Intyg) -> None:
    ids = {s.id for s in intyg.svar}
    common = {"1", "27", "28", "29", "6", "35", "17", "19", "20", "32", "37", "33", "34", "39", "40", "44", "25"}
    extra = {"30", "26", "9001"} if intyg.typ.code == "LISJP" else {"100", "103"}
    assert ids == common | extra


@pytest.mark.parametrize("intyg", [L, A], ids=["LISJP", "AG7804"])
def test_round_trip_through_the_contract(intyg: Intyg) -> None:
    root = etree.Element(f"{{{ns.REGISTER}}}RegisterCertificate")
    xml.write_intyg(root, f"{{{ns.REGISTER}}}intyg", intyg)
    data = etree.tostring(root)
    parsed = xml.parse(data)
    xml.check(parsed, "RegisterCertificateResponder_3.xsd")
    back = xml.read_intyg(parsed[0])
    assert back == intyg
    assert check(back, TODAY) == []


# --- every assert, broken once ---------------------------------------------------------------------------------

ID_MSG = 'Oväntat delsvars-id i delsvar till svar "{}". Delsvars-id:n måste matcha "{}".'
GRUND = "'Grund för medicinskt underlag (MU)'"
X_DAGAR = "'Patienten kommer med stor sannolikhet att återgå helt i nuvarande sysselsättning efter x antal dagar'"
ICD_MSG = (
    "Diagnoskod måste anges som bokstav följt av två siffror följt av noll eller flera bokstäver, siffror eller "
    "bindestreck, d.v.s. minst tre positioner måste anges. Om diagnoskoden börjar med F eller Z73 måste bokstav och "
    "två siffor följas av minst en bokstav, siffra eller bindestreck, d.v.s. minst fyra positioner måste anges."
)
R26 = (
    "'Om arbetstidsförläggning' (DFR 33.1) ska endast besvaras om 'Sjukskrivningsnivå' (DFR 32.1) är besvarad med "
    "kod EN_FJARDEDEL, HALFTEN eller TRE_FJARDEDEL (KV_FKMU_0003)."
)
NOT_ACTUAL = "'Inte aktuellt' kan inte kombineras med andra svar"


def many(
    svar_id: str, n: int, delsvar_id: str, codes: list[str], system: str, instans: bool = True
) -> tuple[Svar, ...]:
    return tuple(
        svar(svar_id, code(delsvar_id, codes[i % len(codes)], system), instans=10 + i if instans else None)
        for i in range(n)
    )


def common_cases(base: Intyg, mu: str) -> list[tuple[str, Intyg, str, str]]:
    """Rules LISJP and AG7804 share (same test, same message; `mu` is the form's name in the intyg messages)."""
    e = f"Ett '{mu}'"
    nuvarande = [c for c in ("ARBETSSOKANDE", "FORALDRALEDIG", "STUDIER")]
    return [
        # intyg
        (
            "1-max4",
            add(base, *many("1", 3, "1.1", ["TELEFONKONTAKT", "JOURNALUPPGIFTER"], kv(1))),
            "intyg",
            f"{e} får ha högst 4 'Grund för medicinskt underlag'",
        ),
        (
            "29-max1",
            add(base, svar("29", text("29.1", "Snickare"))),
            "intyg",
            f"{e} får ha högst ett 'Nuvarande arbete'",
        ),
        (
            "35-max1",
            add(base, svar("35", text("35.1", "Yrsel"))),
            "intyg",
            f"{e} får ha högst ett 'Funktionsnedsättning'",
        ),
        (
            "19-max1",
            add(base, svar("19", text("19.1", "Fysioterapi"))),
            "intyg",
            f"{e} får ha högst ett 'Pågående medicinska behandlingar'",
        ),
        (
            "20-max1",
            add(base, svar("20", text("20.1", "Fysioterapi"))),
            "intyg",
            f"{e} får ha högst ett 'Planerade medicinska behandlingar'",
        ),
        ("32-none", drop(base, "32", "33"), "intyg", f"{e} måste ha mellan 1 och 4 'Behov av sjukskrivning'"),
        (
            "32-max4",
            add(
                base,
                *(
                    svar(
                        "32",
                        code("32.1", "TRE_FJARDEDEL", kv(3)),
                        period("32.2", date(2026, 5, 1 + 3 * i), date(2026, 5, 2 + 3 * i)),
                        instans=3 + i,
                    )
                    for i in range(3)
                ),
            ),
            "intyg",
            f"{e} måste ha mellan 1 och 4 'Behov av sjukskrivning'",
        ),
        (
            "37-max1",
            add(base, svar("37", text("37.1", "x"))),
            "intyg",
            f"{e} får ha högst ett 'Försäkringsmedicinskt beslutsstöd'",
        ),
        (
            "33-max1",
            add(base, svar("33", text("33.1", "false"))),
            "intyg",
            f"{e} får ha högst ett 'Arbetstidsförläggning'",
        ),
        ("34-max1", add(base, svar("34", text("34.1", "false"))), "intyg", f"{e} får ha högst ett 'Arbetsresor'"),
        (
            "39-max1",
            add(base, svar("39", code("39.1", "PROGNOS_OKLAR", kv(6)))),
            "intyg",
            f"{e} får ha högst ett 'Prognos'",
        ),
        (
            "44-max1",
            add(base, svar("44", text("44.1", "x"))),
            "intyg",
            f"{e} får ha högst ett 'Arbetslivsinriktade åtgärder aktuellt'",
        ),
        ("25-max1", add(base, svar("25", text("25.1", "x"))), "intyg", f"{e} får ha högst ett 'Övrigt'"),
        ("27-max1", add(base, svar("27", text("27.1", "false"))), "intyg", f"{e} får ha högst ett 'Smittbärarpenning'"),
        (
            "1-or-27",
            drop(base, "1", "27"),
            "intyg",
            f"{e} måste antingen ha 'Grund för medicinskt underlag' eller 'Smittbärarpenning'",
        ),
        (
            "28-or-27",
            drop(base, "28", "29", "30", "27"),
            "intyg",
            f"{e} måste antingen ha 'Typ av sysselsättning' eller 'Smittbärarpenning'",
        ),
        (
            "35-or-27",
            drop(base, "35", "27"),
            "intyg",
            f"{e} måste antingen ha 'Funktionsnedsättning' eller 'Smittbärarpenning'",
        ),
        (
            "17-or-27",
            drop(base, "17", "27"),
            "intyg",
            f"{e} måste antingen ha 'Aktivitetsbegränsningar' eller 'Smittbärarpenning'",
        ),
        ("39-or-27", drop(base, "39", "27"), "intyg", f"{e} måste antingen ha 'Prognos' eller 'Smittbärarpenning'"),
        (
            "40-or-27",
            drop(base, "40", "44", "27"),
            "intyg",
            f"{e} måste antingen ha 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'",
        ),
        # q1
        ("q1-instans", no_instans(base, "1"), "q1", f"{GRUND} måste ha ett instansnummer."),
        ("q1-1.1", without(base, "1", "1.1"), "q1", f"{GRUND} måste ha ett 'Typ av grund för MU'."),
        ("q1-1.2", without(base, "1", "1.2"), "q1", f"{GRUND} måste ha ett 'Datum som grund för MU'."),
        (
            "q1-1.3",
            edit(base, "1", also(text("1.3", "x")), nth=1),
            "q1",
            f"{GRUND} får ha högst ett 'Vilken annan grund finns för MU'.",
        ),
        (
            "q1-same-code",
            put(base, "1", code("1.1", "UNDERSOKNING", kv(1)), nth=1),
            "q1",
            "Samma 'Typ av grund för MU' kan inte användas flera gånger i samma 'MU'.",
        ),
        ("q1-ids", put(base, "1", text("1.4", "x")), "q1", ID_MSG.format("1", r"^1\.[123]$")),
        (
            "q1.1-system",
            put(base, "1", code("1.1", "UNDERSOKNING", kv(2))),
            "q1.1",
            "'codeSystem' måste vara 'KV_FKMU_0001'.",
        ),
        (
            "q1.1-code",
            put(base, "1", code("1.1", "ANHORIG", kv(1))),
            "q1.1",
            "'Typ av grund för MU' kan ha ett av värdena UNDERSOKNING, TELEFONKONTAKT, JOURNALUPPGIFTER, ANNAT.",
        ),
        *[
            (f"q1.1-cv-{i}", put(base, "1", text("1.1", "UNDERSOKNING")), "q1.1", f"{m} (delsvar 1.1)")
            for i, m in enumerate(
                [
                    "Ett värde av typen CV måste ha ett cv-element",
                    "codeSystem är obligatoriskt",
                    "'codeSystem' får inte vara inbäddat i något element.",
                    "code är obligatoriskt",
                    "'code' får inte vara inbäddat i något element.",
                ]
            )
        ],
        (
            "q1.2-embedded",
            put(base, "1", Delsvar("1.2", value=date(2026, 3, 2), elements=1)),
            "q1.2",
            "Datum får inte vara inbäddat i något element. (delsvar 1.2)",
        ),
        (
            "q1.2-valid",
            put(base, "1", text("1.2", "2026-02-30")),
            "q1.2",
            "Värdet måste vara ett giltigt datum. (delsvar 1.2)",
        ),
        (
            "q1.2-format",
            put(base, "1", text("1.2", "12026-03-02")),
            "q1.2",
            "Datumet måste uttryckas som YYYY-MM-DD. (delsvar 1.2)",
        ),
        ("q1.3-empty", put(base, "1", text("1.3", " "), nth=1), "q1.3", "Sträng kan inte vara tom. (delsvar 1.3)"),
        (
            "q1.3-embedded",
            put(base, "1", embedded("1.3"), nth=1),
            "q1.3",
            "Värdet får inte vara inbäddat i något element. (delsvar 1.3)",
        ),
        (
            "q1.3-not-annat",
            put(base, "1", text("1.3", "x")),
            "q1.3",
            "Om 'Typ av grund för MU' inte är 'Annat' så får 'Vilken annan grund finns för MU' inte anges.",
        ),
        (
            "q1.1-1.3",
            without(base, "1", "1.3", nth=1),
            "q1.1-1.3",
            "Om 'Typ av grund för MU' är 'Annat' så måste 'Vilken annan grund finns för MU' anges.",
        ),
        # q27
        (
            "q27-27.1",
            edit(base, "27", only(text("27.2", "false"))),
            "q27",
            "'Smittbärarpenning' måste ha ett 'Om smittbärarpenning'.",
        ),
        ("q27-ids", put(base, "27", text("27.2", "x")), "q27", ID_MSG.format("27", r"^27\.[1]$")),
        (
            "q27.1-boolean",
            put(base, "27", text("27.1", "nej")),
            "q27.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 27.1)",
        ),
        (
            "q27.1-embedded",
            put(base, "27", embedded("27.1", "false")),
            "q27.1",
            "Booleskt värde får inte vara inbäddat i något element. (delsvar 27.1)",
        ),
        (
            "q27.1-1",
            drop(base, "1"),
            "q27.1",
            f"{e} måste ange minst en 'Grund för medicinskt underlag' om 'Om smittbärarpenning' inte är 'true'.",
        ),
        (
            "q27.1-28",
            drop(base, "28", "29", "30"),
            "q27.1",
            f"{e} måste ange minst en 'Typ av sysselsättning' om 'Om smittbärarpenning' inte är 'true'.",
        ),
        (
            "q27.1-17",
            drop(base, "17"),
            "q27.1",
            f"{e} måste ange 'Aktivitetsbegränsningar' om 'Om smittbärarpenning' inte är 'true'.",
        ),
        ("q27.1-39", drop(base, "39"), "q27.1", f"{e} måste ange 'Prognos' om 'Om smittbärarpenning' inte är 'true'."),
        (
            "q27.1-40",
            drop(base, "40", "44"),
            "q27.1",
            f"{e} måste ange minst en 'Arbetslivsinriktade åtgärder' om 'Om smittbärarpenning' inte är 'true'.",
        ),
        # q28, q29
        ("q28-instans", no_instans(base, "28"), "q28", "'Typ av sysselsättning' måste ha ett instansnummer."),
        (
            "q28-28.1",
            edit(base, "28", only(text("28.2", "x"))),
            "q28",
            "'Typ av sysselsättning' måste ha ett 'Typ av sysselsättning'.",
        ),
        ("q28-ids", put(base, "28", text("28.2", "x")), "q28", ID_MSG.format("28", r"^28\.[1]$")),
        (
            "q28.1-system",
            put(base, "28", code("28.1", "NUVARANDE_ARBETE", kv(1))),
            "q28.1",
            "'codeSystem' måste vara 'KV_FKMU_0002'.",
        ),
        (
            "q28.1-q29-required",
            drop(base, "29"),
            "q28.1-q29",
            "Om 'Typ av sysselsättning' besvarats med 1, måste 'Nuvarande arbete' besvaras",
        ),
        (
            "q28.1-q29-forbidden",
            put(base, "28", code("28.1", "STUDIER", kv(2))),
            "q28.1-q29",
            "Om 'Typ av sysselsättning' inte besvarats med 1, får 'Nuvarande arbete' inte besvaras",
        ),
        (
            "q28.1-R5",
            add(base, svar("28", code("28.1", "NUVARANDE_ARBETE", kv(2)), instans=3)),
            "q28.1-R5",
            "'Typ av sysselsättning' (DFR 28.1) får besvaras med flera olika koder (KV_FKMU_0002) men varje kod får "
            "bara "
            "förekomma en gång.",
        ),
        ("q28.1-R5-ok", add(base, *many("28", 1, "28.1", nuvarande, kv(2))), "", ""),
        (
            "q29-29.1",
            edit(base, "29", only(text("29.2", "x"))),
            "q29",
            "'Nuvarande arbete' måste ha ett 'Yrke och arbetsuppgifter'.",
        ),
        ("q29-ids", put(base, "29", text("29.2", "x")), "q29", ID_MSG.format("29", r"^29\.[1]$")),
        ("q29.1-empty", put(base, "29", text("29.1", "")), "q29.1", "Sträng kan inte vara tom. (delsvar 29.1)"),
        # q6
        ("q6-6.1", without(base, "6", "6.1"), "q6", "'Typ av diagnos' måste ha en 'Diagnostext'."),
        ("q6-6.2", without(base, "6", "6.2"), "q6", "'Typ av diagnos' måste ha en 'Diagnoskod ICD-10'."),
        ("q6-ids", put(base, "6", text("6.7", "x")), "q6", ID_MSG.format("6", r"^6\.[123456]$")),
        *[
            (f"q{i}-empty", put(base, "6", text(i, "")), f"q{i}", f"Sträng kan inte vara tom. (delsvar {i})")
            for i in ("6.1", "6.3", "6.5")
        ],
        *[
            case
            for i in ("6.2", "6.4", "6.6")
            for case in (
                (
                    f"q{i}-system",
                    put(base, "6", code(i, "F438A", "1.2.752.116.1.1.1")),
                    f"q{i}",
                    "Diagnoskodsystem måste vara OID för ICD-10-SE eller KSH97-P.",
                ),
                (f"q{i}-code", put(base, "6", code(i, "F43", ICD)), f"q{i}", ICD_MSG),
                (
                    f"q{i}-length",
                    put(base, "6", code(i, "F438AB", ICD)),
                    f"q{i}",
                    "Diagnoskod får inte vara längre än 5 tecken.",
                ),
                (
                    f"q{i}-cv",
                    put(base, "6", text(i, "F438A")),
                    f"q{i}",
                    f"Ett värde av typen CV måste ha ett cv-element (delsvar {i})",
                ),
            )
        ],
        (
            "q6.3-6.4",
            without(base, "6", "6.4"),
            "q6.3-6.4",
            "Både 'Diagnoskod' och 'Diagnostext' måste finnas för en bidiagnos.",
        ),
        (
            "q6.5-6.6-6.3",
            without(base, "6", "6.6"),
            "q6.5-6.6-6.3",
            "Både 'Diagnoskod' och 'Diagnostext' måste finnas för en bidiagnos. Dessutom måste 6.3 och 6.4 finnas om "
            "6.5 och "
            "6.6 finns.",
        ),
        (
            "q6.2-6.4-6.6-R12",
            put(base, "6", code("6.4", "F320", ns.KSH97P_OID)),
            "q6.2-6.4-6.6-R12",
            "'Huvuddiagnoskod' (DFR 6.2), 'Bidiagnoskod 1' (DFR 6.4) och 'Bidiagnoskod 2' (DFR 6.6) ska besvaras med "
            "samma "
            "kodverk.",
        ),
        # q35, q17, q19, q20, q37, q44, q25: one delsvar of text
        *[
            case
            for svar_id, message in (
                ("35", "'Funktionsnedsättning' måste ha ett 'Beskrivning'."),
                ("17", "'Aktivitetsbegränsningar' måste ha ett 'Beskrivning'."),
                (
                    "19",
                    "'Pågående medicinska behandlingar' måste ha ett 'Typ av pågående behandlingar och ansvarig "
                    "vårdenhet'.",
                ),
                (
                    "20",
                    "'Planerade medicinska behandlingar' måste ha ett 'Typ av planerade behandlingar och ansvarig "
                    "vårdenhet'.",
                ),
                (
                    "37",
                    "'Försäkringsmedicinskt beslutsstöd' måste ha ett 'Överskrider försäkringsmedicinskt beslutsstöd'.",
                ),
                (
                    "44",
                    "'Arbetslivsinriktade åtgärder aktuellt' måste ha ett 'Beskrivning arbetslivsriktade åtgärder "
                    "aktuellt'.",
                ),
                ("25", "'Övrigt' måste ha ett 'Typ av övriga upplysningar'."),
            )
            for case in (
                (
                    f"q{svar_id}-{svar_id}.1",
                    edit(base, svar_id, only(text(f"{svar_id}.2", "x"))),
                    f"q{svar_id}",
                    message,
                ),
                (
                    f"q{svar_id}-ids",
                    put(base, svar_id, text(f"{svar_id}.2", "x")),
                    f"q{svar_id}",
                    ID_MSG.format(svar_id, rf"^{svar_id}\.[1]$"),
                ),
                (
                    f"q{svar_id}.1-empty",
                    put(base, svar_id, text(f"{svar_id}.1", "")),
                    f"q{svar_id}.1",
                    f"Sträng kan inte vara tom. (delsvar {svar_id}.1)",
                ),
            )
        ],
        # q32
        ("q32-instans", no_instans(base, "32"), "q32", "'Sjukskrivning' måste ha ett instansnummer."),
        ("q32-32.1", without(base, "32", "32.1"), "q32", "'Sjukskrivning' måste ha en 'grad'."),
        ("q32-32.2", without(base, "32", "32.2"), "q32", "'Sjukskrivning' måste ha en 'period'."),
        (
            "q32-overlap",
            put(base, "32", period("32.2", date(2026, 3, 14), date(2026, 4, 12)), nth=1),
            "q32",
            "Två 'perioder' kan inte vara överlappande.",
        ),
        ("q32-ids", put(base, "32", text("32.3", "x")), "q32", ID_MSG.format("32", r"^32\.[12]$")),
        (
            "q32.1-system",
            put(base, "32", code("32.1", "HALFTEN", kv(4))),
            "q32.1",
            "'codeSystem' måste vara 'KV_FKMU_0003'.",
        ),
        (
            "q32.1-code",
            put(base, "32", code("32.1", "NOLL", kv(3))),
            "q32.1",
            "'Sjukskrivningsnivå' kan ha ett av värdena HELT_NEDSATT, TRE_FJARDEDEL, HALFTEN, EN_FJARDEDEL.",
        ),
        (
            "q32.1-R22",
            put(base, "32", code("32.1", "HALFTEN", kv(3)), nth=1),
            "q32.1-R22",
            "'Sjukskrivningsnivå' (DFR 32.1) får besvaras med flera olika koder (KV_FKMU_0003) men varje kod får bara "
            "förekomma en gång.",
        ),
        (
            "q32.2-no-period",
            put(base, "32", text("32.2", "2026-03-02")),
            "q32.2",
            "En period måste inneslutas av ett 'datePeriod'-element (delsvar 32.2)",
        ),
        *[
            (
                f"q32.2-no-start-{i}",
                put(base, "32", period("32.2", None, date(2026, 3, 15))),
                "q32.2",
                f"{m} (delsvar 32.2)",
            )
            for i, m in enumerate(
                [
                    "'from' får inte vara inbäddat i något element.",
                    "'from' måste vara ett giltigt datum.",
                    "'from' måste uttryckas som YYYY-MM-DD.",
                ]
            )
        ],
        *[
            (
                f"q32.2-no-end-{i}",
                put(base, "32", period("32.2", date(2026, 3, 2), None)),
                "q32.2",
                f"{m} (delsvar 32.2)",
            )
            for i, m in enumerate(
                [
                    "'tom' får inte vara inbäddat i något element.",
                    "'tom' måste vara ett giltigt datum.",
                    "'end' måste uttryckas som YYYY-MM-DD.",
                    "'from' måste vara mindre än eller lika med 'to'",
                ]
            )
        ],
        (
            "q32.2-order",
            put(base, "32", period("32.2", date(2026, 3, 15), date(2026, 3, 2))),
            "q32.2",
            "'from' måste vara mindre än eller lika med 'to' (delsvar 32.2)",
        ),
        (
            "q32.1-33",
            drop(base, "33"),
            "q32.1-33",
            "Om 'Sjukskrivningsnivå' är TRE_FJARDEDEL, HALFTEN eller EN_FJARDEDEL så måste 'Arbetstidsförläggning' "
            "anges.",
        ),
        # q33
        (
            "q33-33.1",
            without(base, "33", "33.1"),
            "q33",
            "'Arbetstidsförläggning' måste ha ett 'Om arbetstidsförläggning'.",
        ),
        (
            "q33-33.2",
            edit(base, "33", also(text("33.2", "x"))),
            "q33",
            "'Arbetstidsförläggning' får ha högst ett 'Motivering arbetstidsförläggning'.",
        ),
        ("q33-ids", put(base, "33", text("33.3", "x")), "q33", ID_MSG.format("33", r"^33\.[12]$")),
        (
            "q33.1-boolean",
            put(base, "33", text("33.1", "ja")),
            "q33.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 33.1)",
        ),
        ("q33.2-empty", put(base, "33", text("33.2", "")), "q33.2", "Sträng kan inte vara tom. (delsvar 33.2)"),
        (
            "q33.1-33.2-true",
            without(base, "33", "33.2"),
            "q33.1-33.2",
            "Om 'Om arbetstidsförläggning' är 'true' så måste 'Motivering arbetstidsförläggning' anges.",
        ),
        (
            "q33.1-33.2-false",
            put(base, "33", text("33.1", "0")),
            "q33.1-33.2",
            "Om 'Om arbetstidsförläggning' är 'false' så får 'Motivering arbetstidsförläggning' inte anges.",
        ),
        # q34
        (
            "q34-34.1",
            edit(base, "34", only(text("34.2", "x"))),
            "q34",
            "'Arbetsresor' måste ha ett 'Om arbetsresor'.",
        ),
        ("q34-ids", put(base, "34", text("34.2", "x")), "q34", ID_MSG.format("34", r"^34\.[1]$")),
        (
            "q34.1-boolean",
            put(base, "34", text("34.1", "yes")),
            "q34.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 34.1)",
        ),
        (
            "q34.1-embedded",
            put(base, "34", embedded("34.1", "true")),
            "q34.1",
            "Booleskt värde får inte vara inbäddat i något element. (delsvar 34.1)",
        ),
        # q39
        ("q39-39.1", without(base, "39", "39.1"), "q39", "'Prognos' måste ha ett 'Beskrivning prognos'."),
        (
            "q39-39.3",
            edit(base, "39", also(code("39.3", "NITTIO_DGR", kv(7)))),
            "q39",
            f"'Prognos' får ha högst ett {X_DAGAR}.",
        ),
        ("q39-ids", put(base, "39", text("39.2", "x")), "q39", ID_MSG.format("39", r"^39\.[13]$")),
        (
            "q39.1-system",
            put(base, "39", code("39.1", "ATER_X_ANTAL_DGR", kv(7))),
            "q39.1",
            "'codeSystem' måste vara 'KV_FKMU_0006'.",
        ),
        (
            "q39.1-code",
            put(base, "39", code("39.1", "OKLAR", kv(6))),
            "q39.1",
            "'Beskrivning prognos' kan ha ett av värdena STOR_SANNOLIKHET, SANNOLIKT_INTE, PROGNOS_OKLAR eller "
            "ATER_X_ANTAL_DGR.",
        ),
        (
            "q39.3-system",
            put(base, "39", code("39.3", "SEXTIO_DGR", kv(6))),
            "q39.3",
            "'codeSystem' måste vara 'KV_FKMU_0007'.",
        ),
        (
            "q39.3-code",
            put(base, "39", code("39.3", "SJUTTIO_DGR", kv(7))),
            "q39.3",
            f"{X_DAGAR} kan ha ett av värdena TRETTIO_DGR, SEXTIO_DGR, NITTIO_DGR, HUNDRAATTIO_DAGAR eller "
            "TREHUNDRASEXTIOFEM_DAGAR.",
        ),
        (
            "q39.1-39.3-required",
            without(base, "39", "39.3"),
            "q39.1-39.3",
            f"Om 'Beskrivning prognos' är ATER_X_ANTAL_DGR så måste {X_DAGAR} anges.",
        ),
        (
            "q39.1-39.3-forbidden",
            put(base, "39", code("39.1", "STOR_SANNOLIKHET", kv(6))),
            "q39.1-39.3",
            f"Om 'Beskrivning prognos' inte är ATER_X_ANTAL_DGR så får {X_DAGAR} inte anges.",
        ),
        # q40, q44
        ("q40-instans", no_instans(base, "40"), "q40", "'Arbetslivsinriktade åtgärder' måste ha ett instansnummer."),
        (
            "q40-40.1",
            edit(base, "40", only(text("40.2", "x"))),
            "q40",
            "'Arbetslivsinriktade åtgärder' måste ha ett 'Val av arbetslivsinriktade åtgärder'.",
        ),
        ("q40-ej-after", put(drop(base, "44"), "40", code("40.1", "EJ_AKTUELLT", kv(4)), nth=1), "q40", NOT_ACTUAL),
        ("q40-ej-before", put(drop(base, "44"), "40", code("40.1", "EJ_AKTUELLT", kv(4))), "q40", NOT_ACTUAL),
        ("q40-ids", put(base, "40", text("40.2", "x")), "q40", ID_MSG.format("40", r"^40\.[1]$")),
        (
            "q40.1-system",
            put(base, "40", code("40.1", "ARBETSTRANING", kv(3))),
            "q40.1",
            "'codeSystem' måste vara 'KV_FKMU_0004'.",
        ),
        (
            "q40.1-R29",
            put(base, "40", code("40.1", "ARBETSTRANING", kv(4)), nth=1),
            "q40.1-R29",
            "'Val av arbetslivsinriktade åtgärder' (DFR 40.1) får besvaras med flera olika koder (KV_FKMU_0004) men "
            "varje "
            "kod får bara förekomma en gång.",
        ),
        (
            "q40.1-44",
            add(drop(base, "40"), svar("40", code("40.1", "EJ_AKTUELLT", kv(4)), instans=1)),
            "q40.1-44",
            "Om 'Val av arbetslivsinriktade åtgärder' är 'EJ_AKTUELLT' så får 'Beskrivning arbetslivsriktade "
            "åtgärder aktuellt' "
            "inte anges.",
        ),
        # instans
        (
            "instans",
            edit(base, "32", lambda s: dataclasses.replace(s, instans=0)),
            "instans-pattern",
            "'Instans' måste vara större än 0. (svar 32)",
        ),
    ]


def lisjp_cases() -> list[tuple[str, Intyg, str, str]]:
    e = "Ett 'MU'"
    return [
        (
            "28-max5",
            add(L, *many("28", 4, "28.1", ["ARBETSSOKANDE", "FORALDRALEDIG", "STUDIER"], kv(2))),
            "intyg",
            f"{e} får ha högst 5 'Typ av sysselsättning'",
        ),
        (
            "30-max1",
            add(L, svar("30", text("30.1", "x"))),
            "intyg",
            f"{e} får ha högst ett 'Arbetsmarknadspolitiskt program'",
        ),
        ("6-none", drop(L, "6"), "intyg", f"{e} måste ha en 'Typ av diagnos'"),
        (
            "6-two",
            add(L, svar("6", text("6.1", "Utmattningssyndrom"), code("6.2", "F438A", ICD))),
            "intyg",
            f"{e} måste ha en 'Typ av diagnos'",
        ),
        ("17-max1", add(L, svar("17", text("17.1", "x"))), "intyg", f"{e} får ha högst ett 'Aktivitetsbegränsningar'"),
        (
            "40-max10",
            add(L, *many("40", 9, "40.1", ["ERGONOMISK"], kv(4))),
            "intyg",
            f"{e} får ha högst 10 'Arbetslivsinriktade åtgärder'",
        ),
        ("26-max1", add(L, svar("26", text("26.1", "false"))), "intyg", f"{e} får ha högst ett 'Kontakt önskas'"),
        (
            "svar-id",
            add(L, svar("103", text("103.1", "true"))),
            "intyg",
            'Oväntat svars-id. Svars-id:n måste matcha "^([16]|1[79]|2[056789]|3[0234579]|4[04]|9[0-9]{3})$".',
        ),
        (
            "q1.1-5th",
            add(L, svar("1", code("1.1", "TELEFONKONTAKT", kv(1)), text("1.2", "2026-03-01"), instans=3)),
            "",
            "",
        ),
        (
            "q27.1-35",
            drop(L, "35"),
            "q27.1",
            f"{e} måste ange 'Funktionsnedsättning' om 'Om smittbärarpenning' inte är 'true'.",
        ),
        (
            "q28.1-code",
            put(L, "28", code("28.1", "ANNAT", kv(2))),
            "q28.1",
            "'Typ av sysselsättning' kan ha ett av värdena NUVARANDE_ARBETE, ARBETSSOKANDE, FORALDRALEDIG, STUDIER "
            "eller PROGRAM.",
        ),
        (
            "q28.1-q30-required",
            drop(L, "30"),
            "q28.1-q30",
            "Om 'Typ av sysselsättning' besvarats med 5, måste 'Arbetsmarknadspolitiskt program' besvaras",
        ),
        (
            "q28.1-q30-forbidden",
            put(L, "28", code("28.1", "STUDIER", kv(2)), nth=1),
            "q28.1-q30",
            "Om 'Typ av sysselsättning' inte besvarats med 5, får 'Arbetsmarknadspolitiskt program' inte besvaras",
        ),
        (
            "q30-30.1",
            edit(L, "30", only(text("30.2", "x"))),
            "q30",
            "'Arbetsmarknadspolitiskt program' måste ha ett 'Aktiviteter i arbetsmarknadspolitiskt program'.",
        ),
        ("q30-ids", put(L, "30", text("30.2", "x")), "q30", ID_MSG.format("30", r"^30\.[1]$")),
        ("q30.1-empty", put(L, "30", text("30.1", "")), "q30.1", "Sträng kan inte vara tom. (delsvar 30.1)"),
        (
            "q32.1-33.1-R26",
            add(
                L,
                svar(
                    "32",
                    code("32.1", "HELT_NEDSATT", kv(3)),
                    period("32.2", date(2026, 4, 13), date(2026, 4, 30)),
                    instans=3,
                ),
            ),
            "q32.1-33.1-R26",
            R26,
        ),
        (
            "q40.1-code",
            put(L, "40", code("40.1", "FLYTT", kv(4))),
            "q40.1",
            "'Val av arbetslivsinriktade åtgärder' kan ha ett av värdena EJ_AKTUELLT, ARBETSTRANING, ARBETSANPASSNING, "
            "SOKA_NYTT_ARBETE, BESOK_ARBETSPLATS, ERGONOMISK, HJALPMEDEL, KONFLIKTHANTERING, KONTAKT_FHV, "
            "OMFORDELNING eller "
            "OVRIGA_ATGARDER.",
        ),
        ("q26-26.1", without(L, "26", "26.1"), "q26", "'Kontakt önskas' måste ha ett 'Kontakt önskas'."),
        (
            "q26-26.2",
            edit(L, "26", also(text("26.2", "x"))),
            "q26",
            "'Kontakt önskas' får ha högst ett 'Motivering av kontakt önskas'.",
        ),
        ("q26-ids", put(L, "26", text("26.3", "x")), "q26", ID_MSG.format("26", r"^26\.[12]$")),
        (
            "q26.1-boolean",
            put(L, "26", text("26.1", "kanske")),
            "q26.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 26.1)",
        ),
        ("q26.2-empty", put(L, "26", text("26.2", "")), "q26.2", "Sträng kan inte vara tom. (delsvar 26.2)"),
        (
            "q26.1-26.2",
            put(L, "26", text("26.1", "false")),
            "q26.1-26.2",
            "Om 'Kontakt önskas' besvarats med nej kan 'Motivering av kontakt önskas' inte fyllas i.",
        ),
        (
            "q9000-one",
            put(L, "9001", text("9001.2", "x")),
            "q9000",
            "En tilläggsfråga måste ha ett delsvar med delfråge-id som består av frågans id plus '.1'.",
        ),
        (
            "q9000-same-id",
            add(L, svar("9001", text("9001.1", "x"))),
            "q9000",
            "Två tilläggsfrågor kan inte ha samma id.",
        ),
        ("q9000.1-empty", put(L, "9001", text("9001.1", "")), "q9000.1", "Sträng kan inte vara tom. (delsvar 9001.1)"),
    ]


def ag7804_cases() -> list[tuple[str, Intyg, str, str]]:
    e = "Ett 'AG7804'"
    return [
        (
            "28-max4",
            add(A, *many("28", 4, "28.1", ["ARBETSSOKANDE", "FORALDRALEDIG", "STUDIER"], kv(2))),
            "intyg",
            f"{e} får ha högst 4 'Typ av sysselsättning'",
        ),
        ("100.1-required", drop(A, "100", "6"), "intyg", f"{e} måste ha ett 'Önskar förmedla diagnos'"),
        (
            "6-without-100.1-true",
            put(A, "100", text("100.1", "false")),
            "intyg",
            f"{e} måste ha Diagnos angivet om 'Önskar förmedla diagnos' är besvarad med Ja",
        ),
        (
            "17-or-27-extra",
            drop(A, "17", "27"),
            "intyg",
            f"{e} måste ha ett 'Aktivitetsbegränsningar' eller 'Smittbärarpenning'",
        ),
        (
            "40-max8",
            add(drop(A, "27"), *many("40", 7, "40.1", ["ERGONOMISK"], kv(4))),
            "intyg",
            f"{e} måste ha mellan 1 och 8 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'",
        ),
        (
            "40-none",
            drop(A, "40", "44", "27"),
            "intyg",
            f"{e} måste ha mellan 1 och 8 'Arbetslivsinriktade åtgärder' eller 'Smittbärarpenning'",
        ),
        ("103-max1", add(A, svar("103", text("103.1", "false"))), "intyg", f"{e} får ha högst ett 'Kontakt önskas'"),
        (
            "35.1-or-27",
            edit(drop(A, "27"), "35", only(text("35.2", "x"))),
            "intyg",
            f"{e} måste antingen ha 'Funktionsnedsättning' eller 'Smittbärarpenning'",
        ),
        (
            "svar-id-30",
            add(A, svar("30", text("30.1", "x"))),
            "intyg",
            'Oväntat svars-id. Svars-id:n måste matcha "^([16]|1[79]|2[056789]|3[234579]|4[04]|10[013])$".',
        ),
        (
            "svar-id-9001",
            add(A, svar("9001", text("9001.1", "x"))),
            "intyg",
            'Oväntat svars-id. Svars-id:n måste matcha "^([16]|1[79]|2[056789]|3[234579]|4[04]|10[013])$".',
        ),
        (
            "q28.1-code",
            put(A, "28", code("28.1", "PROGRAM", kv(2))),
            "q28.1",
            "'Typ av sysselsättning' kan ha ett av värdena NUVARANDE_ARBETE, ARBETSSOKANDE, FORALDRALEDIG eller "
            "STUDIER.",
        ),
        (
            "q32.1-33.1-R26",
            put(put(A, "32", code("32.1", "HELT_NEDSATT", kv(3))), "32", code("32.1", "NOLL", kv(3)), nth=1),
            "q32.1-33.1-R26",
            R26,
        ),
        (
            "q40.1-code",
            put(A, "40", code("40.1", "SOKA_NYTT_ARBETE", kv(4))),
            "q40.1",
            "'Val av arbetslivsinriktade åtgärder' kan ha ett av värdena EJ_AKTUELLT, ARBETSTRANING, ARBETSANPASSNING, "
            "BESOK_ARBETSPLATS, ERGONOMISK, HJALPMEDEL, KONTAKT_FHV, OMFORDELNING eller OVRIGA_ATGARDER.",
        ),
        (
            "q100.1",
            put(A, "100", text("100.1", "ja")),
            "q100.1",
            "'Önskar förmedla diagnos' måste ha ett svar av typen boolean",
        ),
        (
            "q100.1-boolean",
            put(A, "100", text("100.1", "ja")),
            "q100.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 100.1)",
        ),
        (
            "q100.1-true",
            drop(A, "6"),
            "q100.1-true",
            "Om 'Önskar förmedla diagnos' är besvarat med ja, måste diagnoser besvaras",
        ),
        (
            "q100.1-false",
            put(A, "100", text("100.1", "0")),
            "q100.1-false",
            "Om 'Önskar förmedla diagnos' är besvarat med nej, får ej diagnoser besvaras",
        ),
        (
            "q103-103.1",
            without(A, "103", "103.1"),
            "q103",
            "'Kontakt önskas' måste ha ett 'Kontakt med arbetsgivaren'.",
        ),
        (
            "q103-103.2",
            edit(A, "103", also(text("103.2", "x"))),
            "q103",
            "'Kontakt önskas' får ha högst ett 'Motivering av kontakt önskas'.",
        ),
        ("q103-ids", put(A, "103", text("103.3", "x")), "q103", ID_MSG.format("103", r"^103\.[12]$")),
        (
            "q103.1-boolean",
            put(A, "103", text("103.1", "ja")),
            "q103.1",
            "Kan bara vara 'true/1' eller 'false/0' (delsvar 103.1)",
        ),
        ("q103.2-empty", put(A, "103", text("103.2", "")), "q103.2", "Sträng kan inte vara tom. (delsvar 103.2)"),
        (
            "q103.1-103.2",
            put(A, "103", text("103.1", "false")),
            "q103.1-103.2",
            "Om 'Kontakt önskas' besvarats med nej kan 'Motivering av kontakt önskas' inte fyllas i.",
        ),
        (
            "R35-1.2",
            put(A, "1", text("1.2", (TODAY + timedelta(days=1)).isoformat())),
            "R35-1.2",
            "Datum som grund för MU får inte vara senare än dagens datum.",
        ),
    ]


CASES = [
    pytest.param(intyg, rule, message, id=f"{form}-{name}")
    for form, cases in (
        ("LISJP", common_cases(L, "MU") + lisjp_cases()),
        ("AG7804", common_cases(A, "AG7804") + ag7804_cases()),
    )
    for name, intyg, rule, message in cases
]


@pytest.mark.parametrize(("intyg", "rule", "message"), CASES)
def test_each_rule_is_reported(intyg: Intyg, rule: str, message: str) -> None:
    found = check(intyg, TODAY)
    if not rule:  # a variant that breaks nothing
        assert found == []
    else:
        assert Violation(rule, message) in found, found


def test_every_problem_is_reported() -> None:
    intyg = put(put(drop(L, "6"), "1", code("1.1", "ANHORIG", kv(1))), "34", text("34.1", "ja"))
    assert check(intyg, TODAY) == [
        V("intyg", "Ett 'MU' måste ha en 'Typ av diagnos'"),
        V("q1.1", "'Typ av grund för MU' kan ha ett av värdena UNDERSOKNING, TELEFONKONTAKT, JOURNALUPPGIFTER, ANNAT."),
        V("q34.1", "Kan bara vara 'true/1' eller 'false/0' (delsvar 34.1)"),
    ]


# --- the quirks that change what is accepted -------------------------------------------------------------------


def test_periods_that_only_touch_do_not_overlap() -> None:
    """The overlap test compares strings strictly: a period may start on the day the previous one ends."""
    assert check(put(L, "32", period("32.2", date(2026, 3, 15), date(2026, 4, 12)), nth=1), TODAY) == []


def test_r12_accepts_absent_secondary_codes() -> None:
    """R12 uses the secondary code systems as regexes: an absent one is '' and matches anything."""
    intyg = without(L, "6", "6.3", "6.4", "6.5", "6.6")
    assert check(intyg, TODAY) == []
    assert check(without(intyg, "6", "6.2"), TODAY) == [V("q6", "'Typ av diagnos' måste ha en 'Diagnoskod ICD-10'.")]


def test_codes_are_trimmed_as_normalize_space() -> None:
    assert check(put(L, "32", code("32.1", " HALFTEN\n", kv(3))), TODAY) == []


@pytest.mark.parametrize("value", ["true", "false", "1", "0"])
def test_booleans(value: str) -> None:
    intyg = put(L, "34", text("34.1", value))
    assert check(intyg, TODAY) == []


def test_smittbararpenning_true_replaces_the_other_questions() -> None:
    intyg = put(drop(L, "1", "28", "29", "30", "35", "17", "39", "40", "44", "33"), "27", text("27.1", "true"))
    assert check(intyg, TODAY) == []


def test_r26_direction_differs() -> None:
    """One full-time period with one part-time period: LISJP forbids svar 33 (any HELT_NEDSATT), AG7804 allows it
    (any part-time period)."""
    helt = svar(
        "32", code("32.1", "HELT_NEDSATT", kv(3)), period("32.2", date(2026, 4, 13), date(2026, 4, 30)), instans=3
    )
    assert V("q32.1-33.1-R26", R26) in check(add(L, helt), TODAY)
    assert check(add(A, helt), TODAY) == []


def test_ag7804_needs_no_funktionsnedsattning_with_smittbararpenning_answered() -> None:
    """AG7804's 'antingen' rule is met by any svar 27, and its q27.1 has no assert for svar 35."""
    assert check(drop(A, "35"), TODAY) == []


def test_ag7804_has_no_rules_for_svar_26_and_101() -> None:
    assert check(add(A, svar("26", text("26.9", "")), svar("101", text("101.1", ""))), TODAY) == []


def test_ag7804_without_diagnosis() -> None:
    assert check(put(drop(A, "6"), "100", text("100.1", "false")), TODAY) == []


def test_a_future_date_is_only_refused_in_ag7804() -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert check(put(L, "1", text("1.2", tomorrow)), TODAY) == []
    assert check(put(A, "1", text("1.2", TODAY.isoformat())), TODAY) == []


def test_a_date_with_time_zone_is_a_date() -> None:
    """`castable as xs:date` accepts a time zone and the format check is anchored at the start only."""
    assert check(put(L, "1", text("1.2", "2026-03-02+01:00")), TODAY) == []


# --- type and version ------------------------------------------------------------------------------------------


def test_unknown_type() -> None:
    intyg = dataclasses.replace(L, typ=dataclasses.replace(L.typ, code="FK7263"))
    assert check(intyg, TODAY) == [V("intygstyp", "Intyg av typen 'FK7263' tar Mina intyg inte emot.")]


@pytest.mark.parametrize("version", ["1", "1.0", "1.3"])
def test_major_version_1(version: str) -> None:
    assert check(dataclasses.replace(A, version=version), TODAY) == []


@pytest.mark.parametrize("version", ["2.0", "10", "1.x", ""])
def test_other_versions(version: str) -> None:
    assert check(dataclasses.replace(L, version=version), TODAY) == [
        V("version", f"Version '{version}' av 'LISJP' tar Mina intyg inte emot (endast 1.x).")
    ]


def test_fast() -> None:
    n = 200
    started = time.perf_counter()
    for _ in range(n):
        check(L, TODAY)
    assert (time.perf_counter() - started) / n < 0.001


def test_normalize_space_is_xpaths_on_every_short_string() -> None:
    """`_ns` skips the regex for a value already normal: on every string of up to five of these characters it
    answers as XPath's normalize-space (XML whitespace trimmed and collapsed; a no-break space is not XML's)."""

    def xpath(value: str) -> str:
        return re.sub(r"[ \t\r\n]+", " ", value).strip(" \t\r\n")

    strings = ["".join(t) for n in range(6) for t in itertools.product(" a\t\n\r\xa0", repeat=n)]
    assert [_ns(s) for s in strings] == [xpath(s) for s in strings]
