"""Topic names (contract) and how each topic is created."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    keyed_by: str
    compacted: bool = False


INTAKE_CERTIFICATES = TopicSpec("intake.certificates.v1", "citizen_ref")
CONSENT_EVENTS = TopicSpec("consent.events.v1", "citizen_ref", compacted=True)
CONSENT_RELEASED = TopicSpec("consent.released.v1", "citizen_ref")
PORTAL_DISPATCH_REQUESTS = TopicSpec("portal.dispatch-requests.v1", "certificate_id")
DISPATCH_OUTCOMES = TopicSpec("dispatch.outcomes.v1", "certificate_id")
STATS_SICKLEAVE = TopicSpec("stats.sickleave.v1", "report_key", compacted=True)

ALL_TOPICS = (
    INTAKE_CERTIFICATES,
    CONSENT_EVENTS,
    CONSENT_RELEASED,
    PORTAL_DISPATCH_REQUESTS,
    DISPATCH_OUTCOMES,
    STATS_SICKLEAVE,
)


def dead_letter(spec: TopicSpec) -> TopicSpec:
    """The dead-letter topic of `spec`: same key, never compacted."""
    return TopicSpec(f"{spec.name}.dlq", spec.keyed_by)
