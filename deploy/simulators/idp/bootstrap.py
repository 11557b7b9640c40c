"""The one place that wires the identity-provider simulator: its state (in memory) and the key-rotation loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import structlog
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from deploy.simulators.idp.provider import Provider
from deploy.simulators.idp.settings import IdpsimSettings
from services.kit.service import Host

log = structlog.get_logger(__name__)

ROTATIONS = Counter("idpsim_key_rotations_total", "Signing key rotations")


@dataclass(frozen=True)
class IdpSim:
    """What the simulator's routes need."""

    settings: IdpsimSettings
    provider: Provider
    templates: Jinja2Templates
    secure_cookie: bool


async def rotate(sim: IdpSim) -> str:
    """Rotate the signing key; the new key's id."""
    key = await run_in_threadpool(sim.provider.keys.rotate)
    ROTATIONS.inc()
    log.info("idpsim.keys.rotated", kid=key.kid)
    return str(key.kid)


async def bootstrap(host: Host, *, sim: IdpSim) -> IdpSim:
    """The simulator's state, and a rotation every `rotate_seconds` if set."""
    # Authlib's debug lines print token responses (an ID token carries the personnummer): never below INFO.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger().level))
    settings = sim.settings

    async def rotate_periodically(every: float) -> None:
        while True:
            await asyncio.sleep(every)  # a timer of the service, not a wait for a condition
            try:
                await rotate(sim)
            except Exception as exc:  # the next period tries again
                log.warning("idpsim.keys.rotation_failed", error=type(exc).__name__)

    if every := settings.rotate_seconds:
        host.task("rotate-keys", lambda: rotate_periodically(every))
    host.describe(
        issuer=settings.issuer,
        client_id=settings.client_id,
        knobs=settings.knobs_enabled,
        kid=sim.provider.keys.current.kid,
    )

    async def signing_key() -> dict[str, object]:
        return {"ok": sim.provider.keys.current is not None}

    host.check("signing_key", signing_key)
    return sim
