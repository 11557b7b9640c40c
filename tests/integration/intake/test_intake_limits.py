"""Intake's delivery limit per platform, played as a flooding platform: over the rate it is answered 429 with
Retry-After (nothing is stored for a refused delivery), and another platform is served meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from deploy.simulators.platform.generator import CertificateFactory
from services.intake.app import create_app
from services.intake.settings import DEV_PLATFORM_SECRET, IntakeSettings
from tests.harness import count_rows, in_process
from tests.integration.intake.conftest import PLATFORM_AUTH, connect_simulated_units

pytestmark = pytest.mark.integration

OTHER_SECRET = "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938"


@pytest.fixture
async def limited(intake_settings: IntakeSettings) -> AsyncIterator[tuple[httpx.AsyncClient, IntakeSettings]]:
    tokens = {"national-platform": SecretStr(DEV_PLATFORM_SECRET), "other-platform": SecretStr(OTHER_SECRET)}
    settings = intake_settings.model_copy(update={"rate_limit": "3/minute", "platform_tokens": tokens})
    async with in_process(create_app(settings), "http://intake") as client:
        await connect_simulated_units(settings)
        yield client, settings


async def test_a_flooding_platform_is_refused_and_others_are_served(
    limited: tuple[httpx.AsyncClient, IntakeSettings], factory: CertificateFactory
) -> None:
    client, settings = limited
    bodies = [factory.certificate("LISJP") for _ in range(5)]
    statuses = [(await client.post("/v1/certificates", json=b, headers=PLATFORM_AUTH)).status_code for b in bodies]
    assert statuses == [201, 201, 201, 429, 429]
    refused = await client.post("/v1/certificates", json=bodies[4], headers=PLATFORM_AUTH)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "deliveries from this platform" in refused.json()["detail"]
    # Revocations count too.
    revoke = await client.post(
        f"/v1/certificates/{bodies[0]['id']}/revocation", json={"reason": "fel patient"}, headers=PLATFORM_AUTH
    )
    assert revoke.status_code == 429
    other = await client.post("/v1/certificates", json=bodies[4], headers={"Authorization": f"Bearer {OTHER_SECRET}"})
    assert other.status_code == 201, "another platform has its own allowance"
    assert await count_rows(settings.database_url, settings.db_schema, "certificates") == 4
