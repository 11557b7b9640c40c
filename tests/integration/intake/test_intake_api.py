"""Intake's HTTP contract against the real broker and database."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from deploy.simulators.platform.generator import CertificateFactory
from schemas.envelope import decode
from schemas.events import CertificateIssued, CertificateRevoked
from schemas.topics import INTAKE_CERTIFICATES
from services.intake.settings import IntakeSettings
from services.kit.citizen import citizen_ref
from tests.harness import count_rows, eventually, outbox_empty, read_topic
from tests.integration.intake.conftest import PLATFORM_AUTH, UNCONNECTED_UNIT

pytestmark = pytest.mark.integration


async def published(settings: IntakeSettings) -> list[Any]:
    await eventually(lambda: outbox_empty(settings.database_url, settings.db_schema), what="the outbox to drain")
    return await read_topic(settings.kafka_bootstrap_servers, settings.topic(INTAKE_CERTIFICATES.name))


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/v1/certificates", json=body, headers={**PLATFORM_AUTH, **headers})


async def test_accepted_certificate_is_published_once_keyed_by_citizen_ref(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    response = await post(intake_client, cert, **{"X-Correlation-ID": "corr-1"})
    assert response.status_code == 201, response.text
    assert response.json() == {"status": "received", "certificate_id": cert["id"]}

    records = await published(intake_settings)
    assert len(records) == 1
    record = records[0]
    ref = citizen_ref(cert["patient"]["personnummer"], intake_settings.citizen_ref_key.get_secret_value())
    assert record.key == ref.encode()
    pnr = cert["patient"]["personnummer"]
    for name, value in record.headers:
        assert pnr not in value.decode(), name
        assert pnr[2:] not in value.decode(), name
    headers = dict(record.headers)
    # CloudEvents' Kafka binding, structured mode: the content type says so, and no ce_* header (binary mode's).
    assert headers["content-type"] == b"application/cloudevents+json"
    assert not [name for name in headers if name.startswith("ce_")]
    assert headers["correlation_id"] == b"corr-1"
    envelope = decode(record.value)
    assert isinstance(envelope.data, CertificateIssued)
    assert envelope.data.certificate.id == cert["id"]
    assert envelope.data.citizen_ref == ref
    assert envelope.subject == cert["id"]
    assert envelope.type == "certificate.issued"


async def test_ag7804_and_test_patient_flag(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    person = next(p for p in factory.persons if not p.test_patient)
    test_person = type(person)(**{**person.__dict__, "test_patient": True})
    ag = factory.certificate("AG7804", person=person)
    flagged = factory.certificate("LISJP", person=test_person)
    assert (await post(intake_client, ag)).status_code == 201
    assert (await post(intake_client, flagged)).status_code == 201
    payloads = [decode(r.value).data for r in await published(intake_settings)]
    events = {e.certificate.id: e for e in payloads if isinstance(e, CertificateIssued)}
    assert events[ag["id"]].certificate.type == "AG7804"
    assert events[ag["id"]].test_patient is False
    assert events[flagged["id"]].test_patient is True


async def test_duplicate_is_already_received_and_not_published_again(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    cert = factory.certificate()
    assert (await post(intake_client, cert)).status_code == 201
    again = await post(intake_client, cert)
    assert again.status_code == 200
    assert again.json()["status"] == "already_received"
    assert len(await published(intake_settings)) == 1
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 1


async def test_same_id_for_another_patient_is_a_conflict(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    first = factory.certificate(person=factory.persons[0])
    other = {**factory.certificate(person=factory.persons[1]), "id": first["id"]}
    assert (await post(intake_client, first)).status_code == 201
    conflict = await post(intake_client, other)
    assert conflict.status_code == 409
    assert first["id"] in conflict.json()["detail"]
    assert len(await published(intake_settings)) == 1


async def test_revoke_before_and_after_issue(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    cert = factory.certificate()
    url = f"/v1/certificates/{cert['id']}/revocation"
    early = await intake_client.post(url, headers=PLATFORM_AUTH)
    assert early.status_code == 404
    assert int(early.headers["Retry-After"]) > 0

    assert (await post(intake_client, cert)).status_code == 201
    revoked = await intake_client.post(url, json={"reason": "Fel patient"}, headers=PLATFORM_AUTH)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    second = await intake_client.post(url, headers=PLATFORM_AUTH)
    assert second.status_code == 200
    assert second.json()["status"] == "already_revoked"

    events = [decode(r.value) for r in await published(intake_settings)]
    assert [e.type for e in events] == ["certificate.issued", "certificate.revoked"]
    revocation = events[1].data
    assert isinstance(revocation, CertificateRevoked)
    assert revocation.certificate_id == cert["id"]
    assert revocation.citizen_ref == events[0].data.citizen_ref  # type: ignore[attr-defined]


async def test_credentials_and_connection(intake_client: httpx.AsyncClient, factory: CertificateFactory) -> None:
    cert = factory.certificate()
    assert (await intake_client.post("/v1/certificates", json=cert)).status_code == 401
    wrong = await intake_client.post("/v1/certificates", json=cert, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    unauthenticated_revoke = await intake_client.post(f"/v1/certificates/{cert['id']}/revocation")
    assert unauthenticated_revoke.status_code == 401

    refused = await post(intake_client, factory.certificate(unit=UNCONNECTED_UNIT))
    assert refused.status_code == 403
    assert UNCONNECTED_UNIT.hsa_id in refused.json()["detail"]


async def test_invalid_certificate_lists_every_problem(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    cert["patient"]["personnummer"] = cert["patient"]["personnummer"][:-1] + "X"
    del cert["content"]["functional_impairment"]
    cert["content"]["diagnoses"] = [{"code": "F32"}]
    response = await post(intake_client, cert)
    assert response.status_code == 422
    paths = {p["path"] for p in response.json()["problems"]}
    assert {"patient.personnummer", "content.functional_impairment", "content.diagnoses.0.code"} <= paths
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 0


async def test_a_json_certificate_is_held_to_the_published_rules_of_its_type(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    """Both entry points check the same rules: a LISJP recommending another working time without a motivation
    (the rule q33.1-33.2, which our own rules do not have) is refused as JSON, the rule named."""
    cert = factory.certificate("LISJP")
    start = cert["content"]["sick_leave_periods"][0]["start"]
    cert["content"]["sick_leave_periods"] = [{"degree": 50, "start": start, "end": start}]
    cert["content"]["working_time_arrangement"] = {"recommended": True}
    response = await post(intake_client, cert)
    assert response.status_code == 422, response.text
    paths = {p["path"] for p in response.json()["problems"]}
    assert "rule q33.1-33.2" in paths, paths
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 0


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD_BODIES: list[tuple[str, bytes | None, dict[str, str]]] = [
    ("malformed JSON", b'{"id": "x", "type": ', {}),
    ("empty body", b"", {}),
    ("array instead of object", b"[]", {}),
    ("string instead of object", b'"intyg"', {}),
    ("deep nesting", _deep(50_000).encode(), {}),
    ("not JSON content type", b"id=1", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("invalid UTF-8", b'{"id": "\xff\xfe"}', {}),
]


@pytest.mark.parametrize(("case", "body", "headers"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_bodies_get_a_clear_4xx(
    intake_client: httpx.AsyncClient,
    intake_settings: IntakeSettings,
    case: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    response = await intake_client.post(
        "/v1/certificates", content=body, headers={"Content-Type": "application/json", **PLATFORM_AUTH, **headers}
    )
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert response.json()["detail"]
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 0
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "outbox") == 0


def _mutations(cert: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(case, body, a path that must be named)."""

    def changed(path: list[str | int], value: Any) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(cert))
        target: Any = copy
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return copy

    return [
        ("degree as text", changed(["content", "sick_leave_periods", 0, "degree"], "hundred"),
         "content.sick_leave_periods.0.degree"),
        ("date as text", changed(["signed_at"], "yesterday"), "signed_at"),
        ("unknown top-level field", changed(["bonus"], 1), "bonus"),
        ("unknown nested field", changed(["patient", "shoe_size"], 44), "patient.shoe_size"),
        ("unknown type", changed(["type"], "LUSE"), "type"),
        ("SQL injection in id", changed(["id"], "x'; DROP TABLE certificates;--"), "id"),
        ("NUL in a name", changed(["patient", "given_name"], "Anna\u0000"), "patient.given_name"),
        ("huge list", changed(["content", "diagnoses"], [{"code": "F32.9"}] * 500), "content.diagnoses"),
        ("number as personnummer", changed(["patient", "personnummer"], 191212121212), "patient.personnummer"),
    ]  # fmt: skip


async def test_wrong_types_unknown_fields_and_injection_are_named(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    for case, body, path in _mutations(factory.certificate("LISJP")):
        response = await post(intake_client, body)
        assert response.status_code == 422, (case, response.text)
        problems = response.json()["problems"]
        assert any(p["path"] == path for p in problems), (case, problems)
        assert "191212121212" not in response.text  # input values are never echoed
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 0


async def test_injection_strings_in_text_are_stored_verbatim(
    intake_client: httpx.AsyncClient, intake_settings: IntakeSettings, factory: CertificateFactory
) -> None:
    cert = factory.certificate("LISJP")
    hostile = "Robert'); DROP TABLE certificates;-- <script>alert(1)</script> {{7*7}} ${jndi:ldap://x}"
    cert["patient"]["family_name"] = hostile[:200]
    cert["content"]["activity_limitation"] = hostile
    assert (await post(intake_client, cert)).status_code == 201
    events = [decode(r.value) for r in await published(intake_settings)]
    issued = events[0].data
    assert isinstance(issued, CertificateIssued)
    assert issued.certificate.content.activity_limitation == hostile
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 1


async def test_body_too_large_is_413(intake_client: httpx.AsyncClient, intake_settings: IntakeSettings) -> None:
    big = orjson.dumps({"padding": "x" * (intake_settings.max_body_bytes + 1)})
    response = await intake_client.post(
        "/v1/certificates", content=big, headers={"Content-Type": "application/json", **PLATFORM_AUTH}
    )
    assert response.status_code == 413
    assert await count_rows(intake_settings.database_url, intake_settings.db_schema, "certificates") == 0


async def test_operational_endpoints(intake_client: httpx.AsyncClient, factory: CertificateFactory) -> None:
    assert (await intake_client.get("/healthz")).json() == {"status": "ok"}
    ready = await intake_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    await post(intake_client, factory.certificate())
    metrics = (await intake_client.get("/metrics")).text
    assert "http_request_duration_seconds_bucket" in metrics
    assert 'route="/v1/certificates"' in metrics
    assert "outbox_published_total" in metrics
    spec = (await intake_client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/certificates"]["post"]
    assert {"200", "201", "401", "403", "409", "413", "422"} <= set(operation["responses"])
    assert "requestBody" in operation
