"""All of intake's SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from services.kit.db import Connection, Pool
from services.kit.outbox import OUTBOX_COLUMNS


@dataclass(frozen=True)
class CareUnitRow:
    hsa_id: str
    name: str
    connected: bool
    changed_at: datetime


@dataclass(frozen=True)
class StoredCertificate:
    id: str
    type: str
    personnummer: str
    citizen_ref: str
    revoked: bool


async def is_connected(conn: Connection, hsa_id: str) -> bool:
    connected: bool | None = await conn.fetchval("SELECT connected FROM care_units WHERE hsa_id = $1", hsa_id)
    return bool(connected)


async def find_certificate(
    conn: Connection, certificate_id: str, *, for_update: bool = False
) -> StoredCertificate | None:
    row = await conn.fetchrow(
        "SELECT c.id, c.type, c.personnummer, c.citizen_ref, r.certificate_id IS NOT NULL AS revoked "
        "FROM certificates c LEFT JOIN revocations r ON r.certificate_id = c.id WHERE c.id = $1"
        + (" FOR UPDATE OF c" if for_update else ""),
        certificate_id,
    )
    return StoredCertificate(**dict(row.items())) if row else None


# OUTBOX_COLUMNS is a constant of the kit, not input.
_INSERT_CERTIFICATE_WITH_EVENT = (
    "WITH new_certificate AS ("  # noqa: S608
    "  INSERT INTO certificates (id, type, personnummer, citizen_ref, care_unit_hsa_id, signed_at,"
    "    test_patient, platform, received_at, original, normalised)"
    "  SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"
    "  WHERE EXISTS (SELECT 1 FROM care_units WHERE hsa_id = $5 AND connected AND ($17::text IS NULL OR county = $17))"
    "  ON CONFLICT (id) DO NOTHING RETURNING id"
    f") INSERT INTO outbox ({OUTBOX_COLUMNS}) SELECT $12, $13, $14, $15, $16 FROM new_certificate RETURNING true"
)


async def insert_certificate_with_event(
    conn: Connection,
    *,
    certificate_id: str,
    certificate_type: str,
    personnummer: str,
    citizen_ref: str,
    care_unit_hsa_id: str,
    signed_at: datetime,
    test_patient: bool,
    platform: str,
    received_at: datetime,
    original: str,
    normalised: dict[str, Any] | orjson.Fragment,
    outbox_row: tuple[object, ...],
    unit_county: str | None = None,
) -> bool:
    """Store a new certificate of a connected unit and its outbox event, atomically in one statement.

    `normalised` is the certificate as JSON data, or already serialised (an orjson.Fragment: the json codec of
    services.kit.db passes it on as it is). With `unit_county`, only while the care unit's county is that one (the
    county the certificate was built with, perhaps remembered from an earlier delivery).

    False when nothing was written: the id exists already, the care unit is not connected, or its county is not
    `unit_county`.
    """
    inserted: bool | None = await conn.fetchval(
        _INSERT_CERTIFICATE_WITH_EVENT,
        certificate_id,
        certificate_type,
        personnummer,
        citizen_ref,
        care_unit_hsa_id,
        signed_at,
        test_patient,
        platform,
        received_at,
        original,
        normalised,
        *outbox_row,
        unit_county,
    )
    return bool(inserted)


async def insert_revocation(
    conn: Connection,
    *,
    certificate_id: str,
    revoked_at: datetime,
    reason: str | None,
    platform: str,
    received_at: datetime,
) -> bool:
    inserted: bool | None = await conn.fetchval(
        "INSERT INTO revocations (certificate_id, revoked_at, reason, platform, received_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (certificate_id) DO NOTHING RETURNING true",
        certificate_id,
        revoked_at,
        reason,
        platform,
        received_at,
    )
    return bool(inserted)


async def list_care_units(pool: Pool) -> list[CareUnitRow]:
    rows = await pool.fetch("SELECT hsa_id, name, connected, changed_at FROM care_units ORDER BY hsa_id")
    return [CareUnitRow(**dict(r.items())) for r in rows]


async def connect_care_units(conn: Connection | Pool, units: Iterable[tuple[str, str, str | None]]) -> None:
    """Connect several care units, given as (HSA-id, name, county code), creating those not yet known."""
    await conn.executemany(
        "INSERT INTO care_units (hsa_id, name, connected, county, changed_at) VALUES ($1, $2, true, $3, now()) "
        "ON CONFLICT (hsa_id) DO UPDATE SET connected = true, changed_at = now(), "
        "county = coalesce(EXCLUDED.county, care_units.county)",
        list(units),
    )


async def connected_unit_county(conn: Connection | Pool, hsa_id: str) -> tuple[bool, str | None]:
    """(connected, county code) of a care unit; (False, None) for one never connected."""
    row = await conn.fetchrow("SELECT connected, county FROM care_units WHERE hsa_id = $1", hsa_id)
    return (False, None) if row is None else (bool(row["connected"]), row["county"])


async def set_care_unit(
    pool: Pool, hsa_id: str, name: str | None, connected: bool, county: str | None = None
) -> CareUnitRow:
    """Connect or disconnect a care unit (with its county code when given); a new unit needs a name."""
    row = await pool.fetchrow(
        "INSERT INTO care_units (hsa_id, name, connected, county, changed_at) "
        "VALUES ($1, coalesce($2, $1), $3, $4, now()) "
        "ON CONFLICT (hsa_id) DO UPDATE SET connected = EXCLUDED.connected, changed_at = now(), "
        "name = coalesce($2, care_units.name), county = coalesce($4, care_units.county) "
        "RETURNING hsa_id, name, connected, changed_at",
        hsa_id,
        name,
        connected,
        county,
    )
    assert row is not None
    return CareUnitRow(**dict(row.items()))


async def purge_documents(conn: Connection | Pool, before: datetime) -> int:
    """Drop the documents of certificates received before `before`, keeping the receipt; returns how many."""
    result: str = await conn.execute(
        "UPDATE certificates SET original = NULL, normalised = NULL WHERE received_at < $1 AND original IS NOT NULL",
        before,
    )
    return int(result.split()[-1])
