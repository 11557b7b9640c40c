"""Försäkringskassan fetches a citizen's certificates from Mina intyg (issue #13): a real portal process serving
ListCertificatesForCitizen v3 and GetCertificate v2 on its mutual-TLS listener with certificates of the development
CA, called by zeep (a standard SOAP client) on the WSDLs it serves with Försäkringskassan's client certificate.

Only a consented citizen's certificates are answered (the portal holds them only while consent stands), never a
revoked one; each certificate fetched is in the citizen's access log, shown in the portal as fetched by
Försäkringskassan. Refused: another client certificate of the CA, none at all, the plain listener, hostile XML,
another logical address."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from lxml import etree

from deploy.local import devca
from deploy.simulators.platform.generator import CertificateFactory, Person
from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.envelope import encode, new_envelope
from schemas.events import CertificateReleased, CertificateRevoked, CitizenDataWithdrawn, EventData
from schemas.riv import namespaces as ns
from schemas.riv import soap, xml
from schemas.riv.transport import II
from schemas.riv.wsdl import GET_CERTIFICATE, LIST_CERTIFICATES_FOR_CITIZEN, Interaction
from schemas.topics import CONSENT_RELEASED
from services.kit.citizen import citizen_ref
from services.kit.kafka import make_producer
from services.kit.settings import ServiceSettings
from services.portal import repo
from services.portal.security import SESSION_COOKIE, new_token, token_hash
from services.portal.settings import PortalSettings
from tests.harness import ServiceProcess, drop_schema, eventually, new_unique, schema_name, topic_prefix
from tests.harness.db import connect
from tests.harness.infra import free_port
from tests.harness.poll import wait_ready
from tests.harness.riv import Forsakringskassan

pytestmark = pytest.mark.integration


@dataclass
class FkPortal:
    url: str  # the plain listener (pages and JSON API)
    riv_url: str  # the mutual-TLS listener
    tls: Path
    settings: PortalSettings  # the process's schema, topics and citizen ref key
    producer: AIOKafkaProducer
    factory: CertificateFactory

    def fk(self, interaction: Interaction, cert: str = "fk") -> Forsakringskassan:
        return Forsakringskassan(
            self.riv_url, interaction, ca=self.tls / "ca.pem", cert=self.tls / f"{cert}.pem",
            key=self.tls / f"{cert}-key.pem",
        )  # fmt: skip

    def context(self, cert: str | None = "fk") -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
        if cert is not None:
            context.load_cert_chain(str(self.tls / f"{cert}.pem"), str(self.tls / f"{cert}-key.pem"))
        return context

    def ref(self, person: Person) -> str:
        return citizen_ref(person.personnummer, self.settings.citizen_ref_key.get_secret_value())

    async def publish(self, person: Person, data: EventData) -> None:
        envelope = new_envelope(data, source="test", time=datetime.now(UTC), correlation_id=secrets.token_hex(8))
        await self.producer.send_and_wait(
            self.settings.topic(CONSENT_RELEASED.name), encode(envelope), key=self.ref(person).encode()
        )

    async def release(self, person: Person, cert_type: str = "LISJP") -> str:
        certificate = CERTIFICATE_ADAPTER.validate_python(self.factory.certificate(cert_type, person=person))
        await self.publish(
            person,
            CertificateReleased(citizen_ref=self.ref(person), certificate=certificate, test_patient=False,
                                released_at=datetime.now(UTC), consent_generation=0),
        )  # fmt: skip
        return certificate.id

    async def revoke(self, person: Person, certificate_id: str) -> None:
        await self.publish(
            person,
            CertificateRevoked(citizen_ref=self.ref(person), certificate_id=certificate_id, certificate_type="LISJP",
                               revoked_at=datetime.now(UTC)),
        )  # fmt: skip

    async def withdraw(self, person: Person) -> None:
        data = CitizenDataWithdrawn(citizen_ref=self.ref(person), at=datetime.now(UTC), consent_generation=0)
        await self.publish(person, data)

    async def held(self, person: Person) -> set[str]:
        async with connect(ServiceSettings().database_url, self.settings.db_schema) as conn:
            rows = await conn.fetch("SELECT id FROM certificates WHERE citizen_ref = $1", self.ref(person))
        return {r["id"] for r in rows}

    async def session(self, person: Person) -> dict[str, str]:
        token = new_token()
        async with connect(ServiceSettings().database_url, self.settings.db_schema) as conn:
            await repo.create_session(
                conn, token_hash(token), csrf=new_token(), citizen_ref=self.ref(person),
                personnummer=person.personnummer, given_name=person.given_name, family_name=person.family_name,
                id_token="", consent_given=True, now=datetime.now(UTC),
            )  # fmt: skip
        return {"Cookie": f"{SESSION_COOKIE}={token}"}


@pytest.fixture(scope="module")
async def fk_portal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FkPortal]:
    directory = tmp_path_factory.mktemp("fkfetch")
    tls = devca.ensure(directory / "tls")
    unique = new_unique()
    riv_port = free_port()
    env = {
        "PORTAL_DB_SCHEMA": schema_name(unique), "MINAINTYG_TOPIC_PREFIX": topic_prefix(unique),
        "MINAINTYG_ENV": "test",
        "PORTAL_RIV_PORT": str(riv_port), "PORTAL_RIV_TLS_CERT_FILE": str(tls / "portal.pem"),
        "PORTAL_RIV_TLS_KEY_FILE": str(tls / "portal-key.pem"), "PORTAL_RIV_CLIENT_CA_FILE": str(tls / "ca.pem"),
    }  # fmt: skip
    settings = PortalSettings(db_schema=schema_name(unique), topic_prefix=topic_prefix(unique), environment="test")
    process = ServiceProcess("minaintyg-portal", env, port_env="PORTAL_PORT", log=directory / "portal.log")
    process.spawn()
    producer = make_producer(settings, client_id="test-fk-fetch")
    try:
        await wait_ready(process.url, within=90, alive=process.exited, what="portal")
        await producer.start()
        yield FkPortal(
            process.url, f"https://127.0.0.1:{riv_port}", tls, settings, producer,
            CertificateFactory(seed=int(unique, 16) % 2**31),
        )  # fmt: skip
    finally:
        await producer.stop()
        log = process.read_log()
        process.stop()
        await drop_schema(ServiceSettings().database_url, schema_name(unique))
    for person_number in {p.personnummer for p in CertificateFactory().persons[:8]}:
        assert person_number not in log, "a personnummer in the portal's log"


def _ids(answer: Any) -> list[str]:
    listing = answer.intygsLista  # zeep reads an empty intygsLista as None
    return [] if listing is None else [i["intygs-id"]["extension"] for i in (listing.intyg or [])]


async def test_a_consented_citizens_certificates_are_fetched_revoked_ones_never_and_each_fetch_is_logged(
    fk_portal: FkPortal,
) -> None:
    person = fk_portal.factory.persons[0]
    kept = await fk_portal.release(person)
    revoked = await fk_portal.release(person)
    employer = await fk_portal.release(person, "AG7804")
    await fk_portal.revoke(person, revoked)

    async def arrived() -> bool:
        return await fk_portal.held(person) == {kept, employer}

    await eventually(arrived, timeout=30, what="the releases and the revocation in the portal")
    listing = await asyncio.to_thread(fk_portal.fk, LIST_CERTIFICATES_FOR_CITIZEN)
    answer = await asyncio.to_thread(listing.list_for_citizen, person.personnummer, ("LISJP",))
    assert answer.result.resultCode == "OK"
    assert _ids(answer) == [kept]
    intyg = answer.intygsLista.intyg[0]
    assert intyg.patient["person-id"].extension == person.personnummer
    assert intyg.typ.code == "LISJP"
    everything = await asyncio.to_thread(listing.list_for_citizen, person.personnummer)
    assert sorted(_ids(everything)) == sorted([kept, employer])
    archived = await asyncio.to_thread(listing.list_for_citizen, person.personnummer, archived=True)
    assert _ids(archived) == []

    getting = await asyncio.to_thread(fk_portal.fk, GET_CERTIFICATE)
    one = await asyncio.to_thread(getting.get, kept)
    assert one.result.resultCode == "OK"
    assert one.intyg["intygs-id"].extension == kept
    gone = await asyncio.to_thread(getting.get, revoked)
    assert (gone.result.resultCode, gone.result.errorId, gone.intyg) == ("ERROR", "VALIDATION_ERROR", None)
    other_party = await asyncio.to_thread(lambda: getting.get(kept, part="TRANSP"))
    assert other_party.result.resultCode == "ERROR"

    # The citizen sees each fetch in the portal (the page "Om dina uppgifter" shows the same rows, with the
    # consent service this test does not run): kept listed twice and fetched once, employer listed once.
    cookie = await fk_portal.session(person)
    async with httpx.AsyncClient(base_url=fk_portal.url, timeout=10) as client:
        log = (await client.get("/api/v1/access-log", headers=cookie)).json()
    fetched = [e for e in log if e["action"] == "fetched"]
    assert sorted(e["certificate_id"] for e in fetched) == sorted([kept, kept, employer, kept])
    assert {(e["actor_text"], e["action_text"]) for e in fetched} == {
        ("Försäkringskassan", "Hämtat intyget från Mina intyg")
    }
    assert revoked not in {e["certificate_id"] for e in fetched}


async def test_a_citizen_without_consent_or_who_withdrew_it_has_nothing_to_fetch(fk_portal: FkPortal) -> None:
    never, withdrew = fk_portal.factory.persons[1], fk_portal.factory.persons[2]
    certificate_id = await fk_portal.release(withdrew)

    async def arrived() -> bool:
        return await fk_portal.held(withdrew) == {certificate_id}

    await eventually(arrived, timeout=30, what="the release in the portal")
    await fk_portal.withdraw(withdrew)

    async def removed() -> bool:
        return await fk_portal.held(withdrew) == set()

    await eventually(removed, timeout=30, what="the withdrawal in the portal")
    listing = await asyncio.to_thread(fk_portal.fk, LIST_CERTIFICATES_FOR_CITIZEN)
    for person in (never, withdrew):
        answer = await asyncio.to_thread(listing.list_for_citizen, person.personnummer)
        assert (answer.result.resultCode, _ids(answer)) == ("OK", [])
    getting = await asyncio.to_thread(fk_portal.fk, GET_CERTIFICATE)
    answer = await asyncio.to_thread(getting.get, certificate_id)
    assert (answer.result.resultCode, answer.result.errorId) == ("ERROR", "VALIDATION_ERROR")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&lol2;</soap:Body></soap:Envelope>"""


def _list_request(personnummer: str = "191212121212", logical_address: str | None = "MINAINTYG") -> bytes:
    root, body = soap.envelope(logical_address)
    r = f"{{{ns.LIST_FOR_CITIZEN}}}"
    payload = etree.SubElement(body, r + "ListCertificatesForCitizen")
    xml.write_ii(payload, r + "person-id", II(ns.PERSONNUMMER_OID, personnummer))
    etree.SubElement(payload, r + "arkiverade").text = "false"
    return soap.serialise(root)


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("entity expansion", BILLION_LAUGHS, "DTD"),
        ("missing LogicalAddress", _list_request(logical_address=None), "LogicalAddress"),
        ("another logical address", _list_request(logical_address="FKASSA"), "LogicalAddress"),
        ("schema violation", _list_request("19121212-1212"), "kontraktet"),
    ],
)
async def test_hostile_or_wrong_messages_get_a_fault(fk_portal: FkPortal, name: str, body: bytes, says: str) -> None:
    async with httpx.AsyncClient(verify=fk_portal.context(), timeout=10) as client:
        response = await client.post(
            f"{fk_portal.riv_url}{LIST_CERTIFICATES_FOR_CITIZEN.path}", content=body,
            headers={"Content-Type": soap.CONTENT_TYPE},
        )  # fmt: skip
    assert response.status_code == 400, response.text
    fault = soap.read_fault(xml.parse(response.content))
    assert fault is not None
    assert fault[0] == "soap:Client"
    assert says in fault[1], fault


async def test_only_forsakringskassan_with_its_certificate_gets_in(fk_portal: FkPortal) -> None:
    url = f"{fk_portal.riv_url}{LIST_CERTIFICATES_FOR_CITIZEN.path}"
    headers = {"Content-Type": soap.CONTENT_TYPE}
    async with httpx.AsyncClient(verify=fk_portal.context(None), timeout=10) as client:
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            await client.post(url, content=_list_request(), headers=headers)
    # A certificate of the right CA that is not Försäkringskassan's (the national platform's).
    async with httpx.AsyncClient(verify=fk_portal.context("platform"), timeout=10) as client:
        response = await client.post(url, content=_list_request(), headers=headers)
    assert response.status_code == 403
    assert "mottagare" in (soap.read_fault(xml.parse(response.content)) or ("", ""))[1]
    # The plain listener does not serve the contracts.
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{fk_portal.url}{LIST_CERTIFICATES_FOR_CITIZEN.path}", content=_list_request(), headers=headers
        )
    assert response.status_code == 403
    # The WSDLs name the endpoints as they are reached.
    async with httpx.AsyncClient(verify=fk_portal.context(), timeout=10) as client:
        for interaction in (LIST_CERTIFICATES_FOR_CITIZEN, GET_CERTIFICATE):
            response = await client.get(f"{fk_portal.riv_url}{interaction.path}?wsdl")
            assert response.status_code == 200
            assert f'location="{fk_portal.riv_url}{interaction.path}"' in response.text


async def test_the_answers_are_the_contract(fk_portal: FkPortal) -> None:
    person = fk_portal.factory.persons[3]
    certificate_id = await fk_portal.release(person)

    async def arrived() -> bool:
        return await fk_portal.held(person) == {certificate_id}

    await eventually(arrived, timeout=30, what="the release in the portal")
    root, body = soap.envelope("MINAINTYG")
    r = f"{{{ns.GET_CERTIFICATE}}}"
    payload = etree.SubElement(body, r + "GetCertificate")
    xml.write_ii(payload, r + "intygs-id", II("SE2321000016-15CQ", certificate_id))
    part = etree.SubElement(payload, r + "part")
    etree.SubElement(part, f"{{{ns.TYPES}}}code").text = "FKASSA"
    etree.SubElement(part, f"{{{ns.TYPES}}}codeSystem").text = ns.KV_PART
    requests = [
        (LIST_CERTIFICATES_FOR_CITIZEN, _list_request(person.personnummer)),
        (GET_CERTIFICATE, soap.serialise(root)),
    ]
    async with httpx.AsyncClient(verify=fk_portal.context(), timeout=10) as client:
        for interaction, request in requests:
            response = await client.post(
                f"{fk_portal.riv_url}{interaction.path}", content=request,
                headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": interaction.soap_action},
            )  # fmt: skip
            assert response.status_code == 200, response.text
            answer = soap.open_envelope(xml.parse(response.content)).payload
            xml.check(answer, interaction.xsd)
            assert certificate_id in response.text
            assert answer.findtext(f"{{{interaction.responder_namespace}}}result/{{{ns.CORE}}}resultCode") == "OK"
