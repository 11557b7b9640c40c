"""Fixtures every integration test may use, for the real Kafka broker and PostgreSQL (`make infra-up` starts them).

Every test gets its own database schema and its own topic prefix, so no test sees another's rows or events. Each
service's own fixtures are in its folder's `conftest.py`; the helpers themselves are in `tests/harness`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deploy.simulators.platform.generator import CertificateFactory
from services.kit.settings import ServiceSettings
from tests.harness import delete_topics_of, drop_schema, new_unique, require_broker, schema_name


@pytest.fixture(scope="session")
def base_settings() -> ServiceSettings:
    settings = ServiceSettings()
    if (why := require_broker(settings.kafka_bootstrap_servers)) is not None:
        pytest.fail(why)
    return settings


@pytest.fixture
async def unique(base_settings: ServiceSettings) -> AsyncIterator[str]:
    """An id for this test's topic prefix, schema and groups; its topics are deleted after the test."""
    value = new_unique()
    yield value
    await delete_topics_of(base_settings.kafka_bootstrap_servers, value)


@pytest.fixture
async def schema(base_settings: ServiceSettings, unique: str) -> AsyncIterator[str]:
    """A fresh database schema, dropped after the test."""
    name = schema_name(unique)
    yield name
    await drop_schema(base_settings.database_url, name)


@pytest.fixture
def factory(unique: str) -> CertificateFactory:
    return CertificateFactory(seed=int(unique, 16) % 2**31)
