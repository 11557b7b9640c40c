"""The senders: one worker per active recipient claims due ledger rows and calls the recipient's adapter.

Bounded concurrency per recipient (the registry's `max_concurrency`), a circuit breaker per recipient, retries on
the durable schedule in the ledger. Rows are claimed with `FOR UPDATE SKIP LOCKED` and leased to this process;
each process holds an advisory lock for its life, so rows leased to a process that died are taken over at once
(and, being in flight, reconciled with the recipient before any new call).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter, Gauge

from schemas.events import DispatchFailed, DispatchSucceeded, FailureCode
from services.dispatch import repo
from services.dispatch.adapters import (
    Delivered,
    Failed,
    NotReceived,
    Parcel,
    RecipientAdapter,
    Rejected,
    UnknownAdapterKind,
    adapter_for,
)
from services.dispatch.domain import (
    Circuit,
    CircuitBreaker,
    Claimed,
    Fail,
    Recipient,
    Reconcile,
    RetrySchedule,
    SendKind,
    SendState,
    decide_after_failure,
    decide_claim,
    decide_not_received,
)
from services.dispatch.handlers import Dispatch, refuse_expired
from services.kit.db import Pool
from services.kit.groupcommit import GroupCommit
from services.kit.logging import mask_personnummer

log = structlog.get_logger(__name__)

IN_FLIGHT = Gauge("dispatch_in_flight", "Calls to recipients in progress", ["recipient"])
ATTEMPTS = Counter("dispatch_attempts_total", "Calls to recipients", ["recipient", "kind", "result"])
RETRIES = Counter("dispatch_retries_total", "Attempts put back on the retry schedule", ["recipient", "kind"])
FAILURES = Counter("dispatch_failures_total", "Ledger rows that failed for good", ["recipient", "kind", "code"])
CIRCUIT = Gauge("dispatch_recipient_circuit_state", "0 closed, 1 half-open, 2 open", ["recipient"])
RECIPIENT_UP = Gauge("dispatch_recipient_up", "1 if the last call to the recipient got an answer", ["recipient"])
QUEUED = Gauge("dispatch_queued", "Unfinished ledger rows", ["recipient", "state"])
_CIRCUIT_VALUE = {Circuit.CLOSED: 0, Circuit.HALF_OPEN: 1, Circuit.OPEN: 2}


class RecipientWorker:
    """Sends to one recipient."""

    def __init__(self, sender: Sender, recipient: Recipient, adapter: RecipientAdapter) -> None:
        settings = sender.dispatch.settings
        self.sender = sender
        self.recipient = recipient
        self.adapter = adapter
        self.breaker = CircuitBreaker(
            failures=settings.breaker_failures,
            open_seconds=settings.breaker_open_seconds,
            max_open_seconds=settings.breaker_max_open_seconds,
        )
        self.wakeup = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        # Rows whose calls to the recipient are not over: what `max_concurrency` bounds. A row whose calls are over
        # frees its place at once, while its outcome is being written, so the recipient is kept busy.
        self.calling: set[int] = set()
        self.release_waiting = False  # the circuit closed: the sends that waited for it are made due now

    async def run(self) -> None:
        dispatch = self.sender.dispatch
        settings = dispatch.settings
        try:
            while True:
                self.wakeup.clear()
                if self.release_waiting:
                    await self._release_waiting()
                free = self.recipient.max_concurrency - len(self.calling)
                if len(self.tasks) >= 2 * self.recipient.max_concurrency:
                    free = 0  # outcomes are written more slowly than answers come: wait for the database
                allowed = self.breaker.allowance(time.monotonic(), free)
                CIRCUIT.labels(self.recipient.id).set(_CIRCUIT_VALUE[self.breaker.state])
                claimed: list[repo.ClaimedRow] = []
                if allowed > 0:
                    now = dispatch.clock()
                    try:
                        claimed = await repo.claim_due(
                            dispatch.pool, self.recipient.id, allowed, now=now,
                            lease_until=now + timedelta(seconds=settings.lease_seconds), claimer=self.sender.claimer,
                        )  # fmt: skip
                    except Exception as exc:  # the database is away: sends wait in the ledger
                        log.warning("dispatch.claim.error", recipient=self.recipient.id, error=type(exc).__name__)
                        await asyncio.sleep(1.0)
                        continue
                    for row in claimed:
                        self.breaker.started()
                        self.calling.add(row.row.id)
                        task = asyncio.create_task(self._attempt(row))
                        self.tasks.add(task)
                        task.add_done_callback(self._done)
                if claimed and len(claimed) == allowed:
                    continue  # more may be due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), settings.poll_seconds)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.adapter.close()

    async def _release_waiting(self) -> None:
        """The recipient answers again: every send of it waiting for its retry time is due now, so the queue built
        up during an outage drains at full concurrency instead of as each send's own backoff runs out."""
        self.release_waiting = False
        try:
            released = await repo.make_due(self.sender.dispatch.pool, self.recipient.id, self.sender.dispatch.clock())
        except Exception as exc:  # the database is away: try again next round; the sends are due later anyway
            log.warning("dispatch.release.error", recipient=self.recipient.id, error=type(exc).__name__)
            self.release_waiting = True
            await asyncio.sleep(1.0)
            return
        log.info("dispatch.circuit.closed", recipient=self.recipient.id, released=released)

    def _calls_over(self, row: repo.SendRow) -> None:
        """The row will not call the recipient again in this attempt: its place is free for another row."""
        if row.id in self.calling:
            self.calling.discard(row.id)
            self.wakeup.set()

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wakeup.set()

    async def _attempt(self, claimed: repo.ClaimedRow) -> None:
        row = claimed.row
        dispatch = self.sender.dispatch
        state = Claimed(row.kind, claimed.state_before, row.attempts, row.deadline_at, claimed.certificate)
        IN_FLIGHT.labels(self.recipient.id).inc()
        structlog.contextvars.bind_contextvars(certificate_id=row.certificate_id, recipient=row.recipient_id)
        try:
            action = decide_claim(state, dispatch.clock())
            if isinstance(action, Reconcile):
                answer = await self.adapter.was_received(row.certificate_id, row.call_key)
                self._observe(answer, "reconcile")
                if isinstance(answer, Delivered):
                    log.info("dispatch.reconciled.received", attempts=row.attempts)
                    await self._delivered(claimed, answer.reference)
                    return
                if isinstance(answer, Failed):
                    await self._failed(claimed, state, answer)
                    return
                log.info("dispatch.reconciled.not_received", attempts=row.attempts)
                action = decide_not_received(state, dispatch.clock())
            if isinstance(action, Fail):
                await self._finish_failed(claimed, action.code, None)
                return
            if row.kind is SendKind.SEND:
                if claimed.document is None:  # cannot happen for a released copy; fail loudly rather than send nothing
                    raise RuntimeError("released certificate without a document")
                parcel = Parcel(row.certificate_id, row.certificate_type, claimed.document, row.call_key)
                result = await self.adapter.send(parcel)
            else:
                result = await self.adapter.revoke(row.certificate_id, row.call_key, claimed.document)
            self._observe(result, row.kind.value)
            if isinstance(result, Delivered):
                await self._delivered(claimed, result.reference)
            elif isinstance(result, Rejected):
                await self._finish_failed(claimed, "REJECTED_BY_RECIPIENT", result.detail)
            else:
                await self._failed(claimed, state, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The row stays in flight: the lease (or the next process) reconciles it. Nothing is lost.
            log.error("dispatch.attempt.error", error=mask_personnummer(f"{type(exc).__name__}: {exc}"))
        finally:
            self._calls_over(row)
            self.breaker.finished()
            IN_FLIGHT.labels(self.recipient.id).dec()
            structlog.contextvars.unbind_contextvars("certificate_id", "recipient")

    def _observe(self, answer: Delivered | Rejected | Failed | NotReceived, kind: str) -> None:
        rid = self.recipient.id
        if isinstance(answer, Failed):
            self.breaker.failed(time.monotonic())
            RECIPIENT_UP.labels(rid).set(0)
            ATTEMPTS.labels(rid, kind, "failed").inc()
        else:
            if self.breaker.succeeded():
                self.release_waiting = True
                self.wakeup.set()
            RECIPIENT_UP.labels(rid).set(1)
            ATTEMPTS.labels(rid, kind, type(answer).__name__.lower()).inc()
        CIRCUIT.labels(rid).set(_CIRCUIT_VALUE[self.breaker.state])

    async def _delivered(self, claimed: repo.ClaimedRow, reference: str | None) -> None:
        row = claimed.row
        self._calls_over(row)
        dispatch = self.sender.dispatch
        now = dispatch.clock()
        outcome = (
            DispatchSucceeded(
                idempotency_key=row.request_key,
                certificate_id=row.certificate_id,
                recipient_id=row.recipient_id,
                citizen_ref=row.citizen_ref,
                delivered_at=now,
                recipient_reference=reference,
            )
            if row.kind is SendKind.SEND
            else None
        )
        await self._finish(claimed, now, SendState.DELIVERED, outcome, reference=reference)
        log.info("dispatch.delivered", kind=row.kind.value, attempts=row.attempts, citizen_ref=row.citizen_ref)

    async def _finish_failed(self, claimed: repo.ClaimedRow, code: FailureCode, error: str | None) -> None:
        row = claimed.row
        self._calls_over(row)
        dispatch = self.sender.dispatch
        outcome = (
            dispatch.failed(
                code=code,
                recipient_name=self.recipient.name,
                request_key=row.request_key,
                certificate_id=row.certificate_id,
                recipient_id=row.recipient_id,
                citizen_ref=row.citizen_ref,
                certificate_type=row.certificate_type,
            )
            if row.kind is SendKind.SEND
            else None
        )
        if await self._finish(claimed, dispatch.clock(), SendState.FAILED, outcome, code=code, error=error):
            FAILURES.labels(row.recipient_id, row.kind.value, code).inc()
            log.warning("dispatch.failed", kind=row.kind.value, code=code, attempts=row.attempts, error=error)

    async def _finish(
        self, claimed: repo.ClaimedRow, now: datetime, state: SendState,
        outcome: DispatchSucceeded | DispatchFailed | None, *, reference: str | None = None,
        code: FailureCode | None = None, error: str | None = None,
    ) -> bool:  # fmt: skip
        dispatch = self.sender.dispatch
        held = await self.sender.outcomes.finish(
            repo.Finish(
                claimed.row, state=state, now=now, failure_code=code, error=error, reference=reference,
                outcome=dispatch.outcome_row(outcome, correlation_id=str(claimed.row.request_key)) if outcome else None,
                revoke_deadline=now + dispatch.deadline,
            )
        )  # fmt: skip
        if not held:
            log.warning("dispatch.claim.lost", attempts=claimed.row.attempts)
            return False
        if outcome is not None:
            dispatch.count_outcome(outcome)
        self.sender.committed()
        return True

    async def _failed(self, claimed: repo.ClaimedRow, state: Claimed, answer: Failed) -> None:
        row = claimed.row
        self._calls_over(row)
        dispatch = self.sender.dispatch
        decision = decide_after_failure(
            state, maybe_delivered=answer.maybe_delivered, now=dispatch.clock(), schedule=self.sender.schedule,
            rng=self.sender.rng, circuit_wait=self.breaker.wait(time.monotonic()),
        )  # fmt: skip
        if isinstance(decision, Fail):
            await self._finish_failed(claimed, decision.code, answer.detail)
            return
        await repo.reschedule(
            dispatch.pool, row.id, row.attempts, state=decision.state, at=decision.at, error=answer.detail
        )
        RETRIES.labels(row.recipient_id, row.kind.value).inc()
        log.info("dispatch.retry", attempts=row.attempts, at=decision.at.isoformat(), error=answer.detail)


class OutcomeWriter:
    """Group commit of finished rows (`kit.groupcommit`): the rows finished while the previous group was being
    written are written together (`repo.finish_many`: one statement, one round trip, one commit) instead of a
    statement and a commit each. A row's task waits for the commit of its group, so nothing is reported before it is
    durable. If the group's statement fails, each row is written again on its own, so one row's error is never
    another's."""

    def __init__(self, pool: Pool, max_group: int = 200) -> None:
        self._pool = pool
        self._group: GroupCommit[repo.Finish, bool] = GroupCommit(self._write_group, max_group)

    async def finish(self, finish: repo.Finish) -> bool:
        """`repo.finish` of one row, in the next group; False if the claim was lost."""
        return await self._group.submit(finish)

    async def _write_group(self, group: list[repo.Finish]) -> list[bool | BaseException]:
        try:
            held = await repo.finish_many(self._pool, group)
        except Exception as exc:
            if len(group) == 1:
                raise
            log.warning("dispatch.outcomes.group_failed", size=len(group), error=type(exc).__name__)
            return [await self._alone(finish) for finish in group]
        return [finish.row.id in held for finish in group]

    async def _alone(self, finish: repo.Finish) -> bool | BaseException:
        try:
            return await repo.finish(self._pool, finish)
        except Exception as exc:
            return exc

    async def close(self) -> None:
        """Wait for the group being written."""
        await self._group.close()


class Sender:
    """Runs a worker per active recipient of the registry, and takes over rows of processes that died."""

    def __init__(self, dispatch: Dispatch, on_commit: Callable[[], None], rng: random.Random | None = None) -> None:
        self.dispatch = dispatch
        settings = dispatch.settings
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.schedule = RetrySchedule(settings.retry_first_seconds, settings.retry_max_seconds)
        self.claimer = random.SystemRandom().randrange(1, 2**31)
        self.lock_class = zlib.crc32(f"{settings.db_schema}.senders".encode()) & 0x7FFFFFFF
        self._on_commit = on_commit
        self.workers: dict[str, tuple[RecipientWorker, asyncio.Task[None]]] = {}
        self.outcomes = OutcomeWriter(dispatch.pool)

    def wake(self) -> None:
        """New sends may be due (called after a commit that queued some)."""
        for worker, _ in self.workers.values():
            worker.wakeup.set()

    def committed(self) -> None:
        self._on_commit()

    async def run(self) -> None:
        dispatch = self.dispatch
        async with dispatch.pool.acquire() as lock_conn:
            await lock_conn.execute("SELECT pg_advisory_lock($1, $2)", self.lock_class, self.claimer)
            try:
                await self._manage()
            finally:
                for _worker, task in self.workers.values():
                    task.cancel()
                await asyncio.gather(*(t for _, t in self.workers.values()), return_exceptions=True)
                self.workers.clear()
                await self.outcomes.close()
                with contextlib.suppress(Exception):
                    await lock_conn.execute("SELECT pg_advisory_unlock($1, $2)", self.lock_class, self.claimer)

    async def _manage(self) -> None:
        settings = self.dispatch.settings
        next_refresh = 0.0
        while True:
            if time.monotonic() >= next_refresh:
                await self._refresh_registry()
                await self._gauges()
                next_refresh = time.monotonic() + settings.registry_refresh_seconds
            refused = await refuse_expired(self.dispatch)
            if refused:
                self.committed()
            released = await repo.release_orphans(self.dispatch.pool, lock_class=self.lock_class, now=self._now())
            if released:
                log.info("dispatch.orphans.taken_over", count=released)
                self.wake()
            await asyncio.sleep(1.0)

    def _now(self) -> datetime:
        return self.dispatch.clock()

    async def _refresh_registry(self) -> None:
        wanted = {r.id: r for r in await repo.recipients(self.dispatch.pool) if r.active}
        for rid, (worker, task) in list(self.workers.items()):
            if wanted.get(rid) != worker.recipient or task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                del self.workers[rid]
        for rid, recipient in wanted.items():
            if rid in self.workers:
                continue
            try:
                adapter = adapter_for(recipient, self.dispatch.settings)
            except UnknownAdapterKind as exc:
                log.error("dispatch.recipient.no_adapter", recipient=rid, error=str(exc))
                continue
            worker = RecipientWorker(self, recipient, adapter)
            self.workers[rid] = (worker, asyncio.create_task(worker.run()))
            log.info("dispatch.recipient.started", recipient=rid, kind=recipient.adapter_kind)

    async def _gauges(self) -> None:
        QUEUED.clear()
        for record in await repo.due_counts(self.dispatch.pool):
            QUEUED.labels(record["recipient_id"], record["state"]).set(record["n"])
