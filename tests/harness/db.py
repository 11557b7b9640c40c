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
