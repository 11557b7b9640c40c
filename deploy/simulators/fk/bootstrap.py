"""The one place that wires the Försäkringskassan simulator: its pool, the receipts' group-commit writer, and the
loop that writes the injected-fault counts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter
from starlette.types import Scope

from deploy.simulators.fk import store
from deploy.simulators.fk.faults import Clock, FaultInjector, FaultKind, hide_dropped_response_errors
from deploy.simulators.fk.settings import FksimSettings
from services.kit.db import Pool
from services.kit.service import Host

log = structlog.get_logger(__name__)

FAULT_COUNT_SECONDS = 1.0  # how often the injected-fault counts are written
FAULTS = Counter("fksim_faults_injected_total", "Faults injected by the FK simulator", ["kind"])


@dataclass
class FaultCounts:
    """Injected faults, added up in memory and written once a second (and before /sim/stats answers): a latency
    fault is injected into every write, and a database write per request cost as much as storing the receipt."""

    unwritten: dict[str, int] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def on_fault(self, kind: FaultKind, scope: Scope) -> None:
        """The injector's callback: count (and log) one injected fault."""
        FAULTS.labels(kind.value).inc()
        # The latency is added to every write: logging it each time would be noise (the metric counts it).
        level = logging.DEBUG if kind is FaultKind.LATENCY else logging.INFO
        log.log(level, "fksim.fault.injected", kind=kind.value, method=scope["method"], path=scope["path"])
        self.unwritten[kind.value] = self.unwritten.get(kind.value, 0) + 1

    async def flush(self, pool: Pool) -> None:
        """Write the counts not yet written."""
        async with self.lock:
            while self.unwritten:
                kind, count = self.unwritten.popitem()
                try:
                    await store.count_fault(pool, kind, count)
                except Exception as exc:  # the count is informative; the fault must happen anyway
                    log.warning("fksim.fault.count_failed", error=type(exc).__name__)


@dataclass(frozen=True)
class FkSim:
    """What the simulator's routes need."""

    settings: FksimSettings
    clock: Clock
    pool: Pool
    writer: store.ReceiptWriter
    injector: FaultInjector
    counts: FaultCounts


async def bootstrap(
    host: Host, *, settings: FksimSettings, clock: Clock, injector: FaultInjector, counts: FaultCounts
) -> FkSim:
    """The simulator's state; at shutdown the writer finishes its group and the last fault counts are written."""
    hide_dropped_response_errors()
    pool = await host.pool(application="fk-sim", max_size=10)
    writer = store.ReceiptWriter(lambda: pool)

    async def count_faults() -> None:
        while True:
            await asyncio.sleep(FAULT_COUNT_SECONDS)
            await counts.flush(pool)

    async def database() -> dict[str, Any]:
        try:
            await store.ping(pool)
            return {"ok": True}
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__}

    host.task("fault-counts", count_faults)
    host.check("database", database)
    host.on_stop(lambda: counts.flush(pool))
    host.on_stop(writer.close)  # runs first: the last group is written before the counts and the pool go
    host.describe(schema=settings.db_schema)
    return FkSim(settings=settings, clock=clock, pool=pool, writer=writer, injector=injector, counts=counts)
