"""All SQL of the Försäkringskassan simulator: receipts, revocations, injected-fault counts."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.kit.db import Pool
from services.kit.groupcommit import GroupCommit


class ReceiveOutcome(enum.Enum):
    STORED = "stored"
    REPLAYED = "replayed"  # the same key again, for the same certificate: the first receipt is the answer
    KEY_CONFLICT = "key_conflict"  # the same key for another certificate


class RevokeOutcome(enum.Enum):
    REVOKED = "revoked"
    ALREADY_REVOKED = "already_revoked"
    KEY_CONFLICT = "key_conflict"
    UNKNOWN_CERTIFICATE = "unknown_certificate"


@dataclass(frozen=True)
class Receipt:
    seq: int
    receipt_id: uuid.UUID
    idempotency_key: uuid.UUID
    certificate_id: str
    certificate_type: str
    sender: str
    caller: str
    received_at: datetime
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Revocation:
    revocation_id: uuid.UUID
    idempotency_key: uuid.UUID
    certificate_id: str
    sender: str
    caller: str
    reason: str | None
    received_at: datetime


@dataclass(frozen=True)
class Stats:
    received: int
    distinct_certificates: int
    duplicates_by_key: int
    revocations: int
    faults_injected_by_kind: dict[str, int]


_RECEIPT_COLUMNS = "seq, receipt_id, idempotency_key, certificate_id, certificate_type, sender, caller, received_at"
_REVOCATION_COLUMNS = "revocation_id, idempotency_key, certificate_id, sender, caller, reason, received_at"


def _receipt(row: asyncpg.Record) -> Receipt:
    return Receipt(**dict(row.items()))


def _revocation(row: asyncpg.Record) -> Revocation:
    return Revocation(**dict(row.items()))


async def receive(
    pool: Pool,
    *,
    idempotency_key: uuid.UUID,
    certificate_id: str,
    certificate_type: str,
    sender: str,
    caller: str,
    body: str,
    now: datetime,
) -> tuple[ReceiveOutcome, Receipt]:
    """Store a certificate once per idempotency key; a repeated key returns the receipt it got the first time.

    `body`: the request body as received (JSON text). `ReceiptWriter` stores new keys faster, in groups; this is
    the path of a key already used."""
    async with pool.acquire() as conn, conn.transaction():
        # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key, so the SELECT below sees it.
        row = await conn.fetchrow(
            f"""
            INSERT INTO receipts (receipt_id, idempotency_key, certificate_id, certificate_type, sender, caller,
                                  received_at, body)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING {_RECEIPT_COLUMNS}
            """,  # noqa: S608 - a constant column list
            uuid.uuid4(),
            idempotency_key,
            certificate_id,
            certificate_type,
            sender,
            caller,
            now,
            body,
        )
        if row is not None:
            return ReceiveOutcome.STORED, _receipt(row)
        existing = await conn.fetchrow(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE idempotency_key = $1",  # noqa: S608 - constant columns
            idempotency_key,
        )
        assert existing is not None, "a conflicting key must exist"
        if existing["certificate_id"] != certificate_id:
            return ReceiveOutcome.KEY_CONFLICT, _receipt(existing)
        await conn.execute("UPDATE receipts SET replays = replays + 1 WHERE idempotency_key = $1", idempotency_key)
        return ReceiveOutcome.REPLAYED, _receipt(existing)


@dataclass(frozen=True)
class NewReceipt:
    """A certificate to store; `body` is the request body as received (JSON text)."""

    idempotency_key: uuid.UUID
    certificate_id: str
    certificate_type: str
    sender: str
    caller: str
    body: str
    received_at: datetime


async def insert_new(pool: Pool, items: Sequence[NewReceipt]) -> dict[uuid.UUID, Receipt]:
    """Store many receipts in one statement (one commit); the ones stored, by key. A key already stored (or given
    twice in `items`) is left out of the answer: `receive` answers it, as a replay or a conflict."""
    rows = await pool.fetch(
        f"""
        INSERT INTO receipts (receipt_id, idempotency_key, certificate_id, certificate_type, sender, caller,
                              received_at, body)
        SELECT r, k, c, t, s, ca, a, b::jsonb
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
                    $8::text[]) AS u(r, k, c, t, s, ca, a, b)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING {_RECEIPT_COLUMNS}
        """,  # noqa: S608 - a constant column list
        [uuid.uuid4() for _ in items],
        [i.idempotency_key for i in items],
        [i.certificate_id for i in items],
        [i.certificate_type for i in items],
        [i.sender for i in items],
        [i.caller for i in items],
        [i.received_at for i in items],
        [i.body for i in items],
    )
    return {row["idempotency_key"]: _receipt(row) for row in rows}


class ReceiptWriter:
    """Group commit (`kit.groupcommit`): the receipts of concurrent requests are stored together, in one statement
    and one commit, while the previous group is being written. Each request is answered after the commit of its
    receipt, as before; only the number of round trips and commits goes down (one per group instead of three per
    request)."""

    def __init__(self, pool: Callable[[], Pool], max_group: int = 500) -> None:
        self._pool = pool
        self._group: GroupCommit[NewReceipt, Receipt | None] = GroupCommit(self._write_group, max_group)

    async def insert(self, item: NewReceipt) -> Receipt | None:
        """The receipt stored for `item`, or None if its key was already used (see `receive`)."""
        return await self._group.submit(item)

    async def _write_group(self, group: list[NewReceipt]) -> list[Receipt | BaseException | None]:
        firsts: dict[uuid.UUID, NewReceipt] = {}
        for item in group:
            firsts.setdefault(item.idempotency_key, item)
        # an error reaches every request of the group (a 500): none is answered stored
        stored = await insert_new(self._pool(), list(firsts.values()))
        # popped: a second use of a key in the group is not "stored"
        return [stored.pop(item.idempotency_key, None) for item in group]

    async def close(self) -> None:
        """Wait for the group being written."""
        await self._group.close()


class RivOutcome(enum.Enum):
    STORED = "stored"
    ALREADY_RECEIVED = "already_received"  # the same certificate, same patient: answered INFO, not stored again
    OTHER_PATIENT = "other_patient"  # the same certificate id for another patient


def riv_key(certificate_id: str) -> uuid.UUID:
    """The receipt key of a certificate registered over RIV-TA: one receipt per certificate id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fksim:riv:{certificate_id}")


def riv_revocation_key(certificate_id: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fksim:riv-revocation:{certificate_id}")


async def receive_riv(
    pool: Pool, *, certificate_id: str, certificate_type: str, person_id: str, sender: str, caller: str, body: str,
    now: datetime,
) -> tuple[RivOutcome, Receipt]:  # fmt: skip
    """Store a RegisterCertificate once per certificate id. `body`: JSON text holding the XML as received and the
    patient's id (`{"riv": {"person_id": …, "xml": …}}`), so a later one for another patient is told apart."""
    key = riv_key(certificate_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""
            INSERT INTO receipts (receipt_id, idempotency_key, certificate_id, certificate_type, sender, caller,
                                  received_at, body)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING {_RECEIPT_COLUMNS}
            """,  # noqa: S608 - a constant column list
            uuid.uuid4(), key, certificate_id, certificate_type, sender, caller, now, body,
        )  # fmt: skip
        if row is not None:
            return RivOutcome.STORED, _receipt(row)
        existing = await conn.fetchrow(
            f"SELECT {_RECEIPT_COLUMNS}, body #>> '{{riv,person_id}}' AS person_id FROM receipts "  # noqa: S608
            "WHERE idempotency_key = $1",
            key,
        )
        assert existing is not None, "a conflicting key must exist"
        fields = dict(existing.items())
        stored_person = fields.pop("person_id")
        if stored_person != person_id:
            return RivOutcome.OTHER_PATIENT, Receipt(**fields)
        await conn.execute("UPDATE receipts SET replays = replays + 1 WHERE idempotency_key = $1", key)
        return RivOutcome.ALREADY_RECEIVED, Receipt(**fields)


async def riv_patient(pool: Pool, certificate_id: str) -> str | None:
    """The patient of a certificate registered over RIV-TA, None if it was not."""
    found: str | None = await pool.fetchval(
        "SELECT body #>> '{riv,person_id}' FROM receipts WHERE idempotency_key = $1", riv_key(certificate_id)
    )
    return found


async def receipts_for(pool: Pool, certificate_id: str, idempotency_key: uuid.UUID | None = None) -> list[Receipt]:
    """Every receipt of one certificate, oldest first; optionally only the one of a given key."""
    rows = await pool.fetch(
        f"""
        SELECT {_RECEIPT_COLUMNS} FROM receipts
        WHERE certificate_id = $1 AND ($2::uuid IS NULL OR idempotency_key = $2)
        ORDER BY seq
        """,  # noqa: S608 - a constant column list
        certificate_id,
        idempotency_key,
    )
    return [_receipt(r) for r in rows]


async def received_page(pool: Pool, *, after: int, limit: int, with_body: bool) -> list[Receipt]:
    """Receipts with a sequence number above `after`, in order."""
    columns = f"{_RECEIPT_COLUMNS}, body" if with_body else _RECEIPT_COLUMNS
    rows = await pool.fetch(
        f"SELECT {columns} FROM receipts WHERE seq > $1 ORDER BY seq LIMIT $2",  # noqa: S608 - constant columns
        after,
        limit,
    )
    return [_receipt(r) for r in rows]


async def revoke(
    pool: Pool,
    *,
    idempotency_key: uuid.UUID,
    certificate_id: str,
    sender: str,
    caller: str,
    reason: str | None,
    now: datetime,
) -> tuple[RevokeOutcome, Revocation | None]:
    """Record the revocation of a received certificate, once; repeats answer with the first revocation."""
    select_by_key = f"SELECT {_REVOCATION_COLUMNS} FROM revocations WHERE idempotency_key = $1"  # noqa: S608
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM receipts WHERE certificate_id = $1)", certificate_id):
            return RevokeOutcome.UNKNOWN_CERTIFICATE, None
        # Either unique constraint (key or certificate) may be hit; both mean "already recorded".
        row = await conn.fetchrow(
            f"""
            INSERT INTO revocations (revocation_id, idempotency_key, certificate_id, sender, caller, reason,
                                     received_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT DO NOTHING
            RETURNING {_REVOCATION_COLUMNS}
            """,  # noqa: S608 - a constant column list
            uuid.uuid4(),
            idempotency_key,
            certificate_id,
            sender,
            caller,
            reason,
            now,
        )
        if row is not None:
            return RevokeOutcome.REVOKED, _revocation(row)
        by_key = await conn.fetchrow(select_by_key, idempotency_key)
        if by_key is not None and by_key["certificate_id"] != certificate_id:
            return RevokeOutcome.KEY_CONFLICT, _revocation(by_key)
        existing = await conn.fetchrow(
            f"SELECT {_REVOCATION_COLUMNS} FROM revocations WHERE certificate_id = $1",  # noqa: S608
            certificate_id,
        )
        assert existing is not None, "a conflicting revocation must exist"
        await conn.execute("UPDATE revocations SET replays = replays + 1 WHERE certificate_id = $1", certificate_id)
        return RevokeOutcome.ALREADY_REVOKED, _revocation(existing)


async def revocation_for(pool: Pool, certificate_id: str) -> Revocation | None:
    """The revocation of a certificate, if one was received."""
    row = await pool.fetchrow(
        f"SELECT {_REVOCATION_COLUMNS} FROM revocations WHERE certificate_id = $1",  # noqa: S608
        certificate_id,
    )
    return _revocation(row) if row is not None else None


async def count_fault(pool: Pool, kind: str, count: int = 1) -> None:
    """Add `count` to the count of injected faults of `kind`."""
    await pool.execute(
        "INSERT INTO faults_injected (kind, count) VALUES ($1, $2) "
        "ON CONFLICT (kind) DO UPDATE SET count = faults_injected.count + EXCLUDED.count",
        kind,
        count,
    )


async def stats(pool: Pool) -> Stats:
    """What was received, counted."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        totals = await conn.fetchrow(
            "SELECT count(*) AS received, count(DISTINCT certificate_id) AS distinct_certificates, "
            "coalesce(sum(replays), 0) AS duplicates_by_key FROM receipts"
        )
        revocations: int = await conn.fetchval("SELECT count(*) FROM revocations")
        faults = await conn.fetch("SELECT kind, count FROM faults_injected")
    assert totals is not None
    return Stats(
        received=totals["received"],
        distinct_certificates=totals["distinct_certificates"],
        duplicates_by_key=int(totals["duplicates_by_key"]),
        revocations=revocations,
        faults_injected_by_kind={r["kind"]: r["count"] for r in faults},
    )


async def reset(pool: Pool) -> None:
    """Forget everything received (demos). Sequence numbers continue, so list cursors never go back."""
    await pool.execute("TRUNCATE receipts, revocations, faults_injected")


async def ping(pool: Pool) -> None:
    """Raises unless the database answers."""
    await pool.fetchval("SELECT 1")
