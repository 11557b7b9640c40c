"""The local Kafka node's configuration (deploy/local/infra.py): what it must hold to start on a small heap."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.infra import KafkaNode
from deploy.local.kafka_security import LocalSecurity


@pytest.mark.parametrize(
    ("heap", "buffer"), [("256m", 16 * 2**20), ("384m", 24 * 2**20), ("1g", 64 * 2**20), ("4g", 128 * 2**20)]
)
def test_the_log_cleaners_buffer_fits_the_heap(tmp_path: Path, heap: str, buffer: int) -> None:
    # A chaos run's 256 MiB node died at start with OutOfMemoryError in the cleaner's 128 MiB default buffer.
    node = KafkaNode(tmp_path, heap=heap, security=None)
    properties = dict(
        line.split("=", 1) for line in node._config().read_text().splitlines() if line and not line.startswith("#")
    )
    assert int(properties["log.cleaner.dedupe.buffer.size"]) == buffer


def test_a_secured_node_has_no_plaintext_listener_and_authorizes_every_request(tmp_path: Path) -> None:
    security = LocalSecurity(tmp_path / "security", tmp_path / "tls")
    security.ensure()
    node = KafkaNode(tmp_path / "node", port=19392, controller_port=19393, security=security)
    (tmp_path / "node").mkdir()
    text = node._config().read_text()
    properties = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert "PLAINTEXT" not in properties["listeners"] + properties["advertised.listeners"]
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == "User:broker;User:admin"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert security.password("broker") in text  # the broker's own login, in its private config only
    assert (security.passwords_file.stat().st_mode & 0o777) == 0o600
    assert (security.keystore.stat().st_mode & 0o777) == 0o600
    environment = security.client_environment("stats")
    assert environment["KAFKA_SASL_USERNAME"] == "stats"
    assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
