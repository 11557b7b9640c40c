"""The Strimzi KafkaUsers of deploy/k8s say exactly what schemas/kafka_access.py says (the table the local broker is
provisioned from), and each service's Deployment logs in as its own user with its own Secret only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.kafka_access import PRINCIPALS, Grant, all_grants
from tests.unit.deploy.test_deploy_manifests import load_all

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in load_all((K8S / name).read_text()) if doc]


def test_the_kafka_users_have_exactly_the_tables_acls() -> None:
    users = [doc for doc in documents("kafka-users.yaml") if doc["kind"] == "KafkaUser"]
    assert sorted(user["metadata"]["name"] for user in users) == sorted(PRINCIPALS)
    granted = set()
    for user in users:
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["patternType"] == "literal"
            assert acl.get("host", "*") == "*"
            assert acl.get("type", "allow") == "allow"
            for operation in acl["operations"]:
                granted.add(
                    Grant(user["metadata"]["name"], acl["resource"]["type"], acl["resource"]["name"], operation)
                )
    assert granted == set(all_grants())


def test_the_broker_listener_is_tls_with_scram_and_every_request_authorised() -> None:
    kafka = next(doc for doc in documents("kafka.yaml") if doc["kind"] == "Kafka")["spec"]["kafka"]
    assert all(listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"
               for listener in kafka["listeners"])  # fmt: skip
    assert kafka["authorization"]["type"] == "simple"
    assert kafka["config"]["allow.everyone.if.no.acl.found"] is False
    config = next(doc for doc in documents("config.yaml") if doc["kind"] == "ConfigMap")["data"]
    port = kafka["listeners"][0]["port"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == f"minaintyg-kafka-kafka-bootstrap:{port}"
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"


def test_each_deployment_logs_in_as_its_own_user_with_its_own_secret() -> None:
    seen = set()
    for principal in PRINCIPALS:
        for doc in documents(f"{principal}.yaml"):
            if doc["kind"] != "Deployment":
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                env = {e["name"]: e for e in container.get("env", [])}
                assert env["KAFKA_SASL_USERNAME"]["value"] == principal
                assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": principal, "key": "password"}
                others = [e for e in container.get("env", []) if e.get("valueFrom", {}).get("secretKeyRef", {})
                          .get("name") in set(PRINCIPALS) - {principal}]  # fmt: skip
                assert not others, (principal, others)
                seen.add(principal)
    assert seen == set(PRINCIPALS)
