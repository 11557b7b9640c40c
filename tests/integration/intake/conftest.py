"""Fixtures of intake's integration tests: intake in-process on the test's schema and topics, with the platform
simulator's care units connected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.simulators.platform.generator import CARE_UNITS, SimCareUnit
from schemas.certificate import County
from services.intake import repo as intake_repo
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kit.settings import ServiceSettings
from tests.harness import connect, in_process, topic_prefix

PLATFORM_AUTH = {"Authorization": "Bearer dev-platform-secret"}


@pytest.fixture
def intake_settings(base_settings: ServiceSettings, schema: str, unique: str) -> IntakeSettings:
    return IntakeSettings(db_schema=schema, topic_prefix=topic_prefix(unique), environment="test", log_json=False)


@pytest.fixture
async def intake_client(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Intake running in-process (lifespan and relay included), with the simulator's units connected."""
    async with in_process(create_app(intake_settings), "http://intake") as client:
        await connect_simulated_units(intake_settings)
        yield client


async def connect_simulated_units(settings: IntakeSettings) -> None:
    async with connect(settings.database_url, settings.db_schema) as conn:
        await intake_repo.connect_care_units(conn, [(u.hsa_id, u.name, u.county.value) for u in CARE_UNITS])


UNCONNECTED_UNIT = SimCareUnit(
    "SE2321000016-9ZZZ",
    "Vårdcentral Ej Ansluten",
    "Testgatan 1",
    "111 11",
    "Stockholm",
    "08-000 000 00",
    County.STOCKHOLM,
    "SE2321000016-0001",
    "Region Stockholm",
)
