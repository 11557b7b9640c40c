"""All of statistics' SQL: facts, tombstones, cases, aggregates, publications, the audit log and the feed state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from services.kit.db import Connection, Pool
from services.stats.domain import CASE_TYPES, AggKey, Case, Fact

_FACT_COLUMNS = (
    "certificate_id, pseudonym, cert_type, provider, county, sex, age, code, chapter, grp, signed_on, signed_at_us, "
    "periods"
)
_CASE_COLUMNS = (
    "pseudonym, provider, county, sex, first_day, last_day, days, age, code, chapter, grp, degree, certificates"
)
MIGRATIONS = Path(__file__).parent / "migrations"
Group = tuple[str, str]  # (pseudonym, care provider)


def _fact(row: asyncpg.Record) -> Fact:
    """A fact from a row of _FACT_COLUMNS (in Fact's field order)."""
    fromisoformat = date.fromisoformat
    periods = tuple([(fromisoformat(s), fromisoformat(e), d) for s, e, d in row[12]])
    return Fact(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11],
                periods)  # fmt: skip


def _case(row: asyncpg.Record) -> Case:
    """A case from a row of _CASE_COLUMNS (Case's fields, in order)."""
    return Case._make(row)


# Staging tables (temporary, per connection): batches are written with COPY, the cheapest way into PostgreSQL, and
# moved into the real tables by one statement each, which empties the staging table as it reads it (a transaction
# may stage several times: a withdrawal between two runs of releases). A profile of the earlier
# form (rows as one JSON parameter, read with ->> per field) showed PostgreSQL spending twice as long re-scanning
# the JSON text as inserting the rows.
_STAGES = {
    "stage_facts": "certificate_id text, pseudonym text, cert_type text, provider text, county text, sex text, "
    "age smallint, code text, chapter text, grp text, signed_on date, signed_at_us bigint, periods text",
    "stage_aggregates": "dimension text, value text, first_month integer, last_month integer, county text, "
    "provider text, sex text, n integer, k bigint",
}


async def _stage(conn: Connection, table: str, records: Iterable[Sequence[object]]) -> None:
    """COPY records into a staging table (created on this connection's first use)."""
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({_STAGES[table]}) ON COMMIT DELETE ROWS")
    await conn.copy_records_to_table(table, records=records)


def _pairs(groups: Sequence[Group]) -> tuple[list[str], list[str]]:
    """(pseudonyms, providers) as two array parameters, for `unnest($1::text[], $2::text[])`."""
    return [g[0] for g in groups], [g[1] for g in groups]


async def add_tombstones(conn: Connection, certificate_ids: Sequence[str]) -> None:
    if certificate_ids:
        await conn.execute(
            "INSERT INTO revoked (certificate_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", certificate_ids
        )


async def tombstoned(conn: Connection, certificate_ids: Sequence[str]) -> set[str]:
    if not certificate_ids:
        return set()
    rows = await conn.fetch(
        "SELECT certificate_id FROM revoked WHERE certificate_id IN (SELECT unnest($1::text[]))", certificate_ids
    )
    return {r["certificate_id"] for r in rows}


async def insert_facts(conn: Connection, facts: Sequence[Fact]) -> list[Fact]:
    """Insert facts; returns those that were new (a certificate released again is counted once)."""
    if not facts:
        return []
    dumps = orjson.dumps
    await _stage(conn, "stage_facts", [(*f[:12], dumps(f.periods).decode()) for f in facts])
    rows = await conn.fetch(
        f"WITH staged AS (DELETE FROM stage_facts RETURNING *) INSERT INTO facts ({_FACT_COLUMNS}) "  # noqa: S608
        "SELECT certificate_id, pseudonym, cert_type, provider, county, sex, age, code, chapter, grp, signed_on, "
        "signed_at_us, periods::jsonb FROM staged ON CONFLICT DO NOTHING RETURNING certificate_id"
    )
    if len(rows) == len(facts):
        return list(facts)
    new = {r["certificate_id"] for r in rows}
    return [f for f in facts if f.certificate_id in new]


async def delete_facts(conn: Connection, certificate_ids: Sequence[str]) -> list[Fact]:
    if not certificate_ids:
        return []
    rows = await conn.fetch(
        f"DELETE FROM facts WHERE certificate_id = ANY($1::text[]) RETURNING {_FACT_COLUMNS}",  # noqa: S608
        certificate_ids,
    )
    return [_fact(r) for r in rows]


async def delete_person(conn: Connection, person: str) -> list[Fact]:
    """Forget a person: every fact of their pseudonym (returned)."""
    rows = await conn.fetch(
        f"DELETE FROM facts WHERE pseudonym = $1 RETURNING {_FACT_COLUMNS}",  # noqa: S608
        person,
    )
    return [_fact(r) for r in rows]


async def case_facts(conn: Connection, groups: Sequence[Group], known: Sequence[Fact] = ()) -> list[Fact]:
    """Every fact that makes cases, of the given persons at the given care providers. `known`: facts the caller
    holds as they are stored (just inserted); they are not read back, and are in the result if they make cases."""
    if not groups:
        return []
    rows = await conn.fetch(
        f"SELECT {_FACT_COLUMNS} FROM facts "  # noqa: S608 - constant column list
        "WHERE (pseudonym, provider) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND cert_type = ANY($3::text[]) "
        "AND certificate_id NOT IN (SELECT unnest($4::text[]))",
        *_pairs(groups),
        sorted(CASE_TYPES),
        [f.certificate_id for f in known],
    )
    wanted = set(groups)
    return [_fact(r) for r in rows] + [
        f for f in known if f.cert_type in CASE_TYPES and (f.pseudonym, f.provider) in wanted
    ]


async def cases_of(conn: Connection, groups: Sequence[Group]) -> list[Case]:
    """The cases of the given persons at the given care providers, locked until the transaction ends."""
    if not groups:
        return []
    rows = await conn.fetch(
        f"SELECT {_CASE_COLUMNS} FROM cases "  # noqa: S608 - constant column list
        "WHERE (pseudonym, provider) IN (SELECT * FROM unnest($1::text[], $2::text[])) FOR UPDATE",
        *_pairs(groups),
    )
    return [_case(r) for r in rows]


async def all_facts(conn: Connection) -> AsyncIterator[Fact]:
    """Every fact, ordered by person and care provider (in a transaction)."""
    async for row in conn.cursor(
        f"SELECT {_FACT_COLUMNS} FROM facts ORDER BY pseudonym, provider, certificate_id",  # noqa: S608 - constant
        prefetch=5000,
    ):
        yield _fact(row)


async def clear_derived(conn: Connection) -> None:
    """Empty cases and aggregates (before deriving them again from every fact)."""
    await conn.execute("TRUNCATE cases, aggregates")


async def delete_cases(conn: Connection, cases: Sequence[Case]) -> None:
    """Delete the given cases. A case is one row per person, care provider and first day (the cases of a person
    at a care provider never overlap)."""
    if not cases:
        return
    await conn.execute(
        "DELETE FROM cases WHERE (pseudonym, provider, first_day) IN "
        "(SELECT * FROM unnest($1::text[], $2::text[], $3::date[]))",
        [c.pseudonym for c in cases],
        [c.provider for c in cases],
        [c.first_day for c in cases],
    )


async def insert_cases(conn: Connection, cases: Sequence[Case]) -> None:
    """Insert cases (COPY: a case is never inserted twice, see delete_cases)."""
    if cases:
        await conn.copy_records_to_table("cases", records=cases, columns=_CASE_COLUMNS.split(", "))


async def apply_delta(conn: Connection, delta: dict[AggKey, tuple[int, int]]) -> None:
    """Add the changes (count, sum of record keys) to the aggregates, in key order (concurrent batches lock rows in
    the same order)."""
    if not delta:
        return
    await _stage(conn, "stage_aggregates", [(*key, n, k) for key, (n, k) in delta.items()])
    await conn.execute(
        "WITH staged AS (DELETE FROM stage_aggregates RETURNING *) "
        "INSERT INTO aggregates AS a (dimension, value, first_month, last_month, county, provider, sex, n, k) "
        "SELECT dimension, value, first_month, last_month, county, provider, sex, n, k FROM staged "
        "ORDER BY dimension, first_month, last_month, value, county, provider, sex "
        "ON CONFLICT (dimension, first_month, last_month, value, county, provider, sex) "
        "DO UPDATE SET n = a.n + excluded.n, k = a.k + excluded.k"
    )


async def count_changes(conn: Connection, changes: int) -> None:
    """Count cases that changed since the last preliminary release (a release needs enough of them)."""
    if changes:
        await conn.execute("UPDATE release_state SET changes = changes + $1", changes)


async def take_changes(conn: Connection) -> int:
    """The changes counted since the last release, locked until the transaction ends."""
    return int(await conn.fetchval("SELECT changes FROM release_state FOR UPDATE"))


async def reset_changes(conn: Connection, at: datetime) -> None:
    await conn.execute("UPDATE release_state SET changes = 0, released_at = $1", at)


@dataclass(frozen=True)
class Contribution:
    """Counts of one row value (or county) and sex of cases in the months [first_month, last_month], with the sum of
    their record keys."""

    value: str
    first_month: int
    last_month: int
    sex: str
    n: int
    k: int


async def contributions(
    conn: Connection | Pool,
    dimension: str,
    first_month: int,
    last_month: int,
    county: str | None,
    *,
    by_month: bool = False,
    by_county: bool = False,
) -> list[Contribution]:
    """Aggregate counts and key sums of one dimension for cases overlapping the months (or certificates signed in
    them). `by_county`: the county takes the place of the dimension's value."""
    months = "first_month, last_month, " if by_month else ""
    value = "county" if by_county else "value"
    rows = await conn.fetch(
        f"SELECT {value}, {months}sex, sum(n)::integer AS n, sum(k)::bigint AS k FROM aggregates "  # noqa: S608
        "WHERE dimension = $1 AND first_month <= $3 AND last_month >= $2 AND ($4::text IS NULL OR county = $4) "
        f"GROUP BY {value}, {months}sex HAVING sum(n) <> 0",
        dimension,
        first_month,
        last_month,
        county,
    )
    if not by_month:
        return [Contribution(r[0], 0, 0, r[1], r[2], r[3]) for r in rows]
    return [Contribution(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


@dataclass(frozen=True)
class Publication:
    body: str  # the ReportView's JSON
    preliminary: bool
    released_at: datetime


async def publication(conn: Connection | Pool, key: str) -> Publication | None:
    row = await conn.fetchrow("SELECT body, preliminary, released_at FROM publications WHERE key = $1", key)
    return Publication(row[0], row[1], row[2]) if row else None


async def save_publication(conn: Connection | Pool, key: str, body: str, preliminary: bool, at: datetime) -> None:
    """Store a published table. Only a preliminary table is ever replaced: a final one is published once."""
    await conn.execute(
        "INSERT INTO publications (key, body, preliminary, released_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key) DO UPDATE SET body = excluded.body, preliminary = excluded.preliminary, "
        "released_at = excluded.released_at WHERE publications.preliminary",
        key,
        body,
        preliminary,
        at,
    )


async def preliminary_keys(conn: Connection | Pool) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT key FROM publications WHERE preliminary ORDER BY key")]


async def audit(
    pool: Pool, analyst: str, path: str, report: str | None, period: str | None, county: str | None, status: int
) -> None:
    """One row per query of the report API: who asked what, and the answer's status.

    Committed without waiting for the WAL flush (PostgreSQL writes it within a fraction of a second): a query's
    answer does not wait for a disk flush, at the price of the last moment's rows if the database crashes."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit TO OFF")
        await conn.execute(
            "INSERT INTO audit_log (analyst, path, report, period, county, status) VALUES ($1, $2, $3, $4, $5, $6)",
            analyst,
            path,
            report,
            period,
            county,
            status,
        )


async def feed_state(conn: Connection, report_key: str) -> tuple[str, datetime] | None:
    row = await conn.fetchrow(
        "SELECT digest, published_at FROM feed_state WHERE report_key = $1 FOR UPDATE", report_key
    )
    return (row["digest"], row["published_at"]) if row else None


async def save_feed_state(conn: Connection, report_key: str, digest: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO feed_state (report_key, digest, published_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (report_key) DO UPDATE SET digest = excluded.digest, published_at = excluded.published_at",
        report_key,
        digest,
        at,
    )


async def rebuild_in_progress(conn: Connection | Pool) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rebuild_progress)"))


async def table_dump(conn: Connection | Pool, table: str, order_by: str) -> list[dict[str, Any]]:
    """Every row of a statistics table (for comparisons in the rebuild and in tests)."""
    rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {order_by}")  # noqa: S608 - internal constants
    return [dict(r.items()) for r in rows]
