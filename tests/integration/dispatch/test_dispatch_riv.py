"""Dispatch to Försäkringskassan over RIV-TA: the fk-riv adapter against the real simulator process over mutual TLS
(Mina intyg's client certificate of the development CA), then dispatch itself with DISPATCH_FK_ADAPTER=fk-riv from
the released certificate on the topic to a RegisterCertificate v3 receipt, and its revocation as RevokeCertificate
v2. The same certificate twice is INFO and still one receipt."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local import devca
from schemas.certificate import Certificate, County
from schemas.events import DispatchSucceeded
from schemas.riv import client
from schemas.riv.mapping import to_certificate
from services.dispatch.adapters import Delivered, Failed, FkRivAdapter, Parcel, Rejected
from services.dispatch.app import create_app
from services.dispatch.domain import Recipient
from services.dispatch.settings import DispatchSettings
from services.kit.settings import ServiceSettings
from tests.harness import drop_schema, eventually, in_process
from tests.harness.infra import free_port
from tests.harness.riv import lisjp
from tests.integration.dispatch.conftest import Feed, FkSim, ledger, make_settings

pytestmark = pytest.mark.integration


@dataclass
class RivFk:
    sim: FkSim
    riv_url: str
    tls: Path


@pytest.fixture(scope="module")
async def riv_fk(base_settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RivFk]:
    directory = tmp_path_factory.mktemp("fk-riv")
    tls = devca.ensure(directory / "tls")
    schema = f"t_fkriv_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {
        "FKSIM_RIV_PORT": str(port), "FKSIM_RIV_TLS_CERT_FILE": str(tls / "fk.pem"),
        "FKSIM_RIV_TLS_KEY_FILE": str(tls / "fk-key.pem"), "FKSIM_RIV_CLIENT_CA_FILE": str(tls / "ca.pem"),
    }  # fmt: skip
    sim = FkSim(base_settings.database_url, schema, directory / "fk-sim.log", env)
    await sim.start()
    try:
        yield RivFk(sim, f"https://127.0.0.1:{port}", tls)
    finally:
        await sim.client.aclose()
        sim.stop()
        await drop_schema(base_settings.database_url, schema)


@pytest.fixture
async def fk(riv_fk: RivFk) -> AsyncIterator[FkSim]:
    await riv_fk.sim.faults()
    yield riv_fk.sim
    await riv_fk.sim.faults()


def adapter(riv_fk: RivFk, *, logical_address: str = "FKASSA", cert: str = "minaintyg") -> FkRivAdapter:
    recipient = Recipient("FKASSA", "Försäkringskassan", True, frozenset({"LISJP"}), riv_fk.riv_url, "fk-riv", True, 4)
    tls = riv_fk.tls
    context = client.client_context(tls / "ca.pem", tls / f"{cert}.pem", tls / f"{cert}-key.pem")
    return FkRivAdapter(recipient, logical_address=logical_address, timeout=5, max_connections=4, ssl_context=context)


def _valid(personnummer: str = "191212121212") -> Certificate:
    """A LISJP that keeps the published rules, as intake maps it from the platform. (The platform simulator's
    generated certificates do not always: a mixed full/partial sick leave breaks R26 or q32.1-33.)"""
    return to_certificate(lisjp(personnummer=personnummer), County.STOCKHOLM)


def _parcel(cert: Certificate | None = None) -> Parcel:
    cert = cert or _valid()
    return Parcel(cert.id, cert.type, cert.model_dump_json(), uuid.uuid4())


async def test_the_riv_adapter_registers_once_revokes_and_classifies_refusals(riv_fk: RivFk, fk: FkSim) -> None:
    parcel = _parcel()
    fk_riv = adapter(riv_fk)
    try:
        assert isinstance(await fk_riv.send(parcel), Delivered)
        # The same certificate again (a retry, a resend after reconciliation): INFO, delivered, no second receipt.
        assert isinstance(await fk_riv.send(parcel), Delivered)
        assert isinstance(await fk_riv.send(Parcel(parcel.certificate_id, "LISJP", parcel.document, uuid.uuid4())),
                          Delivered)  # fmt: skip
        assert len(await fk.receipts(parcel.certificate_id)) == 1
        assert isinstance(await fk_riv.revoke(parcel.certificate_id, uuid.uuid4(), parcel.document), Delivered)
        assert isinstance(await fk_riv.revoke(parcel.certificate_id, uuid.uuid4(), parcel.document), Delivered)
        revocation = await fk.revocation_of(parcel.certificate_id)
        assert revocation is not None
        assert revocation["sender"] == "minaintyg"
        never_sent = _parcel()
        unknown = await fk_riv.revoke(never_sent.certificate_id, uuid.uuid4(), never_sent.document)
        assert isinstance(unknown, Rejected)
        assert "APPLICATION_ERROR" in unknown.detail
        await fk.faults(error_rate=1.0)
        failed = await fk_riv.send(never_sent)
        assert isinstance(failed, Failed)
        assert not failed.maybe_delivered
        assert "TECHNICAL_ERROR" in failed.detail
        await fk.faults(down_until="2999-01-01T00:00:00Z")
        down = await fk_riv.send(never_sent)
        assert isinstance(down, Failed)
        assert "HTTP 503" in down.detail
        await fk.faults()
        assert await fk.receipts(never_sent.certificate_id) == []
    finally:
        await fk_riv.close()
    elsewhere = adapter(riv_fk, logical_address="2021005521")
    try:
        wrong = await elsewhere.send(never_sent)
        assert isinstance(wrong, Rejected)
        # (the address itself, an organisation number, is personnummer-shaped: masked in the ledger)
        assert "tjänas inte här (Försäkringskassan: FKASSA)" in wrong.detail
    finally:
        await elsewhere.close()
    assert await fk.receipts(never_sent.certificate_id) == []


async def test_a_client_certificate_that_is_not_mina_intygs_is_refused(riv_fk: RivFk) -> None:
    parcel = _parcel()
    platform = adapter(riv_fk, cert="platform")  # of the same CA, but not a sender Försäkringskassan knows
    try:
        refused = await platform.send(parcel)
    finally:
        await platform.close()
    assert isinstance(refused, Failed)  # 403: a credential an operator fixes, as the JSON API's 401/403
    assert "HTTP 403" in refused.detail
    assert await riv_fk.sim.receipts(parcel.certificate_id) == []


@pytest.fixture
def dispatch_settings(base_settings: ServiceSettings, schema: str, unique: str, riv_fk: RivFk) -> DispatchSettings:
    tls = riv_fk.tls
    return make_settings(
        schema, unique, riv_fk.sim.url, fk_adapter="fk-riv", fk_riv_endpoint=riv_fk.riv_url,
        riv_ca_file=str(tls / "ca.pem"), riv_client_cert_file=str(tls / "minaintyg.pem"),
        riv_client_key_file=str(tls / "minaintyg-key.pem"),
    )  # fmt: skip


async def test_dispatch_sends_a_released_certificate_over_riv_and_forwards_its_revocation(
    dispatch_settings: DispatchSettings, feed: Feed, fk: FkSim
) -> None:
    async with in_process(create_app(dispatch_settings), "http://dispatch"):
        person = feed.persons[0]
        cert, ref = _valid(person.personnummer), feed.ref(person)
        await feed.release(cert, ref)
        await feed.request(cert.id, ref)
        [outcome] = await feed.outcome_of(cert.id)
        assert isinstance(outcome, DispatchSucceeded)
        [receipt] = await fk.receipts(cert.id)
        assert receipt["sender"] == "minaintyg"

        await feed.revoke(cert, ref)

        async def revoked() -> bool:
            return await fk.revocation_of(cert.id) is not None

        await eventually(revoked, timeout=30, what="the revocation at Försäkringskassan")
        rows = await ledger(dispatch_settings, cert.id)
        assert [(r["kind"], r["state"]) for r in rows] == [("send", "delivered"), ("revoke", "delivered")]
        assert all(r["revoked_document"] is None for r in rows), "the kept copy goes when the revocation is delivered"
    assert len(await fk.receipts(cert.id)) == 1
