"""All of the portal's SQL: the read model, send requests, access log, citizen requests and sessions.

Queries return typed rows (NamedTuples built straight from asyncpg's records with `_make`: one C-level tuple copy a
row, no per-field validation, so the list page stays one statement and cheap). The columns of each SELECT are
written in the order of its row type's fields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from schemas.certificate import Certificate, RelationKind
from services.kit.db import Connection, Pool
from services.portal.domain import RECIPIENT_NAMES

# --- Rows -------------------------------------------------------------------------------------------------


class ListRow(NamedTuple):
    """A certificate as Mina intyg lists it (`_LIST_COLUMNS`)."""

    id: str
    type: str
    signed_at: datetime
    care_unit_hsa: str
    care_unit_name: str
    issuer_name: str
    replaced_by: str | None
    archived: bool
    test_patient: bool
    send_state: str | None  # the latest send request to Försäkringskassan that counts (see `_LIST_COLUMNS`)


class CertificateRow(NamedTuple):
    """One certificate: its list columns and the stored document (the released certificate as JSON)."""

    listed: ListRow
    document: dict[str, Any]


class LockedCertificate(NamedTuple):
    id: str
    type: str
    replaced_by: str | None
    test_patient: bool


class HistoryRow(NamedTuple):
    party: str
    state: str  # RECEIVED, SENT, ARCHIVED, RESTORED, REPLACED
    detail: str | None
    at: datetime


class CitizenHistoryRow(NamedTuple):
    certificate_id: str
    party: str
    state: str
    detail: str | None
    at: datetime


class DispatchRow(NamedTuple):
    idempotency_key: UUID
    recipient_id: str
    state: str  # REQUESTED, SUCCEEDED, FAILED
    requested_at: datetime
    outcome_at: datetime | None
    reason_code: str | None
    reason: str | None


class CitizenDispatchRow(NamedTuple):
    certificate_id: str
    recipient_id: str
    state: str
    requested_at: datetime
    outcome_at: datetime | None
    reason: str | None


class AccessLogRow(NamedTuple):
    certificate_id: str | None
    action: str
    outcome: str
    at: datetime
    actor: str | None  # None: the citizen; a party's code (action 'fetched'); else the operator who acted


class CitizenRequestRow(NamedTuple):
    id: int
    kind: str  # RECTIFICATION, BLOCKING
    certificate_id: str | None
    message: str
    at: datetime


class DocumentRow(NamedTuple):
    id: str
    archived: bool
    replaced_by: str | None
    released_at: datetime
    document: dict[str, Any]


class PreLogin(NamedTuple):
    """A started login: what the callback checks and trades."""

    created_at: datetime
    oidc_state: str
    oidc_nonce: str
    code_verifier: str


class SessionRow(NamedTuple):
    """An authenticated session's columns (`_CURRENT_SESSION`)."""

    citizen_ref: str
    personnummer: str
    given_name: str
    family_name: str
    csrf_token: str
    consent_given: bool
    last_seen: datetime


# --- Read model (written by the consumer) -----------------------------------------------------------------


async def insert_certificate(
    conn: Connection, *, citizen_ref: str, certificate: Certificate, test_patient: bool, released_at: datetime
) -> bool:
    """Add a released certificate unless it is known or revoked; link it with a certificate it replaces or that
    replaces it, whichever arrived first. True if it was added."""
    cert_id = certificate.id
    relation = certificate.relation
    signed_at = certificate.signed_at
    care_unit_name = certificate.care_unit.name
    inserted = await conn.fetchval(
        """
        INSERT INTO certificates (id, citizen_ref, type, signed_at, care_unit_hsa, care_unit_name, issuer_name,
                                  document, relation_kind, relation_to, test_patient, released_at)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
        WHERE NOT EXISTS (SELECT 1 FROM revocations WHERE certificate_id = $1)
        ON CONFLICT (id) DO NOTHING
        RETURNING true
        """,
        cert_id,
        citizen_ref,
        certificate.type,
        signed_at,
        certificate.care_unit.hsa_id,
        care_unit_name,
        certificate.issuer.name,
        certificate.model_dump(mode="json"),
        None if relation is None else relation.kind.value,
        None if relation is None else relation.certificate_id,
        test_patient,
        released_at,
    )
    if not inserted:
        return False
    await _restore_kept(conn, citizen_ref, cert_id, care_unit_name, released_at)
    if relation is not None and relation.kind is RelationKind.REPLACES:
        await _mark_replaced(conn, citizen_ref, relation.certificate_id, cert_id, signed_at)
    newer = await conn.fetchrow(
        "SELECT id, signed_at FROM certificates WHERE relation_to = $1 AND relation_kind = 'REPLACES' "
        "AND citizen_ref = $2 ORDER BY signed_at DESC LIMIT 1",
        cert_id,
        citizen_ref,
    )
    if newer is not None:
        await _mark_replaced(conn, citizen_ref, cert_id, newer["id"], newer["signed_at"])
    return True


async def _restore_kept(
    conn: Connection, citizen_ref: str, certificate_id: str, care_unit_name: str, released_at: datetime
) -> None:
    """The history of a certificate just added: "Mottaget" when it was first received; and, for one released again
    after a new consent, the archive flag and the citizen's own history it had, and sends dispatch told before the
    release was read here."""
    kept = sorted(
        await conn.fetch(
            "DELETE FROM kept_history WHERE certificate_id = $1 AND citizen_ref = $2 RETURNING id, party, state, at",
            certificate_id,
            citizen_ref,
        ),
        key=lambda r: r["id"],
    )
    received = [r for r in kept if r["state"] == "RECEIVED"]
    if not received:
        await add_history(conn, certificate_id, care_unit_name, "RECEIVED", None, released_at)
    for row in kept:
        party = care_unit_name if row["state"] == "RECEIVED" else row["party"]
        await add_history(conn, certificate_id, party, row["state"], None, row["at"])
    own = [r for r in kept if r["state"] != "RECEIVED"]
    if own and own[-1]["state"] == "ARCHIVED":
        await conn.execute("UPDATE certificates SET archived = true WHERE id = $1", certificate_id)
    early = await conn.fetch(
        "DELETE FROM early_outcomes WHERE certificate_id = $1 AND citizen_ref = $2 "
        "RETURNING idempotency_key, recipient_id, at",
        certificate_id,
        citizen_ref,
    )
    for row in early:
        changed = await record_dispatch_outcome(
            conn,
            idempotency_key=row["idempotency_key"],
            certificate_id=certificate_id,
            citizen_ref=citizen_ref,
            recipient_id=row["recipient_id"],
            succeeded=True,
            at=row["at"],
            reason_code=None,
            reason=None,
        )
        if changed:
            name = RECIPIENT_NAMES.get(row["recipient_id"], row["recipient_id"])
            await add_history(conn, certificate_id, name, "SENT", name, row["at"])


async def _mark_replaced(conn: Connection, citizen_ref: str, old_id: str, new_id: str, at: datetime) -> None:
    updated = await conn.fetchval(
        "UPDATE certificates SET replaced_by = $3 WHERE id = $1 AND citizen_ref = $2 "
        "AND replaced_by IS DISTINCT FROM $3 RETURNING document->'care_unit'->>'name'",
        old_id,
        citizen_ref,
        new_id,
    )
    if updated is not None:
        await add_history(conn, old_id, updated, "REPLACED", new_id, at)


async def add_history(
    conn: Connection, certificate_id: str, party: str, state: str, detail: str | None, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO status_history (certificate_id, party, state, detail, at) VALUES ($1, $2, $3, $4, $5)",
        certificate_id,
        party,
        state,
        detail,
        at,
    )


async def revoke(conn: Connection, citizen_ref: str, certificate_id: str, revoked_at: datetime) -> None:
    """Remember the revocation (it may come first) and remove the certificate with everything hanging on it."""
    await conn.execute(
        "INSERT INTO revocations (certificate_id, citizen_ref, revoked_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (certificate_id) DO NOTHING",
        certificate_id,
        citizen_ref,
        revoked_at,
    )
    await conn.execute("DELETE FROM certificates WHERE id = $1 AND citizen_ref = $2", certificate_id, citizen_ref)
    await conn.execute("DELETE FROM kept_history WHERE certificate_id = $1", certificate_id)
    await conn.execute("DELETE FROM early_outcomes WHERE certificate_id = $1", certificate_id)
    # A revoked replacement no longer replaces anything.
    await conn.execute(
        "UPDATE certificates SET replaced_by = NULL WHERE replaced_by = $1 AND citizen_ref = $2",
        certificate_id,
        citizen_ref,
    )


async def delete_citizen_data(conn: Connection, citizen_ref: str) -> int:
    """Consent withdrawn: the citizen's certificates, status history and send requests go (cascade).

    Kept: revocation markers (an id and the pseudonymous ref, so a revoked certificate stays gone), the access
    log and the citizen's rectification/blocking requests (the audit trail and legal requests, no certificate
    content), and per certificate id when it was received and the citizen's own archive/restore actions
    (`kept_history`: state and time),
    given back when the certificate is released again. Sends are dispatch's to tell again. Sessions keep working
    only for the consent page (consent_given is cleared)."""
    await conn.execute(
        "INSERT INTO kept_history (certificate_id, citizen_ref, party, state, at) "
        # Not the care unit's name (where the citizen got care): it comes back with the certificate.
        "SELECT h.certificate_id, c.citizen_ref, CASE WHEN h.state = 'RECEIVED' THEN '' ELSE h.party END, h.state, "
        "h.at FROM status_history h "
        "JOIN certificates c ON c.id = h.certificate_id "
        "WHERE c.citizen_ref = $1 AND h.state IN ('RECEIVED', 'ARCHIVED', 'RESTORED') ORDER BY h.at, h.id",
        citizen_ref,
    )
    await conn.execute("DELETE FROM early_outcomes WHERE citizen_ref = $1", citizen_ref)
    deleted = await conn.fetchval(
        "WITH d AS (DELETE FROM certificates WHERE citizen_ref = $1 RETURNING 1) SELECT count(*) FROM d",
        citizen_ref,
    )
    await conn.execute("DELETE FROM dispatches WHERE citizen_ref = $1", citizen_ref)
    await conn.execute(
        "UPDATE sessions SET consent_given = false WHERE citizen_ref = $1 AND consent_given", citizen_ref
    )
    return int(deleted)


async def record_dispatch_outcome(
    conn: Connection,
    *,
    idempotency_key: UUID,
    certificate_id: str,
    citizen_ref: str,
    recipient_id: str,
    succeeded: bool,
    at: datetime,
    reason_code: str | None,
    reason: str | None,
) -> bool:
    """Apply an outcome to its send request (or to a request the portal has not seen). True if it changed state."""
    exists = await conn.fetchval(
        "SELECT true FROM certificates WHERE id = $1 AND citizen_ref = $2", certificate_id, citizen_ref
    )
    if not exists:
        revoked = await conn.fetchval("SELECT true FROM revocations WHERE certificate_id = $1", certificate_id)
        if succeeded and not revoked:
            # Not here (yet): after a new consent dispatch tells its sends again, maybe before the release is read.
            await conn.execute(
                "INSERT INTO early_outcomes (idempotency_key, certificate_id, citizen_ref, recipient_id, at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                idempotency_key,
                certificate_id,
                citizen_ref,
                recipient_id,
                at,
            )
        return False
    state = "SUCCEEDED" if succeeded else "FAILED"
    changed = await conn.fetchval(
        """
        UPDATE dispatches SET state = $2, outcome_at = $3, reason_code = $4, reason = $5
        WHERE idempotency_key = $1 AND state <> 'SUCCEEDED'
        RETURNING true
        """,
        idempotency_key,
        state,
        at,
        reason_code,
        reason,
    )
    if not changed:
        known = await conn.fetchval("SELECT true FROM dispatches WHERE idempotency_key = $1", idempotency_key)
        if known:
            return False
        changed = await conn.fetchval(
            """
            INSERT INTO dispatches (idempotency_key, certificate_id, citizen_ref, recipient_id, state, requested_at,
                                    outcome_at, reason_code, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true
            """,
            idempotency_key,
            certificate_id,
            citizen_ref,
            recipient_id,
            state,
            at,
            reason_code,
            reason,
        )
        if not changed:
            return False
    return True


# --- Queries for the pages and the API ------------------------------------------------------------------

# The columns of `ListRow`, in its order.
_LIST_COLUMNS = """
    c.id, c.type, c.signed_at, c.care_unit_hsa, c.care_unit_name, c.issuer_name, c.replaced_by, c.archived,
    c.test_patient,
    (SELECT d.state FROM dispatches d WHERE d.certificate_id = c.id AND d.recipient_id = 'FKASSA'
      ORDER BY (d.state IN ('REQUESTED', 'SUCCEEDED')) DESC, d.requested_at DESC LIMIT 1) AS send_state
"""
_LIST_WIDTH = len(ListRow._fields)


async def list_certificates(conn: Connection | Pool, citizen_ref: str, logged_at: datetime) -> list[ListRow]:
    """One citizen's certificates (archived ones too), newest first; the access-log row of the listing is written
    by the same statement (one round trip, one commit)."""
    rows = await conn.fetch(
        "WITH logged AS (INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at) "  # noqa: S608 - constant columns
        "VALUES ($1, NULL, 'list', 'ok', $2)) "
        f"SELECT {_LIST_COLUMNS} FROM certificates c WHERE c.citizen_ref = $1 ORDER BY c.signed_at DESC, c.id",
        citizen_ref,
        logged_at,
    )
    return list(map(ListRow._make, rows))


async def get_certificate(conn: Connection | Pool, citizen_ref: str, certificate_id: str) -> CertificateRow | None:
    """One certificate of this citizen (None for another citizen's id or an unknown one)."""
    row = await conn.fetchrow(
        f"SELECT {_LIST_COLUMNS}, c.document FROM certificates c WHERE c.id = $1 AND c.citizen_ref = $2",  # noqa: S608
        certificate_id,
        citizen_ref,
    )
    return None if row is None else CertificateRow(ListRow._make(row[:_LIST_WIDTH]), row["document"])


async def owner_of(conn: Connection | Pool, certificate_id: str) -> str | None:
    """The citizen ref a certificate belongs to (None if the portal does not have it)."""
    owner: str | None = await conn.fetchval("SELECT citizen_ref FROM certificates WHERE id = $1", certificate_id)
    return owner


async def history(conn: Connection | Pool, certificate_id: str) -> list[HistoryRow]:
    rows = await conn.fetch(
        "SELECT party, state, detail, at FROM status_history WHERE certificate_id = $1 ORDER BY at, id",
        certificate_id,
    )
    return list(map(HistoryRow._make, rows))


async def dispatches(conn: Connection | Pool, certificate_id: str) -> list[DispatchRow]:
    rows = await conn.fetch(
        "SELECT idempotency_key, recipient_id, state, requested_at, outcome_at, reason_code, reason "
        "FROM dispatches WHERE certificate_id = $1 ORDER BY requested_at",
        certificate_id,
    )
    return list(map(DispatchRow._make, rows))


async def set_archived(conn: Connection, citizen_ref: str, certificate_id: str, archived: bool, at: datetime) -> bool:
    """Archive or restore; True if the certificate is this citizen's (a repeated click changes nothing)."""
    was: bool | None = await conn.fetchval(
        "SELECT archived FROM certificates WHERE id = $1 AND citizen_ref = $2 FOR UPDATE", certificate_id, citizen_ref
    )
    if was is None:
        return False
    if was != archived:
        await conn.execute("UPDATE certificates SET archived = $2 WHERE id = $1", certificate_id, archived)
        await add_history(conn, certificate_id, "Du", "ARCHIVED" if archived else "RESTORED", None, at)
    return True


async def insert_dispatch_request(
    conn: Connection,
    *,
    idempotency_key: UUID,
    certificate_id: str,
    citizen_ref: str,
    recipient_id: str,
    at: datetime,
) -> str:
    """Record a send request: 'requested', 'duplicate' (same key again), 'conflict' (the key was used for another
    certificate) or 'active' (another request is already on its way or delivered)."""
    existing = await conn.fetchrow(
        "SELECT certificate_id, citizen_ref FROM dispatches WHERE idempotency_key = $1", idempotency_key
    )
    if existing is not None:
        same = existing["certificate_id"] == certificate_id and existing["citizen_ref"] == citizen_ref
        return "duplicate" if same else "conflict"
    inserted = await conn.fetchval(
        """
        INSERT INTO dispatches (idempotency_key, certificate_id, citizen_ref, recipient_id, state, requested_at)
        VALUES ($1, $2, $3, $4, 'REQUESTED', $5) ON CONFLICT DO NOTHING RETURNING true
        """,
        idempotency_key,
        certificate_id,
        citizen_ref,
        recipient_id,
        at,
    )
    return "requested" if inserted else "active"


async def lock_certificate(conn: Connection, citizen_ref: str, certificate_id: str) -> LockedCertificate | None:
    row = await conn.fetchrow(
        "SELECT id, type, replaced_by, test_patient FROM certificates WHERE id = $1 AND citizen_ref = $2 FOR UPDATE",
        certificate_id,
        citizen_ref,
    )
    return None if row is None else LockedCertificate._make(row)


# --- Fetched by a party (RIV-TA, services/portal/riv.py) ------------------------------------------------------


class FetchedRow(NamedTuple):
    """A certificate as a party (Försäkringskassan) fetches it: the released document and when it was sent there."""

    id: str
    citizen_ref: str
    document: dict[str, Any]
    sent_at: datetime | None  # the latest delivery to the party that succeeded


# Only what the portal holds is released (consent given, not withdrawn); a revoked certificate is deleted on its
# revocation and its marker kept, which is checked too; test patients' certificates are never given to a party.
_FETCHED = """
    SELECT c.id, c.citizen_ref, c.document,
      (SELECT max(d.outcome_at) FROM dispatches d
        WHERE d.certificate_id = c.id AND d.recipient_id = $1 AND d.state = 'SUCCEEDED') AS sent_at
    FROM certificates c
    WHERE NOT c.test_patient AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.certificate_id = c.id)
"""


async def certificates_for_party(
    conn: Connection | Pool, party: str, citizen_ref: str, types: Sequence[str], archived: bool
) -> list[FetchedRow]:
    """The citizen's certificates of `types` (all types if empty) the citizen has (not) archived, newest first."""
    rows = await conn.fetch(
        _FETCHED + "AND c.citizen_ref = $2 AND c.archived = $3 AND (cardinality($4::text[]) = 0 OR c.type = ANY($4)) "
        "ORDER BY c.signed_at DESC, c.id",
        party,
        citizen_ref,
        archived,
        list(types),
    )
    return list(map(FetchedRow._make, rows))


async def certificate_for_party(conn: Connection | Pool, party: str, certificate_id: str) -> FetchedRow | None:
    row = await conn.fetchrow(_FETCHED + "AND c.id = $2", party, certificate_id)
    return None if row is None else FetchedRow._make(row)


async def log_fetched(
    conn: Connection | Pool, citizen_ref: str, certificate_ids: Sequence[str], party: str, at: datetime
) -> None:
    """One access-log row per certificate a party fetched, the party as the actor."""
    await conn.execute(
        "INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at, actor) "
        "SELECT $1, id, 'fetched', 'ok', $3, $4 FROM unnest($2::text[]) WITH ORDINALITY AS f(id, n) ORDER BY n",
        citizen_ref,
        list(certificate_ids),
        at,
        party,
    )


# --- Access log and citizen requests -----------------------------------------------------------------------


async def log_access(
    conn: Connection | Pool, citizen_ref: str, certificate_id: str | None, action: str, outcome: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at) VALUES ($1, $2, $3, $4, $5)",
        citizen_ref,
        certificate_id,
        action,
        outcome,
        at,
    )


async def log_operator_action(
    conn: Connection | Pool, citizen_ref: str, certificate_id: str | None, action: str, operator: str, at: datetime
) -> None:
    """Record an operator's action on the citizen's record, with who did it (shown in the citizen's access log)."""
    await conn.execute(
        "INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at, actor) "
        "VALUES ($1, $2, $3, 'ok', $4, $5)",
        citizen_ref,
        certificate_id,
        action,
        at,
        operator,
    )


async def access_log(conn: Connection | Pool, citizen_ref: str, limit: int = 500) -> list[AccessLogRow]:
    rows = await conn.fetch(
        "SELECT certificate_id, action, outcome, at, actor FROM access_log WHERE citizen_ref = $1 "
        "ORDER BY id DESC LIMIT $2",
        citizen_ref,
        limit,
    )
    return list(map(AccessLogRow._make, rows))


async def add_request(
    conn: Connection | Pool, citizen_ref: str, kind: str, certificate_id: str | None, message: str, at: datetime
) -> int:
    request_id: int = await conn.fetchval(
        "INSERT INTO citizen_requests (citizen_ref, kind, certificate_id, message, at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        citizen_ref,
        kind,
        certificate_id,
        message,
        at,
    )
    return request_id


async def requests(conn: Connection | Pool, citizen_ref: str) -> list[CitizenRequestRow]:
    rows = await conn.fetch(
        "SELECT id, kind, certificate_id, message, at FROM citizen_requests WHERE citizen_ref = $1 ORDER BY id",
        citizen_ref,
    )
    return list(map(CitizenRequestRow._make, rows))


async def all_history(conn: Connection | Pool, certificate_ids: Sequence[str]) -> list[CitizenHistoryRow]:
    rows = await conn.fetch(
        "SELECT certificate_id, party, state, detail, at FROM status_history WHERE certificate_id = ANY($1::text[]) "
        "ORDER BY certificate_id, at, id",
        list(certificate_ids),
    )
    return list(map(CitizenHistoryRow._make, rows))


async def all_dispatches(conn: Connection | Pool, citizen_ref: str) -> list[CitizenDispatchRow]:
    rows = await conn.fetch(
        "SELECT certificate_id, recipient_id, state, requested_at, outcome_at, reason FROM dispatches "
        "WHERE citizen_ref = $1 ORDER BY requested_at",
        citizen_ref,
    )
    return list(map(CitizenDispatchRow._make, rows))


async def documents(conn: Connection | Pool, citizen_ref: str) -> list[DocumentRow]:
    rows = await conn.fetch(
        "SELECT id, archived, replaced_by, released_at, document FROM certificates WHERE citizen_ref = $1 "
        "ORDER BY signed_at DESC",
        citizen_ref,
    )
    return list(map(DocumentRow._make, rows))


# --- Sessions ---------------------------------------------------------------------------------------------


async def create_pre_login(
    conn: Connection | Pool, id_hash: bytes, *, csrf: str, state: str, nonce: str, verifier: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id_hash, kind, created_at, last_seen, csrf_token, oidc_state, oidc_nonce, "
        "code_verifier) VALUES ($1, 'PRE_LOGIN', $2, $2, $3, $4, $5, $6)",
        id_hash,
        now,
        csrf,
        state,
        nonce,
        verifier,
    )


async def take_pre_login(conn: Connection | Pool, id_hash: bytes) -> PreLogin | None:
    """Remove and return a pre-login session: its state, nonce and verifier serve exactly one callback."""
    row = await conn.fetchrow(
        "DELETE FROM sessions WHERE id_hash = $1 AND kind = 'PRE_LOGIN' "
        "RETURNING created_at, oidc_state, oidc_nonce, code_verifier",
        id_hash,
    )
    return None if row is None else PreLogin._make(row)


async def create_session(
    conn: Connection | Pool,
    id_hash: bytes,
    *,
    csrf: str,
    citizen_ref: str,
    personnummer: str,
    given_name: str,
    family_name: str,
    id_token: str,
    consent_given: bool,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id_hash, kind, created_at, last_seen, csrf_token, citizen_ref, personnummer, "
        "given_name, family_name, id_token, consent_given) "
        "VALUES ($1, 'AUTHENTICATED', $2, $2, $3, $4, $5, $6, $7, $8, $9)",
        id_hash,
        now,
        csrf,
        citizen_ref,
        personnummer,
        given_name,
        family_name,
        id_token,
        consent_given,
    )


# The authenticated session ($1 id hash) as `current`, unless idle since before $3 or created before $5 (its
# absolute lifetime); its idle clock restarted ($2) only if last restarted before $4. Shared by `touch_session` and
# `session_and_list`. A session past its lifetime is no longer touched, so the idle purge removes it.
_CURRENT_SESSION = """
        WITH current AS (
            SELECT citizen_ref, personnummer, given_name, family_name, csrf_token, consent_given, last_seen
            FROM sessions WHERE id_hash = $1 AND kind = 'AUTHENTICATED' AND last_seen >= $3 AND created_at >= $5
        ), touched AS (
            UPDATE sessions SET last_seen = $2
            WHERE id_hash = $1 AND last_seen < $4 AND EXISTS (SELECT 1 FROM current)
            RETURNING 1
        )"""
_SESSION_WIDTH = len(SessionRow._fields)


async def touch_session(
    conn: Connection | Pool,
    id_hash: bytes,
    now: datetime,
    idle_after: datetime,
    touch_before: datetime,
    created_after: datetime,
) -> asyncpg.Record | None:
    """The authenticated session, None if unknown or idle since before `idle_after`. Its idle clock restarts
    only if it was last restarted before `touch_before`: most requests then only read, and commit no write.

    The one query that still returns asyncpg's record: `security.session_from_row` reads it by column name."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""{_CURRENT_SESSION}
        SELECT * FROM current
        """,  # noqa: S608 - constant SQL
        id_hash,
        now,
        idle_after,
        touch_before,
        created_after,
    )
    return row


class SessionList(NamedTuple):
    session: SessionRow
    certificates: list[ListRow]  # empty without consent (nothing is then listed or logged)


async def session_and_list(
    conn: Connection | Pool,
    id_hash: bytes,
    now: datetime,
    idle_after: datetime,
    touch_before: datetime,
    created_after: datetime,
) -> SessionList | None:
    """`touch_session` and, for a session with consent, `list_certificates` with its access-log row, in one
    statement (one round trip, one commit). None: no such session (or it timed out)."""
    # Every row carries the session's columns; the certificate columns (`id` ...) are NULL in the one row of a
    # citizen without any, and in the one row of a session without consent.
    rows = await conn.fetch(
        f"""{_CURRENT_SESSION}, logged AS (
            INSERT INTO access_log (citizen_ref, certificate_id, action, outcome, at)
            SELECT citizen_ref, NULL, 'list', 'ok', $2 FROM current WHERE consent_given
        )
        SELECT s.*, l.* FROM current s LEFT JOIN LATERAL (
            SELECT {_LIST_COLUMNS} FROM certificates c
            WHERE c.citizen_ref = s.citizen_ref AND s.consent_given
        ) l ON true
        ORDER BY l.signed_at DESC, l.id
        """,  # noqa: S608 - constant columns
        id_hash,
        now,
        idle_after,
        touch_before,
        created_after,
    )
    if not rows:
        return None
    session = SessionRow._make(rows[0][:_SESSION_WIDTH])
    return SessionList(session, [ListRow._make(r[_SESSION_WIDTH:]) for r in rows if r[_SESSION_WIDTH] is not None])


async def delete_session(conn: Connection | Pool, id_hash: bytes) -> str | None:
    """Remove a session; returns its ID token (the hint for the identity provider's logout)."""
    token: str | None = await conn.fetchval(
        "DELETE FROM sessions WHERE id_hash = $1 RETURNING coalesce(id_token, '')", id_hash
    )
    return token


async def set_session_consent(conn: Connection | Pool, citizen_ref: str, given: bool) -> None:
    await conn.execute("UPDATE sessions SET consent_given = $2 WHERE citizen_ref = $1", citizen_ref, given)


async def purge_sessions(conn: Connection | Pool, idle_before: datetime, pre_login_before: datetime) -> int:
    result: str = await conn.execute(
        "DELETE FROM sessions WHERE (kind = 'AUTHENTICATED' AND last_seen < $1) "
        "OR (kind = 'PRE_LOGIN' AND created_at < $2)",
        idle_before,
        pre_login_before,
    )
    return int(result.split()[-1])
