"""Who may do what on the broker (contract): one principal per service, each given exactly the topics it produces
to (and creates), the topics it consumes, the dead-letter topics of what it consumes, and its consumer groups.

The local broker's provisioning (deploy/local/kafka_security.py) and the Strimzi `KafkaUser`s of deploy/k8s
(tests/unit/deploy checks they say the same) are both made from this table; nothing else grants access. The
operator's tools (`minaintyg-admin`: lag, dead-letter replay) and the set-up run as the super user `admin`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.topics import (
    CONSENT_EVENTS,
    CONSENT_RELEASED,
    DISPATCH_OUTCOMES,
    INTAKE_CERTIFICATES,
    PORTAL_DISPATCH_REQUESTS,
    STATS_SICKLEAVE,
    TopicSpec,
    dead_letter,
)

Operation = Literal["Read", "Write", "Create", "Describe"]
ResourceType = Literal["topic", "group"]

# The super users of the local broker: the brokers themselves (inter-broker and controller traffic) and the
# administrator the set-up, the tests and the operator's tools connect as.
BROKER_PRINCIPAL = "broker"
ADMIN_PRINCIPAL = "admin"


@dataclass(frozen=True)
class Access:
    """One service's principal and what it touches."""

    principal: str
    produces: tuple[TopicSpec, ...]
    consumes: tuple[TopicSpec, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: `principal` may do `operation` on the resource (names are literal, never prefixes)."""

    principal: str
    resource: ResourceType
    name: str
    operation: Operation


SERVICES: tuple[Access, ...] = (
    Access("intake", produces=(INTAKE_CERTIFICATES,), consumes=(), groups=()),
    Access(
        "consent",
        produces=(CONSENT_EVENTS, CONSENT_RELEASED),
        consumes=(INTAKE_CERTIFICATES,),
        groups=("consent-gate",),
    ),
    Access(
        "portal",
        produces=(PORTAL_DISPATCH_REQUESTS,),
        consumes=(CONSENT_RELEASED, DISPATCH_OUTCOMES),
        groups=("portal-read-model",),
    ),
    Access(
        "dispatch",
        produces=(DISPATCH_OUTCOMES,),
        consumes=(CONSENT_RELEASED, PORTAL_DISPATCH_REQUESTS),
        groups=("dispatch",),
    ),
    Access("stats", produces=(STATS_SICKLEAVE,), consumes=(CONSENT_RELEASED,), groups=("stats-ingest",)),
)  # fmt: skip

PRINCIPALS: tuple[str, ...] = tuple(access.principal for access in SERVICES)


def grants(access: Access, prefix: str = "") -> list[Grant]:
    """The ACLs of one service, for topics and groups named with `prefix` (MINAINTYG_TOPIC_PREFIX)."""
    out: set[Grant] = set()

    def allow(resource: ResourceType, name: str, *operations: Operation) -> None:
        out.update(Grant(access.principal, resource, prefix + name, operation) for operation in operations)

    for spec in access.produces:
        allow("topic", spec.name, "Write", "Describe", "Create")
    for spec in access.consumes:
        allow("topic", spec.name, "Read", "Describe")
        allow("topic", dead_letter(spec).name, "Write", "Describe", "Create")
    for group in access.groups:
        allow("group", group, "Read", "Describe")
    return sorted(out)


def all_grants(prefix: str = "") -> list[Grant]:
    """Every service's ACLs."""
    return [grant for access in SERVICES for grant in grants(access, prefix)]


def service(principal: str) -> Access:
    """The access of one service by its principal."""
    for access in SERVICES:
        if access.principal == principal:
            return access
    raise KeyError(f"no Kafka principal {principal!r}; known: {', '.join(PRINCIPALS)}")
