"""A database connection on one schema, and the counts tests poll."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def connect(database_url: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection whose `search_path` is `schema`, closed on leaving."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()


async def count_rows(database_url: str, schema: str, table: str) -> int:
    async with connect(database_url, schema) as conn:
        n: int = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - table names are test constants
        return n


async def outbox_empty(database_url: str, schema: str) -> bool:
    return await count_rows(database_url, schema, "outbox") == 0


class RolesNotProvisioned(LookupError):
    """The local set-up has not made the per-service roles (deploy/local/pgroles.py)."""


def role_urls(database_url: str) -> dict[str, str]:
    """Each per-service role's URL on the database of `database_url` (`minaintyg-infra up` made the roles and their
    passwords under .cache/postgres)."""
    from urllib.parse import urlsplit

    from deploy.local import pgroles

    where = urlsplit(database_url)
    urls = {}
    for role in pgroles.ROLES:
        secret = pgroles.stored_password(role.role)
        if secret is None:
            raise RolesNotProvisioned(
                f"no password for {role.role} in .cache/postgres: run `make infra-up` (it makes one role per service)"
            )
        urls[role.role] = pgroles.database_url(role.role, secret, host=where.hostname or "127.0.0.1",
                                               port=where.port or 5432)  # fmt: skip
    return urls


async def create_schema_for(database_url: str, schema: str, role: str) -> None:
    """As the administrator (a member of every service role): a throwaway schema owned by `role`, as the set-up
    makes a service's own."""
    async with connect(database_url, "pg_catalog") as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"')
