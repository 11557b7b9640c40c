"""The local brokers' security: TLS on every listener, SCRAM-SHA-512 logins, and ACLs from schemas/kafka_access.py.

Listeners: the clients' `SASL_SSL` (TLS, then a SCRAM login) and the controllers' `SSL` with client certificates
(the brokers prove who they are with the development CA's `kafka` certificate; SCRAM cannot authenticate controller
traffic, its credentials live in the metadata the controllers serve). KRaft's `StandardAuthorizer` decides every
request; the super users are the brokers and `admin`; nothing is allowed without an ACL.

Files (created once, mode 0600): `.cache/kafka/security/passwords.json` — a generated password per principal
(`broker`, `admin` and one per service) — and `broker-keystore.pem` (the brokers' key and certificate chain, rebuilt
from `.cache/tls` at every start). The CA is the development CA's `.cache/tls/ca.pem`.

`broker` and `admin` get their SCRAM credentials when a node's storage is formatted; the services' principals and
their ACLs are provisioned (idempotently, stale grants removed) with the admin login after the brokers answer.
`minaintyg-infra env [principal]` prints the environment a client needs (`eval "$(minaintyg-infra env admin)"`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.local import devca
from schemas.kafka_access import ADMIN_PRINCIPAL, BROKER_PRINCIPAL, PRINCIPALS, Grant, all_grants
from schemas.kafka_access import ResourceType as ResourceKind

MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
SUPER_USERS = (BROKER_PRINCIPAL, ADMIN_PRINCIPAL)
# Grants on names with a test's topic prefix (tests/harness/infra.py: `t<10 hex>.`) belong to a running test.
_TEST_PREFIX = re.compile(r"^(t|sys)[0-9a-f]{10}\.")


@dataclass(frozen=True)
class LocalSecurity:
    """The security material of the local brokers: `directory` for passwords and the keystore, `tls` the dev CA."""

    directory: Path
    tls: Path

    @property
    def passwords_file(self) -> Path:
        return self.directory / "passwords.json"

    @property
    def keystore(self) -> Path:
        return self.directory / "broker-keystore.pem"

    @property
    def ca_file(self) -> Path:
        return self.tls / "ca.pem"

    def ensure(self) -> None:
        """Create what is missing: the dev CA and the brokers' certificate, a password per principal, the keystore."""
        devca.ensure(self.tls)
        self.directory.mkdir(parents=True, exist_ok=True)
        passwords = self._read_passwords()
        wanted = (*SUPER_USERS, *PRINCIPALS)
        if any(principal not in passwords for principal in wanted):
            for principal in wanted:
                passwords.setdefault(principal, secrets.token_urlsafe(32))
            _write_private(self.passwords_file, json.dumps(passwords, indent=2, sort_keys=True) + "\n")
        key = (self.tls / "kafka-key.pem").read_text()
        _write_private(self.keystore, key + (self.tls / "kafka.pem").read_text())

    def _read_passwords(self) -> dict[str, str]:
        if not self.passwords_file.exists():
            return {}
        passwords: dict[str, str] = json.loads(self.passwords_file.read_text())
        return passwords

    def password(self, principal: str) -> str:
        """The principal's password (after `ensure`)."""
        passwords = self._read_passwords()
        if principal not in passwords:
            raise KeyError(f"no password for Kafka principal {principal!r} in {self.passwords_file}")
        return passwords[principal]

    def broker_properties(self, client_port: int, controller_port: int) -> list[str]:
        """The listener, TLS, SASL and authorizer lines of a node's server.properties."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{BROKER_PRINCIPAL}" password="{self.password(BROKER_PRINCIPAL)}";'
        )
        return [
            f"listeners=SASL_SSL://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{client_port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file}",
            "ssl.endpoint.identification.algorithm=https",
            "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
            "listener.name.controller.ssl.client.auth=required",
            # The brokers' certificate (CN kafka.minaintyg.local) is the principal `broker`; other names stay whole.
            r"ssl.principal.mapping.rules=RULE:^CN=kafka\.minaintyg\.local,.*$/broker/,DEFAULT",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            "super.users=" + ";".join(f"User:{user}" for user in SUPER_USERS),
        ]

    def format_arguments(self) -> list[str]:
        """StorageTool's arguments that create the super users' SCRAM credentials with the metadata."""
        return [
            arg
            for user in SUPER_USERS
            for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={self.password(user)}]")
        ]

    def client_environment(self, principal: str = ADMIN_PRINCIPAL) -> dict[str, str]:
        """The settings (environment variables) a client logging in as `principal` needs."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD": self.password(principal),
            "KAFKA_SSL_CA_FILE": str(self.ca_file.resolve()),
        }

    def aiokafka_options(self, principal: str = ADMIN_PRINCIPAL) -> dict[str, Any]:
        """aiokafka's security arguments for `principal`."""
        from aiokafka.helpers import create_ssl_context

        return {
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=str(self.ca_file)),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.password(principal),
        }

    def librdkafka_config(self, bootstrap: str, principal: str = ADMIN_PRINCIPAL) -> dict[str, Any]:
        """A confluent-kafka (librdkafka) client's configuration for `principal`."""
        return {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": MECHANISM,
            "sasl.username": principal,
            "sasl.password": self.password(principal),
            "ssl.ca.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
        }


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    path.chmod(0o600)


def _binding(grant: Grant, *, as_filter: bool = False) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return (AclBindingFilter if as_filter else AclBinding)(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
        grant.name,
        ResourcePatternType.LITERAL,
        f"User:{grant.principal}",
        "*",
        AclOperation[grant.operation.upper()],
        AclPermissionType.ALLOW,
    )


def _grant_of(binding: Any) -> Grant | None:
    from confluent_kafka.admin import AclPermissionType, ResourcePatternType, ResourceType

    if binding.permission_type != AclPermissionType.ALLOW or binding.resource_pattern_type != (
        ResourcePatternType.LITERAL
    ):
        return None
    if binding.restype not in (ResourceType.TOPIC, ResourceType.GROUP) or binding.host != "*":
        return None
    resource: ResourceKind = "topic" if binding.restype == ResourceType.TOPIC else "group"
    operation = binding.operation.name.capitalize()
    if operation not in ("Read", "Write", "Create", "Describe"):
        return None
    return Grant(binding.principal.removeprefix("User:"), resource, binding.name, operation)


def _admin(security: LocalSecurity, bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(security.librdkafka_config(bootstrap))


def provision(security: LocalSecurity, bootstrap: str, *, timeout: float = 30.0) -> tuple[int, int]:
    """Give every service principal its SCRAM credential and exactly its ACLs (removing grants of theirs that the
    table no longer has, except a running test's). Returns (grants created or kept, grants removed)."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = _admin(security, bootstrap)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [
        UserScramCredentialUpsertion(principal, info, security.password(principal).encode()) for principal in PRINCIPALS
    ]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout).values():
        future.result()
    wanted = set(all_grants())
    stale = []
    for principal in PRINCIPALS:
        query = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{principal}", None,  # type: ignore[arg-type]
            AclOperation.ANY, AclPermissionType.ANY,
        )  # fmt: skip
        for binding in admin.describe_acls(query, request_timeout=timeout).result():
            grant = _grant_of(binding)
            if grant is not None and (grant in wanted or _TEST_PREFIX.match(grant.name)):
                continue
            stale.append(binding)
    if stale:
        filters = [
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
            for b in stale
        ]
        for future in admin.delete_acls(filters, request_timeout=timeout).values():
            future.result()
    create_grants(security, bootstrap, sorted(wanted), timeout=timeout)
    return len(wanted), len(stale)


def create_grants(security: LocalSecurity, bootstrap: str, grants: list[Grant], *, timeout: float = 30.0) -> None:
    """Create ACLs (an existing one is left as it is)."""
    admin = _admin(security, bootstrap)
    for future in admin.create_acls([_binding(g) for g in grants], request_timeout=timeout).values():
        future.result()


def delete_grants(security: LocalSecurity, bootstrap: str, grants: list[Grant], *, timeout: float = 30.0) -> None:
    """Delete exactly these ACLs."""
    admin = _admin(security, bootstrap)
    for future in admin.delete_acls([_binding(g, as_filter=True) for g in grants], request_timeout=timeout).values():
        future.result()
