"""The Försäkringskassan simulator's RIV-TA endpoints as dispatch reaches them: a real `fk-sim` process serving
mutual TLS with certificates of the development CA, called with Mina intyg's client certificate. It takes exactly
RegisterCertificate v3 and RevokeCertificate v2 to its logical address, keeps one receipt per certificate (INFO for
the same one again), and refuses what the real receiver would: a broken rule, a broken schema, another address,
no client certificate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import devca
from schemas.riv import client
from schemas.riv.transport import Intyg, Result
from schemas.riv.wsdl import REGISTER_CERTIFICATE, REVOKE_CERTIFICATE
from services.kit.settings import ServiceSettings
from tests.harness import ServiceProcess, drop_schema
from tests.harness.infra import free_port
from tests.harness.riv import lisjp, replace, revocation

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-minaintyg-to-fk"}


@dataclass
class RivFk:
    url: str  # the plain listener (JSON API, /sim/)
    riv_url: str  # the mutual-TLS listener
    tls: Path
    api: httpx.AsyncClient
    riv: httpx.AsyncClient  # Mina intyg's client certificate

    async def register(self, intyg: Intyg, address: str = "FKASSA") -> Result:
        message = client.register_message(intyg, address)
        return await client.call(self.riv, self.riv_url, REGISTER_CERTIFICATE, message)

    async def post(self, path: str, body: bytes) -> httpx.Response:
        return await self.riv.post(self.riv_url + path, content=body, headers=client.headers(REGISTER_CERTIFICATE))

    async def receipts(self, certificate_id: str) -> list[dict[str, Any]]:
        response = await self.api.get(f"/v1/intyg/{certificate_id}/receipts")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found


@pytest.fixture(scope="module")
async def fk(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RivFk]:
    directory = tmp_path_factory.mktemp("fk-riv")
    tls = devca.ensure(directory / "tls")
    base = ServiceSettings()
    schema = f"t_fkriv_{uuid.uuid4().hex[:10]}"
    riv_port = free_port()
    env = {
        "FKSIM_DB_SCHEMA": schema, "DATABASE_URL": base.database_url, "LOG_LEVEL": "INFO",
        "FKSIM_RIV_PORT": str(riv_port), "FKSIM_RIV_TLS_CERT_FILE": str(tls / "fk.pem"),
        "FKSIM_RIV_TLS_KEY_FILE": str(tls / "fk-key.pem"), "FKSIM_RIV_CLIENT_CA_FILE": str(tls / "ca.pem"),
    }  # fmt: skip
    process = ServiceProcess("fk-sim", env, port_env="FKSIM_PORT", log=directory / "fk-sim.log")
    await process.start()
    context = client.client_context(tls / "ca.pem", tls / "minaintyg.pem", tls / "minaintyg-key.pem")
    try:
        async with (
            httpx.AsyncClient(base_url=process.url, headers=AUTH, timeout=30) as api,
            httpx.AsyncClient(verify=context, timeout=30) as riv,
        ):
            yield RivFk(process.url, f"https://127.0.0.1:{riv_port}", tls, api, riv)
            log = process.read_log()
            assert "191212121212" not in log, "a personnummer in the simulator's log"
    finally:
        process.stop()
        await drop_schema(base.database_url, schema)


async def test_a_certificate_registered_twice_has_one_receipt_and_the_second_answer_is_info(fk: RivFk) -> None:
    intyg = lisjp()
    certificate_id = intyg.intygs_id.extension
    assert await fk.register(intyg) == Result("OK")
    again = await fk.register(intyg)
    assert (again.result_code, again.error_id) == ("INFO", None), again
    receipts = await fk.receipts(certificate_id)
    assert len(receipts) == 1
    assert (receipts[0]["certificate_type"], receipts[0]["sender"]) == ("LISJP", "minaintyg")
    page = (await fk.api.get("/v1/received", params={"include_body": "true", "limit": 1000})).json()
    (body,) = [i["body"] for i in page["items"] if i["certificate_id"] == certificate_id]
    assert body["riv"]["interaction"] == "RegisterCertificate/3"
    assert certificate_id in body["riv"]["xml"]
    assert "RegisterCertificate" in body["riv"]["xml"]
    person = replace(intyg.patient.person_id, extension="197705232382")
    other = await fk.register(replace(intyg, patient=replace(intyg.patient, person_id=person)))
    assert (other.result_code, other.error_id) == ("ERROR", "VALIDATION_ERROR"), other
    assert len(await fk.receipts(certificate_id)) == 1


async def test_a_revocation_is_ok_once_then_info_and_of_an_unknown_certificate_an_application_error(
    fk: RivFk,
) -> None:
    intyg = lisjp()
    message = client.revoke_message(revocation(intyg), "FKASSA")
    unknown = await client.call(fk.riv, fk.riv_url, REVOKE_CERTIFICATE, message)
    assert (unknown.result_code, unknown.error_id) == ("ERROR", "APPLICATION_ERROR"), unknown
    assert await fk.register(intyg) == Result("OK")
    assert await client.call(fk.riv, fk.riv_url, REVOKE_CERTIFICATE, message) == Result("OK")
    again = await client.call(fk.riv, fk.riv_url, REVOKE_CERTIFICATE, message)
    assert again.result_code == "INFO", again
    stored = (await fk.api.get(f"/v1/intyg/{intyg.intygs_id.extension}/revocation")).json()
    assert (stored["certificate_id"], stored["sender"]) == (intyg.intygs_id.extension, "minaintyg")


async def test_a_rule_breaking_certificate_is_a_validation_error_and_not_stored(fk: RivFk) -> None:
    intyg = lisjp()
    broken = replace(intyg, svar=tuple(s for s in intyg.svar if s.id != "1"))
    result = await fk.register(broken)
    assert (result.result_code, result.error_id) == ("ERROR", "VALIDATION_ERROR"), result
    assert "Grund för medicinskt underlag" in (result.result_text or "")
    assert await fk.receipts(intyg.intygs_id.extension) == []


async def test_a_schema_breaking_message_a_wrong_address_and_garbage_are_soap_faults(fk: RivFk) -> None:
    intyg = lisjp()
    message = client.register_message(intyg, "FKASSA")
    extra = message.replace(b"</rc:RegisterCertificate>", b"<rc:extra>x</rc:extra></rc:RegisterCertificate>")
    assert extra != message
    for body, expected in (
        (extra, "följer inte kontraktet"),
        (client.register_message(intyg, "MINAINTYG"), "LogicalAddress MINAINTYG tjänas inte här"),
        (b"<not xml", "inte välformad XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', ""),
    ):
        response = await fk.post(REGISTER_CERTIFICATE.path, body)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("text/xml")
        assert "Fault" in response.text
        assert expected in response.text
    assert await fk.receipts(intyg.intygs_id.extension) == []


async def test_without_a_client_certificate_the_endpoints_refuse_and_wsdl_is_served(fk: RivFk) -> None:
    message = client.register_message(lisjp(), "FKASSA")
    plain = await fk.api.post(REGISTER_CERTIFICATE.path, content=message, headers=client.headers(REGISTER_CERTIFICATE))
    assert plain.status_code == 403
    assert "Fault" in plain.text
    wsdl = await fk.riv.get(fk.riv_url + REGISTER_CERTIFICATE.path, params={"wsdl": ""})
    assert wsdl.status_code == 200
    assert "RegisterCertificateResponderService" in wsdl.text


async def test_injected_faults_act_on_the_riv_endpoints(fk: RivFk) -> None:
    intyg = lisjp()
    try:
        assert (await fk.api.put("/sim/faults", json={"error_rate": 1.0})).status_code == 200
        result = await fk.register(intyg)
        assert (result.result_code, result.error_id) == ("ERROR", "TECHNICAL_ERROR"), result
        down = {"down_until": "2999-01-01T00:00:00Z"}
        assert (await fk.api.put("/sim/faults", json=down)).status_code == 200
        refused = await fk.post(REGISTER_CERTIFICATE.path, client.register_message(intyg, "FKASSA"))
        assert refused.status_code == 503
        assert "Fault" in refused.text
        assert "retry-after" in refused.headers
    finally:
        assert (await fk.api.put("/sim/faults", json={})).status_code == 200
    assert await fk.receipts(intyg.intygs_id.extension) == []
    assert await fk.register(intyg) == Result("OK")
    stats = (await fk.api.get("/sim/stats")).json()
    assert stats["faults_injected_by_kind"]["error"] >= 1
    assert stats["faults_injected_by_kind"]["downtime"] >= 1
