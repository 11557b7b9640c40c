"""Bad input intake once answered 500 for: each is now a 4xx naming the problem (issue 17, part 6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from tests.integration.intake.conftest import PLATFORM_AUTH

pytestmark = pytest.mark.integration


async def delivered(client: httpx.AsyncClient, factory: CertificateFactory) -> str:
    cert = factory.certificate("LISJP")
    response = await client.post("/v1/certificates", json=cert, headers=PLATFORM_AUTH)
    assert response.status_code == 201, response.text
    certificate_id: str = cert["id"]
    return certificate_id


def problems(response: httpx.Response) -> dict[str, str]:
    return {p["path"]: p["message"] for p in response.json()["problems"]}


@pytest.mark.parametrize(
    ("body", "path", "says"),
    [
        ({"reason": "fel\x00patient"}, "reason", "NUL"),
        ({"revoked_at": "9999-12-31T23:59:59+00:00"}, "revoked_at", "future"),
        ({"revoked_at": "9999-12-31T23:00:00-05:00"}, "revoked_at", "outside the years"),
        ({"revoked_at": "3000-01-01T00:00:00+00:00"}, "revoked_at", "future"),
        ({"revoked_at": "0001-01-01T00:00:00+00:00"}, "revoked_at", "before 2000"),
        ({"revoked_at": "0001-01-01T00:00:00+01:00"}, "revoked_at", "outside the years"),
    ],
)
async def test_an_implausible_revocation_is_refused_and_names_the_field(
    intake_client: httpx.AsyncClient, factory: CertificateFactory, body: dict[str, str], path: str, says: str
) -> None:
    certificate_id = await delivered(intake_client, factory)
    response = await intake_client.post(f"/v1/certificates/{certificate_id}/revocation", json=body,
                                        headers=PLATFORM_AUTH)  # fmt: skip
    assert response.status_code == 422, response.text
    assert says in problems(response)[path]
    # and the certificate is still not revoked: a plausible revocation goes through
    again = await intake_client.post(f"/v1/certificates/{certificate_id}/revocation", json={"reason": "fel patient"},
                                     headers=PLATFORM_AUTH)  # fmt: skip
    assert again.json()["status"] == "revoked", again.text


SIGNED_TOO_EARLY = ["0001-01-01T00:00:00+00:00", "0001-01-01T00:30:00+01:00", "1970-01-01T12:00:00Z"]


@pytest.mark.parametrize("signed_at", SIGNED_TOO_EARLY)
async def test_a_signing_time_before_2000_is_refused(
    intake_client: httpx.AsyncClient, factory: CertificateFactory, signed_at: str
) -> None:
    cert = factory.certificate("LISJP")
    cert["signed_at"] = signed_at
    response = await intake_client.post("/v1/certificates", json=cert, headers=PLATFORM_AUTH)
    assert response.status_code == 422, response.text
    assert "signed_at" in problems(response)


def chunks(data: bytes) -> Iterator[bytes]:
    yield data[:10]
    yield data[10:]


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    for part in chunks(data):
        yield part


@pytest.mark.parametrize("content_type", ["application/jsonx", "text/plain", "application/json-seq"])
async def test_a_body_that_is_not_json_is_refused_with_415(
    intake_client: httpx.AsyncClient, factory: CertificateFactory, content_type: str
) -> None:
    body = httpx.Request("POST", "http://x", json=factory.certificate("LISJP")).content
    headers = {**PLATFORM_AUTH, "Content-Type": content_type}
    declared = await intake_client.post("/v1/certificates", content=body, headers=headers)
    assert declared.status_code == 415, declared.text
    streamed = await intake_client.post("/v1/certificates", content=chunked(body), headers=headers)
    assert streamed.status_code == 415, streamed.text


async def test_a_chunked_json_body_is_taken(intake_client: httpx.AsyncClient, factory: CertificateFactory) -> None:
    body = httpx.Request("POST", "http://x", json=factory.certificate("LISJP")).content
    headers = {**PLATFORM_AUTH, "Content-Type": "application/json; charset=utf-8"}
    response = await intake_client.post("/v1/certificates", content=chunked(body), headers=headers)
    assert response.status_code == 201, response.text
