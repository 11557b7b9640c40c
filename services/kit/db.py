"""asyncpg pool for one service's schema, and its migrations (yoyo, plain SQL files)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
import structlog
from asyncpg.pool import PoolConnectionProxy
from yoyo import get_backend, read_migrations

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Pool = asyncpg.Pool
# A connection of our own or one borrowed from a pool: SQL functions take either.
Connection = asyncpg.Connection | PoolConnectionProxy


def check_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain lower-case identifiers are allowed."""
    if not _IDENTIFIER.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _init_connection(conn: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _rollback_only(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query: asyncpg has already rolled back a transaction left open."""


async def create_pool(
    database_url: str, schema: str, *, application: str, max_size: int = 10, reset_session: bool = True
) -> Pool:
    """A pool whose connections work in `schema` only.

    asyncpg resets every connection it takes back (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL): one more round
    trip per acquire. `reset_session=False` skips it, for a pool whose users leave no session state behind
    (no SET, LISTEN, cursors outside a transaction or session-level advisory locks); a transaction left open is
    still rolled back."""
    pool: Pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        reset=None if reset_session else _rollback_only,
        server_settings={"search_path": check_schema_name(schema), "application_name": application},
    )
    return pool


async def close_pool(pool: Pool, grace: float = 10.0) -> None:
    """Close gracefully, but within `grace` seconds: a hung connection must not hold up a shutdown."""
    try:
        await asyncio.wait_for(pool.close(), timeout=grace)
    except TimeoutError:
        structlog.get_logger(__name__).warning("db.pool.close_timeout", grace=grace)
        pool.terminate()


def _yoyo_url(database_url: str, schema: str) -> str:
    parts = urlsplit(database_url)
    scheme = "postgresql+psycopg"
    query = f"{parts.query}&schema={schema}" if parts.query else f"schema={schema}"
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


# How long a start waits for another process's migrations before it gives up (and is restarted).
MIGRATION_LOCK_WAIT = "120s"


@contextmanager
def _session_lock(backend: Any, schema: str) -> Iterator[None]:
    """A session-level advisory lock on the migrating connection, in place of yoyo's lock row.

    yoyo's own lock is a committed row that only its `finally` deletes: a process killed while migrating leaves it,
    and every later start waits for it and exits with LockTimeout until someone runs `yoyo break-lock`. PostgreSQL
    releases an advisory lock when the session ends, however the process died."""
    conn = backend.connection
    with conn.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{MIGRATION_LOCK_WAIT}'")
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"yoyo-migrations:{schema}",))
        cursor.execute("SET lock_timeout = DEFAULT")
    conn.commit()
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"yoyo-migrations:{schema}",))
        conn.commit()


def _migrate(database_url: str, schema: str, directories: tuple[Path, ...]) -> list[str]:
    backend = get_backend(_yoyo_url(database_url, schema))
    try:
        applied: list[str] = []
        with _session_lock(backend, schema):
            # yoyo takes its row lock again inside (e.g. to upgrade its own tables): under ours it is not needed.
            backend.lock = lambda timeout=10: nullcontext()
            for directory in directories:
                pending = backend.to_apply(read_migrations(str(directory)))
                backend.apply_migrations(pending)
                applied += [m.id for m in pending]
        return applied
    finally:
        backend.connection.close()


class SchemaNotProvisioned(RuntimeError):
    """The connecting role may not create the schema, or not create in it: its set-up has not been done."""


async def ensure_schema(conn: Connection, schema: str) -> None:
    """Create the schema unless it exists, and check that the connecting role may create tables in it.

    A service's own role (issue #17) may not create schemas: the set-up makes its schema, owned by it (locally
    `minaintyg-infra up`, in Kubernetes CloudNativePG's Database object), and this only finds it there. A role that
    may create schemas (a test's administrator) gets one made here, as before."""
    name = check_schema_name(schema)
    exists = await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", name)
    if not exists:
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        except asyncpg.UniqueViolationError:
            pass  # two processes created it at the same moment
        except asyncpg.InsufficientPrivilegeError:
            user = await conn.fetchval("SELECT current_user")
            raise SchemaNotProvisioned(
                f"schema {name} does not exist and role {user} may not create it: the set-up makes each service's "
                "schema owned by its role (`make infra-up` locally; the Database object in deploy/k8s/postgres.yaml)"
            ) from None
    if not await conn.fetchval("SELECT has_schema_privilege($1, 'CREATE')", name):
        user = await conn.fetchval("SELECT current_user")
        raise SchemaNotProvisioned(
            f"role {user} may not create tables in schema {name}: it is another role's (each service connects as "
            "the role that owns its schema, `<SERVICE>_DATABASE_URL`)"
        )


async def migrate(database_url: str, schema: str, service_migrations: Path) -> list[str]:
    """Create the schema if needed and allowed, and apply the kit's and the service's pending migrations, in that
    order, as the role of `database_url`."""
    conn: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        await ensure_schema(conn, schema)
    finally:
        await conn.close()
    return await asyncio.to_thread(_migrate, database_url, schema, (KIT_MIGRATIONS, service_migrations))


def record_to_dict(record: Any) -> dict[str, Any]:
    """A plain dict of an asyncpg record (for JSON responses)."""
    return dict(record.items())
