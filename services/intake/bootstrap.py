"""The one place that wires intake: its pool, its outbox relay and the topic it publishes to."""

from __future__ import annotations

from schemas.topics import INTAKE_CERTIFICATES
from services.intake.handlers import Clock, Intake
from services.intake.settings import IntakeSettings
from services.kit.ratelimit import RateLimit
from services.kit.service import Host


async def bootstrap(host: Host, *, settings: IntakeSettings, clock: Clock) -> Intake:
    """Intake's state: certificates are accepted while Kafka is away (the outbox holds them)."""
    pool = await host.pool(max_size=20)
    host.topics([INTAKE_CERTIFICATES])
    relay = host.relay(pool, enabled=settings.relay_enabled)
    deliveries = RateLimit(settings.rate_limit, "deliveries from this platform")
    return Intake(settings=settings, pool=pool, clock=clock, on_commit=relay.notify, deliveries=deliveries)
