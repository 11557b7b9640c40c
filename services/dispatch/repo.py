"""All of dispatch's SQL: the registry, the certificate copies and the send ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from services.dispatch.domain import CertificateStatus, KnownCertificate, Recipient, SendKind, SendState
from services.kit.db import Connection, Pool

_RECIPIENT_COLUMNS = (
    "id, name, active, certificate_types, endpoint, adapter_kind, trusted_for_protected_identities, max_concurrency"
)


def _recipient(row: asyncpg.Record) -> Recipient:
    return Recipient(
        id=row["id"],
        name=row["name"],
        active=row["active"],
        certificate_types=frozenset(row["certificate_types"]),
        endpoint=row["endpoint"],
        adapter_kind=row["adapter_kind"],
        trusted_for_protected_identities=row["trusted_for_protected_identities"],
        max_concurrency=row["max_concurrency"],
    )


# --- registry ----------------------------------------------------------------------------------------------


async def recipients(conn: Connection | Pool) -> list[Recipient]:
    rows = await conn.fetch(f"SELECT {_RECIPIENT_COLUMNS} FROM recipients ORDER BY id")  # noqa: S608
    return [_recipient(r) for r in rows]


async def recipient(conn: Connection | Pool, recipient_id: str) -> Recipient | None:
    row = await conn.fetchrow(f"SELECT {_RECIPIENT_COLUMNS} FROM recipients WHERE id = $1", recipient_id)  # noqa: S608
    return _recipient(row) if row else None


async def save_recipient(conn: Connection | Pool, r: Recipient) -> None:
    """Add or change a registry entry."""
    await conn.execute(
        f"""
        INSERT INTO recipients ({_RECIPIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, active = EXCLUDED.active,
            certificate_types = EXCLUDED.certificate_types, endpoint = EXCLUDED.endpoint,
            adapter_kind = EXCLUDED.adapter_kind,
            trusted_for_protected_identities = EXCLUDED.trusted_for_protected_identities,
            max_concurrency = EXCLUDED.max_concurrency
        """,  # noqa: S608 - a constant column list
        r.id, r.name, r.active, sorted(r.certificate_types), r.endpoint, r.adapter_kind,
        r.trusted_for_protected_identities, r.max_concurrency,
    )  # fmt: skip


async def set_endpoint(
    conn: Connection | Pool, recipient_id: str, endpoint: str, adapter_kind: str | None = None
) -> None:
    await conn.execute(
        "UPDATE recipients SET endpoint = $2, adapter_kind = coalesce($3, adapter_kind) WHERE id = $1",
        recipient_id,
        endpoint,
        adapter_kind,
    )


# --- certificate copies ------------------------------------------------------------------------------------


async def store_released(
    conn: Connection, *, certificate_id: str, citizen_ref: str, certificate_type: str, test_patient: bool,
    document: str, at: datetime,
) -> None:  # fmt: skip
    """Keep a copy of a released certificate (again after a new consent); a revoked one stays revoked."""
    await conn.execute(
        """
        INSERT INTO certificates (id, citizen_ref, type, test_patient, document, status, changed_at)
        VALUES ($1, $2, $3, $4, $5, 'released', $6)
        ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, status = 'released',
            test_patient = EXCLUDED.test_patient, changed_at = EXCLUDED.changed_at
        WHERE certificates.status <> 'revoked'
        """,
        certificate_id, citizen_ref, certificate_type, test_patient, document, at,
    )  # fmt: skip


async def document_of(conn: Connection, certificate_id: str) -> str | None:
    """The copy of a certificate, if dispatch holds one."""
    found: str | None = await conn.fetchval("SELECT document FROM certificates WHERE id = $1", certificate_id)
    return found


async def mark_revoked(
    conn: Connection, *, certificate_id: str, citizen_ref: str, certificate_type: str, at: datetime
) -> None:
    """The certificate is revoked: its copy goes, the fact stays (also when the revocation comes first)."""
    await conn.execute(
        """
        INSERT INTO certificates (id, citizen_ref, type, test_patient, document, status, changed_at)
        VALUES ($1, $2, $3, false, NULL, 'revoked', $4)
        ON CONFLICT (id) DO UPDATE SET document = NULL, status = 'revoked', changed_at = EXCLUDED.changed_at
        """,
        certificate_id, citizen_ref, certificate_type, at,
    )  # fmt: skip


async def lock_certificate(conn: Connection, lock_class: int, certificate_id: str) -> None:
    """Serialise a release and a request of the same certificate (they come on different topics, so the consumer
    may apply them in concurrent transactions); held until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", lock_class, certificate_id)


async def withdraw_citizen(conn: Connection, citizen_ref: str, at: datetime) -> int:
    """Drop every certificate copy of a citizen who withdrew consent; returns how many."""
    result: str = await conn.execute(
        "UPDATE certificates SET document = NULL, status = 'withdrawn', changed_at = $2 "
        "WHERE citizen_ref = $1 AND status = 'released'",
        citizen_ref,
        at,
    )
    return int(result.rsplit(" ", 1)[1])


async def citizen_of(conn: Connection | Pool, certificate_id: str) -> str | None:
    ref: str | None = await conn.fetchval("SELECT citizen_ref FROM certificates WHERE id = $1", certificate_id)
    return ref


# --- the ledger --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRow:
    id: int
    kind: SendKind
    certificate_id: str
    recipient_id: str
    citizen_ref: str
    certificate_type: str
    call_key: uuid.UUID
    request_key: uuid.UUID
    state: SendState
    attempts: int
    next_attempt_at: datetime
    deadline_at: datetime
    requested_at: datetime
    finished_at: datetime | None
    failure_code: str | None
    last_error: str | None
    recipient_reference: str | None


_SEND_COLUMNS = (
    "id, kind, certificate_id, recipient_id, citizen_ref, certificate_type, call_key, request_key, state, attempts, "
    "next_attempt_at, deadline_at, requested_at, finished_at, failure_code, last_error, recipient_reference"
)


def _send(row: asyncpg.Record) -> SendRow:
    values = {name: row[name] for name in _SEND_COLUMNS.split(", ")}
    values["kind"] = SendKind(values["kind"])
    values["state"] = SendState(values["state"])
    return SendRow(**values)


@dataclass(frozen=True)
class RequestContext:
    """What a send request is decided on."""

    recipient: Recipient | None
    certificate: KnownCertificate | None
    send_state: SendState | None
    delivered_at: datetime | None
    recipient_reference: str | None


_CONTEXT_COLUMNS = """r.id AS r_id, r.name, r.active, r.certificate_types, r.endpoint, r.adapter_kind,
               r.trusted_for_protected_identities, r.max_concurrency,
               c.citizen_ref, c.type, c.test_patient, c.status,
               s.state, s.finished_at, s.recipient_reference"""


async def request_context(conn: Connection, certificate_id: str, recipient_id: str) -> RequestContext:
    """The recipient, the certificate copy and an earlier send of it, in one round trip."""
    row = await conn.fetchrow(
        f"""
        SELECT {_CONTEXT_COLUMNS}
        FROM (SELECT 1) AS one
        LEFT JOIN recipients r ON r.id = $2
        LEFT JOIN certificates c ON c.id = $1
        LEFT JOIN sends s ON s.certificate_id = $1 AND s.recipient_id = $2 AND s.kind = 'send'
        """,  # noqa: S608 - constant columns
        certificate_id, recipient_id,
    )  # fmt: skip
    assert row is not None
    return _context(row)


async def request_contexts(conn: Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], RequestContext]:
    """`request_context` of many (certificate id, recipient id) pairs in one round trip."""
    rows = await conn.fetch(
        f"""
        SELECT p.certificate_id AS p_certificate_id, p.recipient_id AS p_recipient_id, {_CONTEXT_COLUMNS}
        FROM unnest($1::text[], $2::text[]) AS p(certificate_id, recipient_id)
        LEFT JOIN recipients r ON r.id = p.recipient_id
        LEFT JOIN certificates c ON c.id = p.certificate_id
        LEFT JOIN sends s ON s.certificate_id = p.certificate_id AND s.recipient_id = p.recipient_id
                          AND s.kind = 'send'
        """,  # noqa: S608 - constant columns
        [c for c, _ in pairs], [r for _, r in pairs],
    )  # fmt: skip
    return {(row["p_certificate_id"], row["p_recipient_id"]): _context(row) for row in rows}


def _context(row: asyncpg.Record) -> RequestContext:
    recipient = (
        Recipient(
            id=row["r_id"],
            name=row["name"],
            active=row["active"],
            certificate_types=frozenset(row["certificate_types"]),
            endpoint=row["endpoint"],
            adapter_kind=row["adapter_kind"],
            trusted_for_protected_identities=row["trusted_for_protected_identities"],
            max_concurrency=row["max_concurrency"],
        )
        if row["r_id"] is not None
        else None
    )
    certificate = (
        KnownCertificate(row["citizen_ref"], row["type"], row["test_patient"], CertificateStatus(row["status"]))
        if row["status"] is not None
        else None
    )
    return RequestContext(
        recipient, certificate, SendState(row["state"]) if row["state"] else None, row["finished_at"],
        row["recipient_reference"],
    )  # fmt: skip


_QUEUE_SEND = """
        INSERT INTO sends (kind, certificate_id, recipient_id, citizen_ref, certificate_type, call_key, request_key,
                           state, next_attempt_at, deadline_at, requested_at, revoked_document)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $8, $10)
        ON CONFLICT (certificate_id, recipient_id, kind) DO UPDATE
            SET state = 'pending', request_key = EXCLUDED.request_key, next_attempt_at = EXCLUDED.next_attempt_at,
                deadline_at = EXCLUDED.deadline_at, requested_at = EXCLUDED.requested_at, finished_at = NULL,
                failure_code = NULL, claimed_by = NULL, revoked_document = EXCLUDED.revoked_document
            WHERE sends.state = 'failed'
        RETURNING true
        """


async def queue_send(
    conn: Connection, *, kind: SendKind, certificate_id: str, recipient_id: str, citizen_ref: str,
    certificate_type: str, request_key: uuid.UUID, now: datetime, deadline_at: datetime,
    revoked_document: str | None = None,
) -> bool:  # fmt: skip
    """Write a ledger row due now; a failed row is put back in the queue (with its key). False if already queued.
    `revoked_document`: a revocation's copy of the revoked certificate, kept until the row finishes."""
    result = await conn.fetchval(_QUEUE_SEND, *queued_values(
        kind=kind, certificate_id=certificate_id, recipient_id=recipient_id, citizen_ref=citizen_ref,
        certificate_type=certificate_type, request_key=request_key, now=now, deadline_at=deadline_at,
        revoked_document=revoked_document,
    ))  # fmt: skip
    return bool(result)


def queued_values(
    *, kind: SendKind, certificate_id: str, recipient_id: str, citizen_ref: str, certificate_type: str,
    request_key: uuid.UUID, now: datetime, deadline_at: datetime, revoked_document: str | None = None,
) -> tuple[object, ...]:  # fmt: skip
    """The values of `queue_send`, for `queue_sends`."""
    return (kind.value, certificate_id, recipient_id, citizen_ref, certificate_type, uuid.uuid4(), request_key, now,
            deadline_at, revoked_document)  # fmt: skip


async def queue_sends(conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """`queue_send` of many rows (from `queued_values`) in one round trip."""
    if rows:
        await conn.executemany(_QUEUE_SEND, rows)


async def delivered_recipients(conn: Connection, certificate_id: str) -> list[SendRow]:
    rows = await conn.fetch(
        f"SELECT {_SEND_COLUMNS} FROM sends WHERE certificate_id = $1 AND kind = 'send' AND state = 'delivered'",  # noqa: S608
        certificate_id,
    )
    return [_send(r) for r in rows]


@dataclass(frozen=True)
class ClaimedRow:
    row: SendRow
    state_before: SendState
    certificate: CertificateStatus | None
    document: str | None  # a send's certificate; a revocation's copy of the revoked certificate (when kept)


async def claim_due(
    pool: Pool, recipient_id: str, limit: int, *, now: datetime, lease_until: datetime, claimer: int
) -> list[ClaimedRow]:
    """Claim up to `limit` due rows of a recipient: in flight, leased to this process until `lease_until`.

    SKIP LOCKED plus the lease means no two senders (processes or replicas) hold the same row.
    """
    rows = await pool.fetch(
        """
        WITH due AS (
            SELECT id, state AS state_before FROM sends
            WHERE recipient_id = $1 AND state IN ('pending', 'in_flight') AND next_attempt_at <= $2
            ORDER BY next_attempt_at
            LIMIT $3
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE sends s SET state = 'in_flight', attempts = s.attempts + 1, next_attempt_at = $4, claimed_by = $5
            FROM due WHERE s.id = due.id
            RETURNING s.*, due.state_before
        )
        SELECT claimed.*, c.status AS certificate_status, coalesce(claimed.revoked_document, c.document) AS document
        FROM claimed LEFT JOIN certificates c ON c.id = claimed.certificate_id
        """,
        recipient_id, now, limit, lease_until, claimer,
    )  # fmt: skip
    return [
        ClaimedRow(
            row=_send(r),
            state_before=SendState(r["state_before"]),
            certificate=CertificateStatus(r["certificate_status"]) if r["certificate_status"] else None,
            document=r["document"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Finish:
    """How a claimed row ends (see `finish`)."""

    row: SendRow
    state: SendState
    now: datetime
    revoke_deadline: datetime
    failure_code: str | None = None
    error: str | None = None
    reference: str | None = None
    outcome: tuple[object, ...] | None = None  # the outbox row of the outcome event


async def finish(conn: Connection | Pool, f: Finish) -> bool:
    """End a claimed row, delivered or failed, in one statement: the row, its outcome event in the outbox, and, for
    a send delivered while its certificate was being revoked, the forwarding of the revocation. False if the claim
    was lost (another sender took the row over; it will finish it)."""
    row, state, now, outcome = f.row, f.state, f.now, f.outcome
    failure_code, error, reference, revoke_deadline = f.failure_code, f.error, f.reference, f.revoke_deadline
    event_id, topic, key, value, headers = outcome or (None, None, None, None, None)
    done = await conn.fetchval(
        """
        WITH done AS (
            UPDATE sends SET state = $3, finished_at = $4, failure_code = $5, last_error = coalesce($6, last_error),
                             recipient_reference = $7, claimed_by = NULL, revoked_document = NULL
            WHERE id = $1 AND attempts = $2 AND state = 'in_flight'
            RETURNING kind, certificate_id, recipient_id, citizen_ref, certificate_type, request_key,
                      (SELECT status FROM certificates c WHERE c.id = sends.certificate_id) AS certificate_status
        ), event AS (
            INSERT INTO outbox (event_id, topic, key, value, headers)
            SELECT $8::uuid, $9::text, $10::bytea, $11::bytea, $12::jsonb FROM done WHERE $8::uuid IS NOT NULL
        ), revocation AS (
            INSERT INTO sends (kind, certificate_id, recipient_id, citizen_ref, certificate_type, call_key,
                               request_key, state, next_attempt_at, deadline_at, requested_at)
            SELECT 'revoke', certificate_id, recipient_id, citizen_ref, certificate_type, $13, request_key,
                   'pending', $4, $14, $4
            FROM done WHERE $3 = 'delivered' AND kind = 'send' AND certificate_status = 'revoked'
            ON CONFLICT (certificate_id, recipient_id, kind) DO NOTHING
        )
        SELECT true FROM done
        """,
        row.id, row.attempts, state.value, now, failure_code, error, reference,
        event_id, topic, key, value, headers, uuid.uuid4(), revoke_deadline,
    )  # fmt: skip
    return bool(done)


async def finish_many(conn: Connection | Pool, finishes: Sequence[Finish]) -> set[int]:
    """`finish` of many rows in one statement (one round trip, one commit); the ids of the rows whose claim held."""
    if not finishes:
        return set()
    outcomes = [f.outcome or (None, None, None, None, None) for f in finishes]
    rows = await conn.fetch(
        """
        WITH input AS (
            SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                                 $7::text[], $8::uuid[], $9::text[], $10::bytea[], $11::bytea[], $12::text[],
                                 $13::uuid[], $14::timestamptz[])
                AS i(id, attempts, new_state, at, failure_code, error, reference, event_id, topic, key, value,
                     headers, revoke_key, revoke_deadline)
        ), done AS (
            UPDATE sends s SET state = i.new_state, finished_at = i.at, failure_code = i.failure_code,
                               last_error = coalesce(i.error, s.last_error), recipient_reference = i.reference,
                               claimed_by = NULL, revoked_document = NULL
            FROM input i
            WHERE s.id = i.id AND s.attempts = i.attempts AND s.state = 'in_flight'
            RETURNING s.id, s.kind, s.certificate_id, s.recipient_id, s.citizen_ref, s.certificate_type,
                      s.request_key, i.new_state, i.at, i.event_id, i.topic, i.key, i.value, i.headers, i.revoke_key,
                      i.revoke_deadline,
                      (SELECT status FROM certificates c WHERE c.id = s.certificate_id) AS certificate_status
        ), event AS (
            INSERT INTO outbox (event_id, topic, key, value, headers)
            SELECT event_id, topic, key, value, headers::jsonb FROM done WHERE event_id IS NOT NULL ORDER BY id
        ), revocation AS (
            INSERT INTO sends (kind, certificate_id, recipient_id, citizen_ref, certificate_type, call_key,
                               request_key, state, next_attempt_at, deadline_at, requested_at)
            SELECT 'revoke', certificate_id, recipient_id, citizen_ref, certificate_type, revoke_key, request_key,
                   'pending', at, revoke_deadline, at
            FROM done WHERE new_state = 'delivered' AND kind = 'send' AND certificate_status = 'revoked'
            ON CONFLICT (certificate_id, recipient_id, kind) DO NOTHING
        )
        SELECT id FROM done
        """,
        [f.row.id for f in finishes], [f.row.attempts for f in finishes], [f.state.value for f in finishes],
        [f.now for f in finishes], [f.failure_code for f in finishes], [f.error for f in finishes],
        [f.reference for f in finishes], [o[0] for o in outcomes], [o[1] for o in outcomes], [o[2] for o in outcomes],
        [o[3] for o in outcomes], [orjson.dumps(o[4]).decode() if o[4] is not None else None for o in outcomes],
        [uuid.uuid4() for _ in finishes], [f.revoke_deadline for f in finishes],
    )  # fmt: skip
    return {row["id"] for row in rows}


async def reschedule(pool: Pool, row_id: int, attempts: int, *, state: SendState, at: datetime, error: str) -> bool:
    """Put a claimed row back on the schedule after a failed attempt."""
    result = await pool.fetchval(
        """
        UPDATE sends SET state = $3, next_attempt_at = $4, last_error = $5, claimed_by = NULL
        WHERE id = $1 AND attempts = $2 AND state = 'in_flight'
        RETURNING true
        """,
        row_id, attempts, state.value, at, error,
    )  # fmt: skip
    return bool(result)


async def make_due(pool: Pool, recipient_id: str, now: datetime) -> int:
    """Every unfinished send of a recipient that waits for a later retry, and is not being worked on, due now."""
    result: str = await pool.execute(
        """
        UPDATE sends SET next_attempt_at = $2
        WHERE recipient_id = $1 AND state IN ('pending', 'in_flight') AND claimed_by IS NULL AND next_attempt_at > $2
        """,
        recipient_id, now,
    )  # fmt: skip
    return int(result.rsplit(" ", 1)[1])


async def release_orphans(pool: Pool, *, lock_class: int, now: datetime) -> int:
    """Rows leased to a process that is gone (its advisory lock went with its connection) are due at once."""
    result: str = await pool.execute(
        """
        UPDATE sends SET next_attempt_at = $2, claimed_by = NULL
        WHERE state = 'in_flight' AND claimed_by IS NOT NULL AND next_attempt_at > $2
          AND claimed_by NOT IN (
              SELECT objid::bigint::integer FROM pg_locks
              WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2 AND granted)
        """,
        lock_class, now,
    )  # fmt: skip
    return int(result.rsplit(" ", 1)[1])


async def retry_now(
    conn: Connection | Pool, ident: str, *, now: datetime, deadline_at: datetime, operator: str
) -> list[SendRow]:
    """Operator: a failed row back in the queue (same key, new deadline); an unfinished one due now. Only rows of a
    request the citizen made exist; the operator's identity and the time are kept on the row."""
    by_id = int(ident) if ident.isdigit() else None
    rows = await conn.fetch(
        f"""
        UPDATE sends SET
            state = CASE WHEN state = 'failed' THEN 'pending' ELSE state END,
            deadline_at = CASE WHEN state = 'failed' THEN $3 ELSE deadline_at END,
            failure_code = CASE WHEN state = 'failed' THEN NULL ELSE failure_code END,
            finished_at = CASE WHEN state = 'failed' THEN NULL ELSE finished_at END,
            next_attempt_at = $2, claimed_by = NULL, retried_by = $5, retried_at = $2
        WHERE (id = $4 OR certificate_id = $1) AND state <> 'delivered'
        RETURNING {_SEND_COLUMNS}
        """,  # noqa: S608 - constant columns
        ident, now, deadline_at, by_id, operator,
    )  # fmt: skip
    return [_send(r) for r in rows]


async def list_sends(conn: Connection | Pool, *, failed: bool, stuck_before: datetime | None) -> list[SendRow]:
    """Operator: failed rows, or rows unfinished since before `stuck_before`."""
    if failed:
        where, args = "state = 'failed'", []
    else:
        where, args = "state IN ('pending', 'in_flight') AND requested_at < $1", [stuck_before]
    rows = await conn.fetch(f"SELECT {_SEND_COLUMNS} FROM sends WHERE {where} ORDER BY id LIMIT 1000", *args)  # noqa: S608
    return [_send(r) for r in rows]


async def due_counts(pool: Pool) -> Sequence[asyncpg.Record]:
    """Unfinished rows per recipient and state (metrics)."""
    return await pool.fetch(
        "SELECT recipient_id, state, count(*) AS n FROM sends WHERE state IN ('pending', 'in_flight') "
        "GROUP BY recipient_id, state"
    )


# --- requests waiting for their certificate ----------------------------------------------------------------


@dataclass(frozen=True)
class WaitingRequest:
    request_key: uuid.UUID
    certificate_id: str
    recipient_id: str
    citizen_ref: str
    requested_at: datetime
    correlation_id: str


_WAITING_COLUMNS = "request_key, certificate_id, recipient_id, citizen_ref, requested_at, correlation_id"


async def wait_for_certificate(conn: Connection, request: WaitingRequest, expires_at: datetime) -> None:
    await conn.execute(
        f"INSERT INTO waiting_requests ({_WAITING_COLUMNS}, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "  # noqa: S608
        "ON CONFLICT DO NOTHING",
        request.request_key, request.certificate_id, request.recipient_id, request.citizen_ref,
        request.requested_at, request.correlation_id, expires_at,
    )  # fmt: skip


async def take_waiting(conn: Connection, certificate_id: str) -> list[WaitingRequest]:
    """The requests that waited for this certificate, removed."""
    rows = await conn.fetch(
        f"DELETE FROM waiting_requests WHERE certificate_id = $1 RETURNING {_WAITING_COLUMNS}",  # noqa: S608
        certificate_id,
    )
    return [WaitingRequest(**dict(r.items())) for r in sorted(rows, key=lambda r: r["requested_at"])]


async def take_expired(conn: Connection, now: datetime, limit: int = 500) -> list[WaitingRequest]:
    rows = await conn.fetch(
        f"""
        DELETE FROM waiting_requests WHERE request_key IN (
            SELECT request_key FROM waiting_requests WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING {_WAITING_COLUMNS}
        """,  # noqa: S608 - constant columns
        now, limit,
    )  # fmt: skip
    return [WaitingRequest(**dict(r.items())) for r in rows]
