"""All of statistics' SQL: facts, tombstones, the citizen-ref mapping, cases, aggregates and the feed state."""

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


def _json(rows: object) -> str:
    """Rows for a set-based statement, as one JSON text parameter (`json_array_elements`): facts and cases (named
    tuples) become arrays, read by position in their field order (the column lists above).

    Far cheaper than one array parameter per column: orjson writes the rows (tuples, dates) in C, where
    asyncpg's array encoder checks every element of every array in Python."""
    return orjson.dumps(rows, default=tuple).decode()  # named tuples (orjson writes only plain tuples itself)


_GROUPS = "SELECT g->>0, g->>1 FROM json_array_elements($1::text::json) AS g"


async def add_tombstones(conn: Connection, certificate_ids: Sequence[str]) -> None:
    if certificate_ids:
        await conn.execute(
            "INSERT INTO revoked (certificate_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", certificate_ids
        )


async def tombstoned(conn: Connection, certificate_ids: Sequence[str]) -> set[str]:
    if not certificate_ids:
        return set()
    rows = await conn.fetch(
        "SELECT r.certificate_id FROM revoked r JOIN json_array_elements_text($1::text::json) AS c(id) "
        "ON r.certificate_id = c.id",
        _json(certificate_ids),
    )
    return {r["certificate_id"] for r in rows}


async def map_citizens(conn: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Remember citizen ref → pseudonym (for withdrawals, which name only the citizen ref)."""
    unique = dict(pairs)
    if unique:
        await conn.execute(
            f"INSERT INTO citizens (citizen_ref, pseudonym) {_GROUPS} ON CONFLICT DO NOTHING",
            _json(list(unique.items())),
        )


async def insert_facts(conn: Connection, facts: Sequence[Fact]) -> list[Fact]:
    """Insert facts; returns those that were new (a certificate released again is counted once)."""
    if not facts:
        return []
    rows = await conn.fetch(
        f"INSERT INTO facts ({_FACT_COLUMNS}) "  # noqa: S608 - constant column list
        "SELECT f->>0, f->>1, f->>2, f->>3, f->>4, f->>5, (f->>6)::smallint, f->>7, f->>8, f->>9, "
        "(f->>10)::date, (f->>11)::bigint, (f->12)::jsonb "
        "FROM json_array_elements($1::text::json) AS f ON CONFLICT DO NOTHING RETURNING certificate_id",
        _json(facts),
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


async def delete_person(conn: Connection, citizen_ref: str) -> tuple[str | None, list[Fact]]:
    """Forget a citizen: their mapping row and every fact of their pseudonym (returned)."""
    person = await conn.fetchval("DELETE FROM citizens WHERE citizen_ref = $1 RETURNING pseudonym", citizen_ref)
    if person is None:
        return None, []
    rows = await conn.fetch(
        f"DELETE FROM facts WHERE pseudonym = $1 RETURNING {_FACT_COLUMNS}",  # noqa: S608
        person,
    )
    return person, [_fact(r) for r in rows]


async def case_facts(conn: Connection, groups: Sequence[Group], known: Sequence[Fact] = ()) -> list[Fact]:
    """Every fact that makes cases, of the given persons at the given care providers. `known`: facts the caller
    holds as they are stored (just inserted); they are not read back, and are in the result if they make cases."""
    if not groups:
        return []
    rows = await conn.fetch(
        f"SELECT {_FACT_COLUMNS} FROM facts "  # noqa: S608 - constant column list
        f"WHERE (pseudonym, provider) IN ({_GROUPS}) AND cert_type = ANY($2::text[]) "
        "AND certificate_id NOT IN (SELECT json_array_elements_text($3::text::json))",
        _json(groups),
        sorted(CASE_TYPES),
        _json([f.certificate_id for f in known]),
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
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE (pseudonym, provider) IN ({_GROUPS}) FOR UPDATE",  # noqa: S608
        _json(groups),
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
        "(SELECT c->>0, c->>1, (c->>2)::date FROM json_array_elements($1::text::json) AS c)",
        _json([(c.pseudonym, c.provider, c.first_day) for c in cases]),
    )


async def insert_cases(conn: Connection, cases: Sequence[Case]) -> None:
    if not cases:
        return
    await conn.execute(
        f"INSERT INTO cases ({_CASE_COLUMNS}) "  # noqa: S608 - constant column list
        "SELECT c->>0, c->>1, c->>2, c->>3, (c->>4)::date, (c->>5)::date, (c->>6)::integer, (c->>7)::smallint, "
        "c->>8, c->>9, c->>10, (c->>11)::smallint, (c->>12)::integer FROM json_array_elements($1::text::json) AS c",
        _json(cases),
    )


async def apply_delta(conn: Connection, delta: dict[AggKey, int]) -> None:
    """Add the changes to the aggregates, in key order (concurrent batches lock rows in the same order)."""
    if not delta:
        return
    await conn.execute(
        "INSERT INTO aggregates AS a (dimension, value, first_month, last_month, county, provider, sex, n) "
        "SELECT r->>0, r->>1, (r->>2)::integer, (r->>3)::integer, r->>4, r->>5, r->>6, (r->>7)::integer "
        "FROM json_array_elements($1::text::json) WITH ORDINALITY AS u(r, i) ORDER BY i "
        "ON CONFLICT (dimension, first_month, last_month, value, county, provider, sex) "
        "DO UPDATE SET n = a.n + excluded.n",
        _json([(*key, delta[key]) for key in sorted(delta)]),
    )


@dataclass(frozen=True)
class Contribution:
    value: str
    first_month: int
    last_month: int
    provider: str
    sex: str
    n: int


async def contributions(
    pool: Pool,
    dimension: str,
    first_month: int,
    last_month: int,
    county: str | None,
    *,
    by_month: bool = False,
    by_county: bool = False,
) -> list[Contribution]:
    """Aggregate counts of one dimension for cases overlapping the months (or certificates signed in them).

    `by_county`: the county takes the place of the dimension's value."""
    months = "first_month, last_month, " if by_month else ""
    value = "county" if by_county else "value"
    rows = await pool.fetch(
        f"SELECT {value}, {months}provider, sex, sum(n)::integer AS n FROM aggregates "  # noqa: S608 - constant
        "WHERE dimension = $1 AND first_month <= $3 AND last_month >= $2 AND ($4::text IS NULL OR county = $4) "
        f"GROUP BY {value}, {months}provider, sex HAVING sum(n) <> 0",
        dimension,
        first_month,
        last_month,
        county,
    )
    if not by_month:
        return [Contribution(r[0], 0, 0, r[1], r[2], r[3]) for r in rows]
    return [Contribution(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


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
