"""All of consent's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.consent.domain import CertificateStatus, Consent, KnownCertificate
from services.kit.db import Connection, Pool


@dataclass(frozen=True)
class CitizenRow:
    citizen_ref: str
    consent: Consent
    text_version: str | None
    changed_at: datetime | None
    generation: int = 0
    held_purged_at: datetime | None = None


_CITIZEN_COLUMNS = "citizen_ref, consent, text_version, changed_at, generation, held_purged_at"


def _citizen(row: asyncpg.Record) -> CitizenRow:
    return CitizenRow(
        row["citizen_ref"],
        Consent(row["consent"]),
        row["text_version"],
        row["changed_at"],
        row["generation"],
        row["held_purged_at"],
    )


@dataclass(frozen=True)
class HistoryRow:
    action: str
    text_version: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class HeldCertificate:
    id: str
    document: str
    test_patient: bool
    traceparent: str | None = None


async def lock_citizen(conn: Connection, citizen_ref: str) -> CitizenRow:
    """The citizen's row, created if new and locked until the transaction ends (serialises per citizen)."""
    row = await conn.fetchrow(
        "INSERT INTO citizens (citizen_ref) VALUES ($1) "  # noqa: S608 - constant columns
        "ON CONFLICT (citizen_ref) DO UPDATE SET citizen_ref = EXCLUDED.citizen_ref "
        f"RETURNING {_CITIZEN_COLUMNS}",
        citizen_ref,
    )
    assert row is not None
    return _citizen(row)


async def lock_citizens(conn: Connection, citizen_refs: Sequence[str]) -> dict[str, tuple[Consent, int]]:
    """Lock several citizens' rows (created if new) in one statement, in sorted order so that no two
    transactions can deadlock; returns each citizen's consent and consent generation."""
    rows = await conn.fetch(
        "INSERT INTO citizens (citizen_ref) SELECT ref FROM unnest($1::text[]) AS ref ORDER BY ref "
        "ON CONFLICT (citizen_ref) DO UPDATE SET citizen_ref = EXCLUDED.citizen_ref "
        "RETURNING citizen_ref, consent, generation",
        sorted(set(citizen_refs)),
    )
    return {row["citizen_ref"]: (Consent(row["consent"]), row["generation"]) for row in rows}


async def get_citizen(conn: Connection | Pool, citizen_ref: str) -> CitizenRow | None:
    row = await conn.fetchrow(f"SELECT {_CITIZEN_COLUMNS} FROM citizens WHERE citizen_ref = $1", citizen_ref)  # noqa: S608 - constant columns
    return None if row is None else _citizen(row)


async def record_consent(
    conn: Connection, citizen_ref: str, consent: Consent, text_version: str, channel: str, at: datetime
) -> int:
    """Record a consent change; returns the citizen's new consent generation (one more than before)."""
    generation: int = await conn.fetchval(
        "UPDATE citizens SET consent = $2, text_version = $3, changed_at = $4, generation = generation + 1 "
        "WHERE citizen_ref = $1 RETURNING generation",
        citizen_ref,
        consent.value,
        text_version,
        at,
    )
    await conn.execute(
        "INSERT INTO consent_history (citizen_ref, action, text_version, channel, at) VALUES ($1, $2, $3, $4, $5)",
        citizen_ref,
        consent.value,
        text_version,
        channel,
        at,
    )
    return generation


async def history(conn: Connection | Pool, citizen_ref: str) -> list[HistoryRow]:
    rows = await conn.fetch(
        "SELECT action, text_version, channel, at FROM consent_history WHERE citizen_ref = $1 ORDER BY id",
        citizen_ref,
    )
    return [HistoryRow(**dict(r.items())) for r in rows]


async def find_certificate(conn: Connection, certificate_id: str) -> KnownCertificate | None:
    row = await conn.fetchrow("SELECT status, ever_released FROM certificates WHERE id = $1", certificate_id)
    return KnownCertificate(CertificateStatus(row["status"]), row["ever_released"]) if row else None


async def insert_certificate(
    conn: Connection,
    *,
    certificate_id: str,
    citizen_ref: str,
    certificate_type: str,
    test_patient: bool,
    document: str | None,
    status: CertificateStatus,
    at: datetime,
) -> None:
    released = status is CertificateStatus.RELEASED
    await conn.execute(
        "INSERT INTO certificates (id, citizen_ref, type, test_patient, document, status, ever_released, "
        "received_at, held_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        certificate_id,
        citizen_ref,
        certificate_type,
        test_patient,
        document,
        status.value,
        released,
        at,
        None if released else at,
    )


@dataclass(frozen=True)
class Arriving:
    certificate_id: str
    citizen_ref: str
    certificate_type: str
    test_patient: bool
    document: str
    released: bool
    traceparent: str | None = None


async def insert_arrivals(conn: Connection, arriving: Sequence[Arriving], at: datetime) -> set[str]:
    """Store many arriving certificates in one statement; returns the ids that were new."""
    rows = await conn.fetch(
        "INSERT INTO certificates (id, citizen_ref, type, test_patient, document, status, ever_released, "
        "received_at, held_since, traceparent) "
        "SELECT id, ref, type, test, doc, CASE WHEN rel THEN 'released' ELSE 'held' END, rel, $7, "
        "CASE WHEN rel THEN NULL ELSE $7::timestamptz END, trace "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::boolean[], $8::text[]) "
        "AS a(id, ref, type, test, doc, rel, trace) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        [a.certificate_id for a in arriving],
        [a.citizen_ref for a in arriving],
        [a.certificate_type for a in arriving],
        [a.test_patient for a in arriving],
        [a.document for a in arriving],
        [a.released for a in arriving],
        at,
        [a.traceparent for a in arriving],
    )
    return {row["id"] for row in rows}


async def held_certificates(conn: Connection, citizen_ref: str) -> list[HeldCertificate]:
    """The citizen's held certificates in issue order."""
    rows = await conn.fetch(
        "SELECT id, document, test_patient, traceparent FROM certificates "
        "WHERE citizen_ref = $1 AND status = 'held' ORDER BY seq",
        citizen_ref,
    )
    return [HeldCertificate(r["id"], r["document"], r["test_patient"], r["traceparent"]) for r in rows]


async def mark_released(conn: Connection, certificate_ids: Sequence[str]) -> None:
    await conn.execute(
        "UPDATE certificates SET status = 'released', ever_released = true, held_since = NULL "
        "WHERE id = ANY($1::text[])",
        list(certificate_ids),
    )


async def hold_released(conn: Connection, citizen_ref: str, at: datetime) -> int:
    """After a withdrawal: every released certificate of the citizen is held again."""
    result: str = await conn.execute(
        "UPDATE certificates SET status = 'held', held_since = $2 WHERE citizen_ref = $1 AND status = 'released'",
        citizen_ref,
        at,
    )
    return int(result.split()[-1])


async def revoke(conn: Connection, certificate_id: str) -> None:
    """Mark revoked and drop the document: a revoked certificate is never shown or used again."""
    await conn.execute(
        "UPDATE certificates SET status = 'revoked', document = NULL, held_since = NULL WHERE id = $1",
        certificate_id,
    )


async def purge_expired_held(pool: Pool, before: datetime, at: datetime | None = None) -> int:
    """Remove certificates held since before `before` (their citizen never consented, or withdrew long ago).

    One that was never released is deleted. One that was released once keeps a row without its document, so
    that a later revocation is still forwarded to the services and recipients that may have had it.
    The citizen's row keeps when it happened (`held_purged_at`, no certificate data), so that a citizen who consents
    later is told that older certificates may exist at the care unit.
    """
    async with pool.acquire() as conn, conn.transaction():
        deleted = await conn.fetch(
            "DELETE FROM certificates WHERE status = 'held' AND held_since < $1 AND NOT ever_released "
            "RETURNING citizen_ref",
            before,
        )
        purged = await conn.fetch(
            "UPDATE certificates SET status = 'purged', document = NULL, held_since = NULL "
            "WHERE status = 'held' AND held_since < $1 AND ever_released RETURNING citizen_ref",
            before,
        )
        citizens = sorted({r["citizen_ref"] for r in (*deleted, *purged)})
        if citizens:
            await conn.execute(
                "UPDATE citizens SET held_purged_at = coalesce($2, now()) WHERE citizen_ref = ANY($1::text[])",
                citizens,
                at,
            )
    return len(deleted) + len(purged)


async def held_count(pool: Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM certificates WHERE status = 'held'")
    return count
