"""Intake's RIV-TA endpoints as the national platform reaches them: a real intake process serving mutual TLS with
certificates of the development CA, called by zeep (a standard SOAP client) on the WSDLs it serves, and played as
an attacker: hostile XML, the wrong CA, no client certificate, a certificate of the CA that is not the platform's,
the plain listener. Nothing refused is stored."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from deploy.local import devca
from deploy.simulators.platform import riv as platform_riv
from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.transport import Intyg
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE, Interaction
from schemas.topics import INTAKE_CERTIFICATES
from services.kit.settings import ServiceSettings
from tests.harness import ServiceProcess, count_rows, drop_schema, eventually, new_unique, schema_name, topic_prefix
from tests.harness.db import connect
from tests.harness.infra import free_port
from tests.harness.kafka import read_topic
from tests.harness.riv import JournalSystem, lisjp, replace, revocation

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class RivIntake:
    url: str  # the plain listener (JSON API)
    riv_url: str  # the mutual-TLS listener
    tls: Path
    other_ca: Path  # a CA intake does not trust, with a client certificate of its own
    schema: str
    topic: str

    def journal(self, interaction: Interaction = REGISTER_CERTIFICATE, cert: str = "platform") -> JournalSystem:
        return JournalSystem(
            self.riv_url, interaction, ca=self.tls / "ca.pem", cert=self.tls / f"{cert}.pem",
            key=self.tls / f"{cert}-key.pem",
        )  # fmt: skip

    def client_context(self, directory: Path | None = None, cert: str = "platform") -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
        d = directory or self.tls
        context.load_cert_chain(str(d / f"{cert}.pem"), str(d / f"{cert}-key.pem"))
        return context


@pytest.fixture(scope="module")
async def riv_intake(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RivIntake]:
    directory = tmp_path_factory.mktemp("riv")
    tls = devca.ensure(directory / "tls")
    other = devca.ensure(directory / "other-ca")
    unique = new_unique()
    base = ServiceSettings()
    riv_port = free_port()
    env = {
        "INTAKE_DB_SCHEMA": schema_name(unique), "MINAINTYG_TOPIC_PREFIX": topic_prefix(unique),
        "MINAINTYG_ENV": "test",
        "INTAKE_RIV_PORT": str(riv_port), "INTAKE_RIV_TLS_CERT_FILE": str(tls / "intake.pem"),
        "INTAKE_RIV_TLS_KEY_FILE": str(tls / "intake-key.pem"), "INTAKE_RIV_CLIENT_CA_FILE": str(tls / "ca.pem"),
    }  # fmt: skip
    process = ServiceProcess("minaintyg-intake", env, port_env="INTAKE_PORT", log=directory / "intake.log")
    process.spawn()
    try:
        async with httpx.AsyncClient(timeout=2) as client:

            async def ready() -> bool:
                assert process.exited() is None, process.read_log()[-3000:]
                try:
                    return (await client.get(f"{process.url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=90, interval=0.3, what="intake")
        yield RivIntake(
            process.url, f"https://127.0.0.1:{riv_port}", tls, other, schema_name(unique),
            f"{topic_prefix(unique)}{INTAKE_CERTIFICATES.name}",
        )  # fmt: skip
    finally:
        process.stop()
        await drop_schema(base.database_url, schema_name(unique))


async def _events(intake: RivIntake, certificate_id: str) -> list[dict[str, object]]:
    records = await read_topic(ServiceSettings().kafka_bootstrap_servers, intake.topic)
    out = []
    for record in records:
        event = json.loads(record.value)
        if event.get("subject") == certificate_id:
            out.append(event)
    return out


async def test_a_journal_system_registers_with_zeep_and_the_certificate_lands_once(riv_intake: RivIntake) -> None:
    journal = await asyncio.to_thread(riv_intake.journal)
    intyg = lisjp()
    result = await asyncio.to_thread(journal.register, intyg)
    assert result.result.resultCode == "OK", result.result.resultText
    again = await asyncio.to_thread(journal.register, intyg)
    assert (again.result.resultCode, again.result.resultText) == ("INFO", "Intyget är redan registrerat")
    person = replace(intyg.patient.person_id, extension="197705232382")
    other_patient = replace(intyg, patient=replace(intyg.patient, person_id=person))
    conflict = await asyncio.to_thread(journal.register, other_patient)
    assert (conflict.result.resultCode, conflict.result.errorId) == ("ERROR", "VALIDATION_ERROR")

    async def landed() -> list[dict[str, object]]:
        return await _events(riv_intake, intyg.intygs_id.extension)

    events = await eventually(landed, timeout=20, what="the certificate on intake.certificates.v1")
    await asyncio.sleep(1)
    events = await landed()
    assert len(events) == 1, "registered three times, published once"
    certificate = events[0]["data"]["certificate"]  # type: ignore[index]
    assert certificate["type"] == "LISJP"
    assert certificate["id_root"] == intyg.intygs_id.root
    assert [d["code"] for d in certificate["content"]["diagnoses"]] == ["F438A", "S7200"]
    assert certificate["content"]["fmb_motivation"] == "Längre än FMB på grund av samsjuklighet"
    assert certificate["care_unit"]["workplace_code"] == "1234567"


async def test_revocations_answer_as_the_certificate_store(riv_intake: RivIntake) -> None:
    register = await asyncio.to_thread(riv_intake.journal)
    revoke = await asyncio.to_thread(riv_intake.journal, REVOKE_CERTIFICATE)
    intyg = lisjp()
    unknown = await asyncio.to_thread(revoke.revoke, revocation(intyg))
    assert (unknown.result.resultCode, unknown.result.errorId) == ("ERROR", "APPLICATION_ERROR")
    assert (await asyncio.to_thread(register.register, intyg)).result.resultCode == "OK"
    assert (await asyncio.to_thread(revoke.revoke, revocation(intyg))).result.resultCode == "OK"
    second = await asyncio.to_thread(revoke.revoke, revocation(intyg))
    assert second.result.resultCode == "INFO"


async def test_a_certificate_breaking_the_published_rules_is_refused_naming_each_rule(riv_intake: RivIntake) -> None:
    journal = await asyncio.to_thread(riv_intake.journal)
    intyg = lisjp()
    broken = replace(intyg, svar=tuple(s for s in intyg.svar if s.id not in ("6", "35")))
    result = await asyncio.to_thread(journal.register, broken)
    assert (result.result.resultCode, result.result.errorId) == ("ERROR", "VALIDATION_ERROR")
    assert "intyg: " in result.result.resultText
    assert "Typ av diagnos" in result.result.resultText
    assert "Funktionsnedsättning" in result.result.resultText
    assert await _events(riv_intake, broken.intygs_id.extension) == []


def _envelope(intyg: Intyg, logical_address: str | None = "MINAINTYG", *, responder: str = ns.REGISTER) -> bytes:
    root, body = soap.envelope(logical_address)
    payload = etree.SubElement(body, f"{{{responder}}}RegisterCertificate")
    xml.write_intyg(payload, f"{{{responder}}}intyg", intyg)
    return soap.serialise(root)


def _misspelt_version(intyg: Intyg) -> bytes:
    root = etree.fromstring(_envelope(intyg))
    version = next(root.iter(f"{{{ns.CORE}}}version"))
    version.tag = f"{{{ns.CORE}}}versionen"
    return soap.serialise(root)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol3;</soap:Body></soap:Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&xxe;</soap:Body></soap:Envelope>"""


def _deep(levels: int) -> bytes:
    return (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        + b"<a>" * levels + b"</a>" * levels + b"</soap:Body></soap:Envelope>"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("entity expansion", BILLION_LAUGHS, "DTD"),
        ("external entity", EXTERNAL_ENTITY, "DTD"),
        ("deep nesting", _deep(5000), "välformad"),
        ("not XML", b"{\"id\": 1}", "välformad"),
        ("SOAP 1.2 envelope", b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
         "SOAP 1.1"),
        ("wrong namespace", None, "namnrymden"),
        ("missing LogicalAddress", None, "LogicalAddress"),
        ("schema violation", None, "kontraktet"),
    ],
)  # fmt: skip
async def test_hostile_or_wrong_messages_get_a_fault_and_nothing_is_stored(
    riv_intake: RivIntake, name: str, body: bytes | None, says: str
) -> None:
    intyg = lisjp()
    if name == "wrong namespace":
        body = _envelope(
            intyg, responder="urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:2"
        )
    elif name == "missing LogicalAddress":
        body = _envelope(intyg, None)
    elif name == "schema violation":
        body = _misspelt_version(intyg)
    assert body is not None
    before = await count_rows(ServiceSettings().database_url, riv_intake.schema, "certificates")
    async with httpx.AsyncClient(verify=riv_intake.client_context(), timeout=10) as client:
        response = await client.post(
            f"{riv_intake.riv_url}{REGISTER_CERTIFICATE.path}", content=body,
            headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": REGISTER_CERTIFICATE.soap_action},
        )  # fmt: skip
    assert response.status_code == 400, response.text
    fault = soap.read_fault(xml.parse(response.content))
    assert fault is not None
    assert fault[0] == "soap:Client"
    assert says in fault[1], fault
    assert await count_rows(ServiceSettings().database_url, riv_intake.schema, "certificates") == before


async def test_a_huge_message_is_refused_before_it_is_read(riv_intake: RivIntake) -> None:
    huge = _envelope(lisjp()).replace(b"Tolvansson", b"T" * 400_000)
    async with httpx.AsyncClient(verify=riv_intake.client_context(), timeout=10) as client:
        response = await client.post(f"{riv_intake.riv_url}{REGISTER_CERTIFICATE.path}", content=huge,
                                     headers={"Content-Type": soap.CONTENT_TYPE})  # fmt: skip
    assert response.status_code == 413


async def test_only_the_platform_with_a_certificate_of_the_ca_gets_in(riv_intake: RivIntake) -> None:
    url = f"{riv_intake.riv_url}{REGISTER_CERTIFICATE.path}"
    body = _envelope(lisjp())
    headers = {"Content-Type": soap.CONTENT_TYPE}
    no_certificate = ssl.create_default_context(cafile=str(riv_intake.tls / "ca.pem"))
    for context in (no_certificate, riv_intake.client_context(riv_intake.other_ca)):
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            with pytest.raises(httpx.HTTPError):  # the handshake fails (or the server closes at once)
                await client.post(url, content=body, headers=headers)
    # A certificate of the right CA that is not the platform's (Försäkringskassan's client certificate).
    async with httpx.AsyncClient(verify=riv_intake.client_context(cert="fk"), timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 403
    assert "plattform" in (soap.read_fault(xml.parse(response.content)) or ("", ""))[1]
    # The plain listener does not serve the contracts.
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{riv_intake.url}{REGISTER_CERTIFICATE.path}", content=body, headers=headers)
    assert response.status_code == 403
    assert await _events(riv_intake, "none") == []


async def test_the_wsdl_addresses_can_be_called_as_they_are(riv_intake: RivIntake) -> None:
    async with httpx.AsyncClient(verify=riv_intake.client_context(), timeout=10) as client:
        for interaction in (REGISTER_CERTIFICATE, REVOKE_CERTIFICATE):
            response = await client.get(f"{riv_intake.riv_url}{interaction.path}?wsdl")
            assert response.status_code == 200
            assert f'location="{riv_intake.riv_url}{interaction.path}"' in response.text
            assert "?xsd=" in response.text


async def test_the_message_is_kept_as_received_and_both_entry_points_publish_the_same_event(
    riv_intake: RivIntake,
) -> None:
    """The RegisterCertificate message is stored byte for byte beside the normalised certificate, and the same
    certificate delivered as JSON (another id) publishes an event equal to it but for the id and the times."""
    intyg = lisjp()
    message = platform_riv.register_message(intyg)
    async with httpx.AsyncClient(verify=riv_intake.client_context(), timeout=10) as client:
        answer = await client.post(
            f"{riv_intake.riv_url}{REGISTER_CERTIFICATE.path}", content=message, headers=SOAP_HEADERS
        )
    assert answer.status_code == 200, answer.text
    assert xml.read_result(_result(answer.content)).result_code == "OK"
    async with connect(ServiceSettings().database_url, riv_intake.schema) as conn:
        original = await conn.fetchval("SELECT original FROM certificates WHERE id = $1", intyg.intygs_id.extension)
    assert original == message.decode("utf-8")

    riv_event = (await eventually(lambda: _events(riv_intake, intyg.intygs_id.extension), timeout=20, what="RIV"))[0]
    as_json = {**riv_event["data"]["certificate"], "id": str(uuid.uuid4())}
    async with httpx.AsyncClient(timeout=10) as client:
        posted = await client.post(
            f"{riv_intake.url}/v1/certificates", json=as_json, headers={"Authorization": "Bearer dev-platform-secret"}
        )
    assert posted.status_code == 201, posted.text
    json_event = (await eventually(lambda: _events(riv_intake, as_json["id"]), timeout=20, what="JSON"))[0]

    def comparable(event: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in event["data"].items() if k != "received_at"}
        data["certificate"] = {k: v for k, v in data["certificate"].items() if k != "id"}
        envelope = {k: v for k, v in event.items() if k in ("type", "source", "specversion", "datacontenttype")}
        return {**envelope, "data": data}

    assert comparable(json_event) == comparable(riv_event)


SOAP_HEADERS = {"Content-Type": soap.CONTENT_TYPE, "SOAPAction": REGISTER_CERTIFICATE.soap_action}


def _result(body: bytes) -> etree._Element:
    return next(xml.parse(body).iter(f"{{{ns.REGISTER}}}result"))


async def test_a_care_unit_that_moves_county_or_is_disconnected_is_looked_up_again(riv_intake: RivIntake) -> None:
    """Intake remembers each unit's county between deliveries, but the insert holds it to the register: after the
    unit moves to another county its next certificate carries the new one, and once it is disconnected its next
    delivery is refused at once, not stored."""
    unit = f"SE2321000016-{uuid.uuid4().hex[:8].upper()}"
    async with connect(ServiceSettings().database_url, riv_intake.schema) as conn:
        await conn.execute(
            "INSERT INTO care_units (hsa_id, name, connected, county, changed_at) "
            "VALUES ($1, 'Vårdcentralen Flytten', true, '01', now())",
            unit,
        )
    journal = await asyncio.to_thread(riv_intake.journal)

    def from_unit() -> Intyg:
        intyg = lisjp()
        enhet = replace(intyg.skapad_av.enhet, enhets_id=replace(intyg.skapad_av.enhet.enhets_id, extension=unit))
        return replace(intyg, skapad_av=replace(intyg.skapad_av, enhet=enhet))

    async def county_published(intyg: Intyg) -> object:
        events = await eventually(
            lambda: _events(riv_intake, intyg.intygs_id.extension), timeout=20, what="the certificate's event"
        )
        return events[0]["data"]["certificate"]["care_unit"]["county"]

    first, second, third = from_unit(), from_unit(), from_unit()
    assert (await asyncio.to_thread(journal.register, first)).result.resultCode == "OK"
    async with connect(ServiceSettings().database_url, riv_intake.schema) as conn:
        await conn.execute("UPDATE care_units SET county = '12' WHERE hsa_id = $1", unit)
    assert (await asyncio.to_thread(journal.register, second)).result.resultCode == "OK"
    async with connect(ServiceSettings().database_url, riv_intake.schema) as conn:
        await conn.execute("UPDATE care_units SET connected = false WHERE hsa_id = $1", unit)
    refused = (await asyncio.to_thread(journal.register, third)).result
    assert (refused.resultCode, refused.errorId) == ("ERROR", "VALIDATION_ERROR")
    assert refused.resultText == f"Vårdenheten {unit} är inte ansluten till Mina intyg"

    assert await county_published(first) == "01"
    assert await county_published(second) == "12"
    async with connect(ServiceSettings().database_url, riv_intake.schema) as conn:
        stored = await conn.fetchval("SELECT count(*) FROM certificates WHERE id = $1", third.intygs_id.extension)
    assert stored == 0
