"""Statistics' ingest: released certificates, revocations and withdrawals in, facts, cases and aggregates out.

A batch of events is applied set-based with the same end state as one event at a time: revocations leave
tombstones first (a revoke may overtake its certificate), releases of tombstoned certificates are skipped, and the
cases of every person and care provider touched are recomputed once, with the aggregates changed by the net delta.
"""

from __future__ import annotations

import functools
import gc
import hmac
from collections import Counter as Counter_
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import structlog
from prometheus_client import Counter

from schemas.envelope import Envelope
from schemas.events import CertificateReleased, CertificateRevoked, CitizenDataWithdrawn
from services.kit.consumer import HandlerError
from services.kit.db import Connection
from services.kit.withdrawals import is_stale, record_withdrawal, withdrawn_generations
from services.stats import repo
from services.stats.domain import (
    CASE_TYPES,
    AggKey,
    Delta,
    Fact,
    UnusableCertificate,
    aggregate_delta,
    fact_of,
    merge_cases,
    merge_deltas,
    pseudonym,
    replaced_id,
)
from services.stats.released import ReleasedForStats

log = structlog.get_logger(__name__)

COUNTED = Counter("stats_certificates_counted_total", "Released certificates taken into statistics", ["type"])
EXCLUDED = Counter("stats_certificates_excluded_total", "Released certificates left out", ["reason"])
REVOKED = Counter("stats_revocations_total", "Revocations applied (the certificate removed or tombstoned)")
REPLACED = Counter("stats_replacements_total", "Certificates replaced by a newer one (REPLACES), removed or tombstoned")
WITHDRAWN = Counter("stats_withdrawals_total", "Citizens whose facts were removed after withdrawn consent")
CASES_RECOMPUTED = Counter("stats_case_groups_recomputed_total", "Person × care provider case sets recomputed")


# Allocations between automatic collections of the youngest generation (CPython's default is 700). A batch of
# thousands of events allocates hundreds of thousands of objects that all live until the batch ends, so with the
# default the collector scans them again and again: a third of the ingest's CPU time in profiles.
GC_THRESHOLDS = (100_000, 20, 10)


@contextmanager
def ingest_gc() -> Iterator[None]:
    """Garbage collection tuned for batch ingest while in effect: what exists on entry (modules, settings) is
    moved out of the collector's sight (`gc.freeze`), and collections run far less often."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


_RUN_TYPES: frozenset[type] = frozenset({ReleasedForStats, CertificateReleased, CertificateRevoked})


@dataclass(frozen=True)
class Ingest:
    pseudonym_key: str

    @functools.cached_property
    def record_secret(self) -> bytes:
        """The key of the records' keys (cell key method), derived from the statistics key."""
        return hmac.digest(self.pseudonym_key.encode(), b"stats:record-keys", "sha256")


async def on_event(ingest: Ingest, conn: Connection, envelope: Envelope) -> None:
    """Consumer handler for consent.released.v1 (one event)."""
    await on_batch(ingest, conn, [envelope])


async def on_batch(ingest: Ingest, conn: Connection, envelopes: list[Envelope], *, derive: bool = True) -> None:
    """Consumer handler for a batch of consent.released.v1, in the consumer's transaction.

    The aggregates change once, at the end, in key order: concurrent batches then lock their rows in one order.
    `derive=False` (the rebuild) changes facts, tombstones and the mapping only; cases and aggregates are then
    derived from all facts at once (`derive_all`).
    """
    run: list[Envelope] = []
    delta: dict[AggKey, list[int]] = {}
    changes = 0
    for envelope in envelopes:
        data = envelope.data
        # Exact types, not isinstance: pydantic models' metaclass is an ABCMeta, whose isinstance checks of a msgspec
        # struct cost more than the rest of this loop (profile).
        kind = type(data)
        if kind in _RUN_TYPES:
            run.append(envelope)
        elif kind is CitizenDataWithdrawn:
            changes += _merge(delta, await _apply_run(ingest, conn, run, derive))
            run = []
            withdrawal = cast(CitizenDataWithdrawn, data)
            await record_withdrawal(conn, withdrawal.citizen_ref, withdrawal.consent_generation, withdrawal.at)
            changes += _merge(delta, await _withdraw(ingest, conn, withdrawal.citizen_ref, derive))
        else:
            raise HandlerError(f"unexpected event type {envelope.type} on the released topic")
    changes += _merge(delta, await _apply_run(ingest, conn, run, derive))
    await repo.apply_delta(conn, {k: (n, s) for k, (n, s) in delta.items() if n or s})
    await repo.count_changes(conn, changes)


def _merge(into: dict[AggKey, list[int]], change: tuple[Delta, int]) -> int:
    merge_deltas(into, change[0])
    return change[1]


async def _apply_run(ingest: Ingest, conn: Connection, run: list[Envelope], derive: bool) -> tuple[Delta, int]:
    if not run:
        return {}, 0
    revoked_ids = [e.data.certificate_id for e in run if type(e.data) is CertificateRevoked]
    released: dict[str, tuple[str | None, Fact]] = {}
    withdrawn = await withdrawn_generations(
        conn, (cast("CertificateReleased", e.data).citizen_ref for e in run if type(e.data) is not CertificateRevoked)
    )
    for envelope in run:
        if type(envelope.data) is CertificateRevoked:
            continue
        data = cast("CertificateReleased | ReleasedForStats", envelope.data)  # the rest of a run (see on_batch)
        if withdrawn and is_stale(data.consent_generation, withdrawn.get(data.citizen_ref)):
            # Made before the citizen's last withdrawal (replayed, redelivered, or read again by a rebuild).
            EXCLUDED.labels("stale").inc()
            continue
        if data.test_patient or data.certificate.patient.test_patient:
            EXCLUDED.labels("test_patient").inc()
            continue
        if data.certificate.type not in CASE_TYPES:  # AG7804 and the rest are no input of the statistics
            EXCLUDED.labels("not_input").inc()
            continue
        try:
            fact = fact_of(data.certificate, ingest.pseudonym_key, data.citizen_ref)
        except UnusableCertificate as exc:
            raise HandlerError(f"certificate {data.certificate.id}: {exc}") from exc
        released.setdefault(fact.certificate_id, (replaced_id(data.certificate), fact))
    await repo.add_tombstones(conn, revoked_ids)
    gone = await repo.tombstoned(conn, list(released))
    EXCLUDED.labels("revoked").inc(len(gone))
    arriving = [fact for cid, (_, fact) in released.items() if cid not in gone]
    # A certificate that replaces another (REPLACES) takes its place: the earlier one leaves facts, cases and counts,
    # and stays out if it arrives later (a tombstone, as for a revocation).
    replaced = sorted({old for cid, (old, _) in released.items() if old is not None and cid not in gone})
    await repo.add_tombstones(conn, replaced)
    arriving = [fact for fact in arriving if fact.certificate_id not in replaced]
    added = await repo.insert_facts(conn, arriving)
    removed = await repo.delete_facts(conn, revoked_ids + replaced)
    REVOKED.inc(len(revoked_ids))
    REPLACED.inc(len(replaced))
    for cert_type, n in Counter_(fact.cert_type for fact in added).items():
        COUNTED.labels(cert_type).inc(n)
    return await _recompute(ingest, conn, added, removed) if derive else ({}, 0)


async def _withdraw(ingest: Ingest, conn: Connection, citizen_ref: str, derive: bool) -> tuple[Delta, int]:
    removed = await repo.delete_person(conn, pseudonym(citizen_ref, ingest.pseudonym_key))
    WITHDRAWN.inc()
    log.info("stats.citizen.withdrawn", citizen_ref=citizen_ref, facts=len(removed))
    return await _recompute(ingest, conn, [], removed) if derive else ({}, 0)


async def _recompute(ingest: Ingest, conn: Connection, added: list[Fact], removed: list[Fact]) -> tuple[Delta, int]:
    """Recompute the cases of every person × care provider touched; returns the change of the aggregates."""
    groups = sorted({(f.pseudonym, f.provider) for f in (*added, *removed) if f.cert_type in CASE_TYPES})
    old_cases = await repo.cases_of(conn, groups)
    new_cases = merge_cases(await repo.case_facts(conn, groups, known=added))
    # Only the cases that changed are written (and moved in the aggregates): most of a person's cases stay as
    # they were when one certificate arrives or leaves.
    old_set, new_set = set(old_cases), set(new_cases)
    gone = [case for case in old_cases if case not in new_set]
    came = [case for case in new_cases if case not in old_set]
    await repo.delete_cases(conn, gone)
    await repo.insert_cases(conn, came)
    CASES_RECOMPUTED.inc(len(groups))
    return aggregate_delta(ingest.record_secret, gone, came, removed, added), len(gone) + len(came)


async def derive_all(ingest: Ingest, conn: Connection, chunk: int = 5000) -> int:
    """Cases and aggregates from every fact at once, replacing what was there; returns the number of cases.

    The same rules as `_recompute` applied to everything: each person × care provider's facts merged into cases,
    every case and every fact counted once in the aggregates. Facts are read in person order, in chunks that
    never split a person × care provider."""
    await repo.clear_derived(conn)
    delta: dict[AggKey, list[int]] = {}
    cases = 0
    facts: list[Fact] = []

    async def flush() -> None:
        nonlocal cases
        made = merge_cases(facts)
        await repo.insert_cases(conn, made)
        merge_deltas(delta, aggregate_delta(ingest.record_secret, (), made, (), facts))
        cases += len(made)
        facts.clear()

    async for fact in repo.all_facts(conn):
        if len(facts) >= chunk and (fact.pseudonym, fact.provider) != (facts[-1].pseudonym, facts[-1].provider):
            await flush()
        facts.append(fact)
    await flush()
    await repo.apply_delta(conn, {k: (n, s) for k, (n, s) in delta.items() if n or s})
    return cases
