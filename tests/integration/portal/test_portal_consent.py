"""Consent through the portal with the real consent service and its gate: nothing but the consent page without
consent; consent releases held certificates; withdrawal removes them; consent again brings them back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.certificate import CERTIFICATE_ADAPTER
from schemas.events import CertificateIssued
from schemas.topics import INTAKE_CERTIFICATES
from services.kit.kafka import ensure_topics
from tests.harness import eventually
from tests.integration.portal.conftest import Citizen, PortalHarness

pytestmark = pytest.mark.integration


async def issue(portal: PortalHarness, citizen: Citizen) -> str:
    certificate = CERTIFICATE_ADAPTER.validate_python(portal.factory.certificate("LISJP", person=citizen.person))
    await portal.publish(
        INTAKE_CERTIFICATES.name,
        citizen.ref,
        CertificateIssued(citizen_ref=citizen.ref, certificate=certificate, test_patient=False,
                          received_at=datetime.now(UTC)),
    )  # fmt: skip
    return certificate.id


async def test_consent_gives_withdraws_and_gives_again(portal: PortalHarness) -> None:
    await ensure_topics(portal.settings, [INTAKE_CERTIFICATES])
    anna = await portal.login(portal.citizen(12), consent=False)
    held = await issue(portal, anna)

    # Without consent only the consent page (and settings, help, logout) is reachable.
    for path in ("/intyg", "/intyg/arkiverade", f"/intyg/{held}", "/om-dina-uppgifter"):
        response = await portal.client.get(path, headers=anna.cookie)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/samtycke"
    assert (await portal.client.get("/api/v1/certificates", headers=anna.cookie)).status_code == 403
    page = await portal.client.get("/samtycke", headers=anna.cookie)
    assert "Jag ger mitt samtycke" in page.text
    assert "kan återkalla" in page.text

    given = await portal.client.post("/samtycke", headers=anna.posting(), data={"csrf_token": anna.csrf})
    assert given.status_code == 303
    assert given.headers["location"] == "/intyg"

    async def listed() -> bool:
        response = await portal.client.get("/intyg", headers=anna.cookie)
        return response.status_code == 200 and f"/intyg/{held}" in response.text

    await eventually(listed, timeout=60, what="held certificate released and listed")
    consent = (await portal.client.get("/api/v1/consent", headers=anna.cookie)).json()
    assert consent["state"] == "given"

    settings_page = await portal.client.get("/installningar", headers=anna.cookie)
    assert "Återkalla mitt samtycke" in settings_page.text
    assert "tas bort" in settings_page.text
    withdrawn = await portal.client.post("/installningar/aterkalla", headers=anna.posting(),
                                         data={"csrf_token": anna.csrf})  # fmt: skip
    assert withdrawn.status_code == 303
    assert await portal.count("certificates", anna) == 0
    assert (await portal.client.get("/intyg", headers=anna.cookie)).headers["location"] == "/samtycke"

    # The data_withdrawn event from consent arrives too; afterwards there is still nothing.
    async def gate_withdrawn() -> bool:
        rows = await portal.pool.fetchval("SELECT count(*) FROM certificates WHERE citizen_ref = $1", anna.ref)
        consent = (await portal.client.get("/api/v1/consent", headers=anna.cookie)).json()
        return bool(rows == 0 and consent["state"] == "withdrawn")

    await eventually(gate_withdrawn, what="withdrawn at consent")

    again = await portal.client.post("/samtycke", headers=anna.posting(), data={"csrf_token": anna.csrf})
    assert again.status_code == 303
    await eventually(listed, timeout=60, what="certificate back after consent again")
