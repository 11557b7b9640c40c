"""The one place that wires dispatch: its pool and relay, the consumer of released certificates and send requests,
and the senders."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from schemas.topics import CONSENT_RELEASED, DISPATCH_OUTCOMES, PORTAL_DISPATCH_REQUESTS
from services.dispatch import repo
from services.dispatch.handlers import Clock, Dispatch, on_batch, on_event
from services.dispatch.sender import Sender
from services.dispatch.settings import DispatchSettings
from services.kit.consumer import IdempotentConsumer
from services.kit.service import Host

CONSUMED_TOPICS = [CONSENT_RELEASED, PORTAL_DISPATCH_REQUESTS]


@dataclass(frozen=True)
class DispatchService:
    """Dispatch's state: the handlers' context and the senders (their circuits are part of readiness)."""

    dispatch: Dispatch
    sender: Sender


async def bootstrap(host: Host, *, settings: DispatchSettings, clock: Clock) -> DispatchService:
    """Wire dispatch (the schema is migrated by then); the seeded Försäkringskassan entry gets the configured
    endpoint and adapter (DISPATCH_FK_ADAPTER)."""
    pool = await host.pool(max_size=20)
    await repo.set_endpoint(pool, "FKASSA", *settings.fk_entry())
    host.topics([*CONSUMED_TOPICS, DISPATCH_OUTCOMES])
    relay = host.relay(pool, enabled=settings.relay_enabled)
    dispatch = Dispatch(settings=settings, pool=pool, clock=clock)
    sender = Sender(dispatch, on_commit=relay.notify)

    def committed() -> None:
        relay.notify()
        sender.wake()

    if settings.sender_enabled:
        host.task("sender", sender.run)
    host.consumer(
        IdempotentConsumer(
            settings,
            pool,
            name="dispatch",
            group_id=settings.consumer_group,
            topics=CONSUMED_TOPICS,
            handler=functools.partial(on_event, dispatch),
            batch_handler=functools.partial(on_batch, dispatch),
            on_commit=committed,
        ),
        task="consumer",
        enabled=settings.consumer_enabled,
        check="consumer",
    )

    async def recipients() -> dict[str, Any]:
        circuits = {rid: w.breaker.state.value for rid, (w, _) in sender.workers.items()}
        return {"ok": True, "required": False, "circuits": circuits}

    host.check("recipients", recipients)
    return DispatchService(dispatch=dispatch, sender=sender)
