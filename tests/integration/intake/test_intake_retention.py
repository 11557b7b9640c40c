"""Intake's retention (issue #16): received documents are kept for the stated retention, then only the receipt, and
a certificate whose documents are gone is still "already received" (or a conflict for another patient) and can be
revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from services.intake import repo
from services.intake.settings import IntakeSettings
from tests.harness import connect
from tests.integration.intake.conftest import PLATFORM_AUTH

pytestmark = pytest.mark.integration


async def test_documents_go_after_the_retention_and_the_receipt_still_answers(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    assert intake_settings.document_retention_days == 365  # as consent keeps held certificates
    old, new = factory.certificate(person=factory.persons[0]), factory.certificate(person=factory.persons[0])
    for cert in (old, new):
        assert (await intake_client.post("/v1/certificates", json=cert, headers=PLATFORM_AUTH)).status_code == 201
    async with connect(intake_settings.database_url, intake_settings.db_schema) as conn:
        await conn.execute(
            "UPDATE certificates SET received_at = $2 WHERE id = $1", old["id"], datetime.now(UTC) - timedelta(days=366)
        )
        assert await repo.purge_documents(conn, datetime.now(UTC) - timedelta(days=365)) == 1
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, original, normalised FROM certificates")}
    assert rows[old["id"]]["original"] is None
    assert rows[old["id"]]["normalised"] is None
    assert rows[new["id"]]["original"] is not None

    again = await intake_client.post("/v1/certificates", json=old, headers=PLATFORM_AUTH)
    assert (again.status_code, again.json()["status"]) == (200, "already_received")
    other = {**factory.certificate(person=factory.persons[1]), "id": old["id"]}
    assert (await intake_client.post("/v1/certificates", json=other, headers=PLATFORM_AUTH)).status_code == 409
    revoked = await intake_client.post(f"/v1/certificates/{old['id']}/revocation", headers=PLATFORM_AUTH)
    assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
