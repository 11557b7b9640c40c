"""Reading RIV-TA messages into the transport model (schemas.riv.xml), on messages written out by hand: every
element of a certificate where the contract puts it, with whitespace around the texts and extension elements of
another namespace (the contract's `xs:any ##other`) at several levels; optional elements left out; what a reader
given an unchecked document answers. The samples of tests/riv_samples.py go through writing and reading unchanged."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from lxml import etree

from schemas.riv import namespaces as ns
from schemas.riv import xml
from schemas.riv.transport import (
    CV,
    II,
    DatePeriod,
    Delsvar,
    Enhet,
    HosPersonal,
    Intyg,
    PartialDate,
    Patient,
    Relation,
    Result,
    Revocation,
    Status,
    Svar,
    Vardgivare,
)
from tests import riv_samples

NS = (
    f'xmlns:rc="{ns.REGISTER}" xmlns:gn="{ns.CORE}" xmlns:tp="{ns.TYPES}" xmlns:x="urn:example:extension" '
    f'xmlns:rv="{ns.REVOKE}"'
)

SKAPAD_AV = """
  <gn:personal-id><tp:root>1.2.752.129.2.1.4.1</tp:root><tp:extension>SE2321000016-H2R5</tp:extension></gn:personal-id>
  <gn:fullstandigtNamn> Ajla Doktor </gn:fullstandigtNamn>
  <gn:forskrivarkod>1234567</gn:forskrivarkod>
  <gn:befattning><tp:code>203090</tp:code><tp:codeSystem>1.2.752.129.2.2.1.4</tp:codeSystem>
    <tp:displayName>Läkare legitimerad, annan</tp:displayName></gn:befattning>
  <gn:befattning><tp:code>204010</tp:code><tp:codeSystem>1.2.752.129.2.2.1.4</tp:codeSystem></gn:befattning>
  <gn:enhet>
    <gn:enhets-id><tp:root>1.2.752.129.2.1.4.1</tp:root><tp:extension>SE2321000016-H489</tp:extension></gn:enhets-id>
    <gn:arbetsplatskod><tp:root>1.2.752.29.4.71</tp:root><tp:extension>1234567890</tp:extension></gn:arbetsplatskod>
    <gn:enhetsnamn>Vårdcentralen Småmåla</gn:enhetsnamn>
    <gn:postadress>Storgatan 1</gn:postadress>
    <gn:postnummer>12345</gn:postnummer>
    <gn:postort>Småmåla</gn:postort>
    <gn:telefonnummer>0101234567890</gn:telefonnummer>
    <gn:epost>vc@example.se</gn:epost>
    <gn:vardgivare>
      <gn:vardgivare-id><tp:root>1.2.752.129.2.1.4.1</tp:root><tp:extension>SE2321000016-15CQ</tp:extension>
      </gn:vardgivare-id>
      <gn:vardgivarnamn>Region Småland</gn:vardgivarnamn>
      <x:note>an extension of the care provider</x:note>
    </gn:vardgivare>
  </gn:enhet>
  <gn:specialistkompetens><tp:code>Allmänmedicin</tp:code><tp:displayName>Allmänmedicin</tp:displayName>
  </gn:specialistkompetens>
  <gn:specialistkompetens><tp:code>Geriatrik</tp:code></gn:specialistkompetens>
"""

FULL = f"""<rc:RegisterCertificate {NS}><rc:intyg>
  <gn:intygs-id><tp:root>SE2321000016-H489</tp:root><tp:extension> 9f0c3a52 </tp:extension></gn:intygs-id>
  <gn:mottagare><tp:code>FKASSA</tp:code><tp:codeSystem>769bb12b-bd9f-4203-a5cd-fd14f2eb3b80</tp:codeSystem>
  </gn:mottagare>
  <gn:mottagare><tp:code>HSVARD</tp:code><tp:codeSystem>769bb12b-bd9f-4203-a5cd-fd14f2eb3b80</tp:codeSystem>
    <tp:codeSystemName>KV_PART</tp:codeSystemName><tp:codeSystemVersion>1</tp:codeSystemVersion>
    <tp:displayName>Hälso- och sjukvård</tp:displayName><tp:originalText>vården</tp:originalText></gn:mottagare>
  <gn:typ><tp:code>LISJP</tp:code><tp:codeSystem>b64ea353-e8f6-4832-b563-fc7d46f29548</tp:codeSystem>
    <tp:displayName>Läkarintyg för sjukpenning</tp:displayName></gn:typ>
  <gn:version>1.0</gn:version>
  <gn:signeringstidpunkt>2026-03-02T10:15:30</gn:signeringstidpunkt>
  <gn:skickatTidpunkt> 2026-03-02T10:16:00 </gn:skickatTidpunkt>
  <gn:patient>
    <gn:person-id><tp:root>1.2.752.129.2.1.3.1</tp:root><tp:extension>191212121212</tp:extension></gn:person-id>
    <gn:fornamn>Tolvan</gn:fornamn>
    <gn:efternamn>Tolvansson</gn:efternamn>
    <gn:mellannamn>Mellan</gn:mellannamn>
    <gn:postadress>Storgatan 1</gn:postadress>
    <gn:postnummer>12345</gn:postnummer>
    <gn:postort>Småmåla</gn:postort>
  </gn:patient>
  <gn:skapadAv>{SKAPAD_AV}</gn:skapadAv>
  <gn:relation>
    <gn:typ><tp:code>ERSATT</tp:code><tp:codeSystem>c2362fcd-eda0-4f9a-bd13-b3bbaf7f2146</tp:codeSystem></gn:typ>
    <gn:intygs-id><tp:root>SE2321000016-H489</tp:root><tp:extension>earlier</tp:extension></gn:intygs-id>
  </gn:relation>
  <gn:status>
    <gn:part><tp:code>FKASSA</tp:code><tp:codeSystem>769bb12b-bd9f-4203-a5cd-fd14f2eb3b80</tp:codeSystem></gn:part>
    <gn:status><tp:code>SENTTO</tp:code><tp:codeSystem>9871cd17-8755-4ed9-b894-ff3729e775a4</tp:codeSystem>
    </gn:status>
    <gn:tidpunkt>2026-03-02T10:17:00</gn:tidpunkt>
  </gn:status>
  <gn:svar id="1">
    <gn:instans>1</gn:instans>
    <gn:delsvar id="1.1"><tp:cv><tp:code>UNDERSOKNING</tp:code><tp:codeSystem>KV_FKMU_0001</tp:codeSystem></tp:cv>
    </gn:delsvar>
    <gn:delsvar id="1.2"> 2026-03-01 </gn:delsvar>
  </gn:svar>
  <gn:svar id="1"><gn:instans>2</gn:instans><gn:delsvar id="1.2"><tp:date>2026-02-20</tp:date></gn:delsvar></gn:svar>
  <gn:svar id="29"><gn:delsvar id="29.1">  Lärare
  </gn:delsvar><x:note>an extension of a svar</x:note></gn:svar>
  <gn:svar id="32"><gn:delsvar id="32.2"><tp:datePeriod><tp:start>2026-03-02</tp:start><tp:end>2026-04-01</tp:end>
    </tp:datePeriod></gn:delsvar><gn:delsvar id="32.3"><tp:datePeriod><tp:start>2026-03-02</tp:start>
    </tp:datePeriod></gn:delsvar></gn:svar>
  <gn:svar id="9"><gn:delsvar id="9.1"><tp:partialDate><tp:format>YYYY-MM</tp:format><tp:value>2025-11</tp:value>
    </tp:partialDate></gn:delsvar></gn:svar>
  <gn:svar id="35"><gn:delsvar id="35.1">före <x:b>mitt</x:b> efter</gn:delsvar><gn:delsvar id="35.2"/></gn:svar>
  <gn:svar id="40"><gn:delsvar id="40.1"><tp:cv><tp:code>A</tp:code><tp:codeSystem>S</tp:codeSystem></tp:cv>
    <tp:cv><tp:code>B</tp:code><tp:codeSystem>S</tp:codeSystem></tp:cv></gn:delsvar></gn:svar>
  <x:note>an extension of the certificate</x:note>
</rc:intyg></rc:RegisterCertificate>"""

HSA = ns.HSA_ID_OID
PART = ns.KV_PART


def skapad_av() -> HosPersonal:
    return HosPersonal(
        personal_id=II(HSA, "SE2321000016-H2R5"),
        fullstandigt_namn="Ajla Doktor",
        forskrivarkod="1234567",
        befattningar=(
            CV("203090", ns.KV_BEFATTNING, display_name="Läkare legitimerad, annan"),
            CV("204010", ns.KV_BEFATTNING),
        ),
        specialistkompetenser=(
            CV("Allmänmedicin", "", display_name="Allmänmedicin"),
            CV("Geriatrik", ""),
        ),
        enhet=Enhet(
            enhets_id=II(HSA, "SE2321000016-H489"),
            arbetsplatskod=II(ns.ARBETSPLATSKOD_OID, "1234567890"),
            enhetsnamn="Vårdcentralen Småmåla",
            postadress="Storgatan 1",
            postnummer="12345",
            postort="Småmåla",
            telefonnummer="0101234567890",
            epost="vc@example.se",
            vardgivare=Vardgivare(vardgivare_id=II(HSA, "SE2321000016-15CQ"), vardgivarnamn="Region Småland"),
        ),
    )


EXPECTED = Intyg(
    intygs_id=II("SE2321000016-H489", "9f0c3a52"),
    mottagare=(
        CV("FKASSA", PART),
        CV(
            "HSVARD",
            PART,
            code_system_name="KV_PART",
            code_system_version="1",
            display_name="Hälso- och sjukvård",
            original_text="vården",
        ),
    ),
    typ=CV("LISJP", ns.KV_INTYGSTYP, display_name="Läkarintyg för sjukpenning"),
    version="1.0",
    signeringstidpunkt=datetime(2026, 3, 2, 10, 15, 30),  # noqa: DTZ001 - the contract's times have no zone
    skickat_tidpunkt=datetime(2026, 3, 2, 10, 16),  # noqa: DTZ001
    patient=Patient(
        person_id=II(ns.PERSONNUMMER_OID, "191212121212"),
        fornamn="Tolvan",
        efternamn="Tolvansson",
        mellannamn="Mellan",
        postadress="Storgatan 1",
        postnummer="12345",
        postort="Småmåla",
    ),
    skapad_av=skapad_av(),
    relationer=(Relation(typ=CV("ERSATT", ns.KV_RELATION), intygs_id=II("SE2321000016-H489", "earlier")),),
    status=(
        Status(
            part=CV("FKASSA", PART),
            status=CV("SENTTO", ns.KV_STATUS),
            tidpunkt=datetime(2026, 3, 2, 10, 17),  # noqa: DTZ001
        ),
    ),
    svar=(
        Svar(
            id="1",
            instans=1,
            delsvar=(
                Delsvar(id="1.1", value=CV("UNDERSOKNING", "KV_FKMU_0001"), elements=1),
                Delsvar(id="1.2", text="2026-03-01"),
            ),
        ),
        Svar(id="1", instans=2, delsvar=(Delsvar(id="1.2", value=date(2026, 2, 20), elements=1),)),
        Svar(id="29", delsvar=(Delsvar(id="29.1", text="Lärare"),)),
        Svar(
            id="32",
            delsvar=(
                Delsvar(id="32.2", value=DatePeriod(date(2026, 3, 2), date(2026, 4, 1)), elements=1),
                Delsvar(id="32.3", value=DatePeriod(date(2026, 3, 2), None), elements=1),
            ),
        ),
        Svar(id="9", delsvar=(Delsvar(id="9.1", value=PartialDate("YYYY-MM", "2025-11"), elements=1),)),
        # Markup in a text answer: the text around it, the element counted (the rules refuse it).
        Svar(id="35", delsvar=(Delsvar(id="35.1", text="före  efter", elements=1), Delsvar(id="35.2"))),
        Svar(id="40", delsvar=(Delsvar(id="40.1", elements=2),)),  # two values: none read, both counted
    ),
)


def _intyg(message: str) -> etree._Element:
    found = xml.parse(message.encode()).find(f"{{{ns.REGISTER}}}intyg")
    assert found is not None
    return found


def test_every_element_of_a_hand_written_certificate() -> None:
    element = _intyg(FULL)
    xml.check(element.getparent(), "RegisterCertificateResponder_3.xsd")  # type: ignore[arg-type]
    assert xml.read_intyg(element) == EXPECTED


MINIMAL = f"""<rc:RegisterCertificate {NS}><rc:intyg>
  <gn:intygs-id><tp:root>R</tp:root><tp:extension>E</tp:extension></gn:intygs-id>
  <gn:typ><tp:code>AG7804</tp:code><tp:codeSystem>b64ea353-e8f6-4832-b563-fc7d46f29548</tp:codeSystem></gn:typ>
  <gn:version>1.0</gn:version>
  <gn:patient>
    <gn:person-id><tp:root>1.2.752.129.2.1.3.1</tp:root><tp:extension>191212121212</tp:extension></gn:person-id>
    <gn:fornamn/><gn:efternamn>T</gn:efternamn><gn:postadress/><gn:postnummer/><gn:postort/>
  </gn:patient>
  <gn:skapadAv>
    <gn:personal-id><tp:root>{HSA}</tp:root><tp:extension>P</tp:extension></gn:personal-id>
    <gn:fullstandigtNamn>N</gn:fullstandigtNamn>
    <gn:enhet>
      <gn:enhets-id><tp:root>{HSA}</tp:root><tp:extension>U</tp:extension></gn:enhets-id>
      <gn:arbetsplatskod><tp:root>{ns.ARBETSPLATSKOD_OID}</tp:root><tp:extension>0000000</tp:extension>
      </gn:arbetsplatskod>
      <gn:enhetsnamn>E</gn:enhetsnamn><gn:postadress>A</gn:postadress><gn:postnummer>1</gn:postnummer>
      <gn:postort>O</gn:postort><gn:telefonnummer>T</gn:telefonnummer>
      <gn:vardgivare><gn:vardgivare-id><tp:root>{HSA}</tp:root><tp:extension>V</tp:extension></gn:vardgivare-id>
        <gn:vardgivarnamn>VG</gn:vardgivarnamn></gn:vardgivare>
    </gn:enhet>
  </gn:skapadAv>
</rc:intyg></rc:RegisterCertificate>"""


def test_optional_elements_left_out() -> None:
    element = _intyg(MINIMAL)
    xml.check(element.getparent(), "RegisterCertificateResponder_3.xsd")  # type: ignore[arg-type]
    intyg = xml.read_intyg(element)
    assert intyg == Intyg(
        intygs_id=II("R", "E"),
        typ=CV("AG7804", ns.KV_INTYGSTYP),
        version="1.0",
        patient=Patient(
            person_id=II(ns.PERSONNUMMER_OID, "191212121212"),
            fornamn="",
            efternamn="T",
            postadress="",
            postnummer="",
            postort="",
        ),
        skapad_av=HosPersonal(
            personal_id=II(HSA, "P"),
            fullstandigt_namn="N",
            enhet=Enhet(
                enhets_id=II(HSA, "U"),
                arbetsplatskod=II(ns.ARBETSPLATSKOD_OID, "0000000"),
                enhetsnamn="E",
                postadress="A",
                postnummer="1",
                postort="O",
                telefonnummer="T",
                vardgivare=Vardgivare(vardgivare_id=II(HSA, "V"), vardgivarnamn="VG"),
            ),
        ),
    )
    # An optional element left out is None, not an empty text.
    assert intyg.patient.mellannamn is None


@pytest.mark.parametrize(
    ("drop", "problem"),
    [
        ("<gn:intygs-id><tp:root>R</tp:root><tp:extension>E</tp:extension></gn:intygs-id>", "intyg lacks intygs-id"),
        ("<tp:extension>E</tp:extension>", "intygs-id lacks extension"),
        ("<gn:version>1.0</gn:version>", "intyg lacks version"),
        ("<tp:codeSystem>b64ea353-e8f6-4832-b563-fc7d46f29548</tp:codeSystem>", "typ lacks codeSystem"),
        (
            "<gn:person-id><tp:root>1.2.752.129.2.1.3.1</tp:root><tp:extension>191212121212</tp:extension>"
            "</gn:person-id>",
            "patient lacks person-id",
        ),
        ("<gn:enhets-id><tp:root>" + HSA + "</tp:root><tp:extension>U</tp:extension></gn:enhets-id>",
         "enhet lacks enhets-id"),
        ("<tp:extension>V</tp:extension>", "vardgivare-id lacks extension"),
    ],
)  # fmt: skip
def test_an_unchecked_document_lacking_a_required_element_is_not_the_contract(drop: str, problem: str) -> None:
    message = " ".join(MINIMAL.split())
    drop = " ".join(drop.split())
    assert drop in message
    with pytest.raises(xml.NotTheContract) as raised:
        xml.read_intyg(_intyg(message.replace(drop, "", 1)))
    assert raised.value.problems == [problem]


def test_of_a_repeated_single_element_the_first_is_read_as_find_would() -> None:
    message = MINIMAL.replace("<gn:version>1.0</gn:version>", "<gn:version>1.0</gn:version><gn:version>2</gn:version>")
    element = _intyg(message)
    assert xml.read_intyg(element).version == "1.0" == element.findtext(f"{{{ns.CORE}}}version")


@pytest.mark.parametrize("intyg", [riv_samples.lisjp(), riv_samples.ag7804()], ids=["LISJP", "AG7804"])
def test_the_samples_are_read_back_as_written(intyg: Intyg) -> None:
    root = etree.Element(f"{{{ns.REGISTER}}}RegisterCertificate")
    xml.write_intyg(root, f"{{{ns.REGISTER}}}intyg", intyg)
    assert xml.read_intyg(xml.parse(etree.tostring(root))[0]) == intyg


def test_a_hand_written_revocation() -> None:
    message = f"""<rv:RevokeCertificate {NS}>
      <rv:meddelande> Fel patient </rv:meddelande>
      <rv:skickatTidpunkt>2026-03-03T08:00:00</rv:skickatTidpunkt>
      <rv:intygs-id><tp:root>SE2321000016-H489</tp:root><tp:extension>9f0c3a52</tp:extension></rv:intygs-id>
      <rv:patientPerson-id><tp:root>{ns.PERSONNUMMER_OID}</tp:root><tp:extension>191212121212</tp:extension>
      </rv:patientPerson-id>
      <rv:skickatAv>{SKAPAD_AV}</rv:skickatAv>
    </rv:RevokeCertificate>"""
    element = xml.parse(message.encode())
    xml.check(element, "RevokeCertificateResponder_2.xsd")
    assert xml.read_revocation(element) == Revocation(
        intygs_id=II("SE2321000016-H489", "9f0c3a52"),
        person_id=II(ns.PERSONNUMMER_OID, "191212121212"),
        skickat_tidpunkt=datetime(2026, 3, 3, 8),  # noqa: DTZ001
        skickat_av=skapad_av(),
        meddelande="Fel patient",
    )
    no_message = xml.parse(message.replace("<rv:meddelande> Fel patient </rv:meddelande>", "").encode())
    assert xml.read_revocation(no_message).meddelande is None


@pytest.mark.parametrize(
    ("inner", "result"),
    [
        ("<gn:resultCode>OK</gn:resultCode>", Result("OK")),
        (
            "<gn:resultCode>ERROR</gn:resultCode><gn:resultText> Intyget är inte giltigt </gn:resultText>"
            "<gn:errorId>VALIDATION_ERROR</gn:errorId>",
            Result("ERROR", "VALIDATION_ERROR", "Intyget är inte giltigt"),
        ),
        ("<gn:resultCode>INFO</gn:resultCode><gn:resultText/>", Result("INFO", None, "")),
    ],
)
def test_a_hand_written_result(inner: str, result: Result) -> None:
    assert xml.read_result(xml.parse(f"<gn:result {NS}>{inner}</gn:result>".encode())) == result
