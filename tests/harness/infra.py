"""The shared broker and database: a fresh id per test (its schema `t_<id>`, its topic prefix `t<id>.`), and cleaning
up after it, so no test sees another's rows or events and a whole run does not pile up partitions."""

from __future__ import annotations

import socket
import uuid

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from services.kit.kafka import client_options


def new_unique() -> str:
    """Ten hex digits naming one test's (or one benchmark run's) schema, topic prefix and consumer groups."""
    return uuid.uuid4().hex[:10]


def schema_name(unique: str) -> str:
    return f"t_{unique}"


def topic_prefix(unique: str) -> str:
    return f"t{unique}."


def require_broker(bootstrap_servers: str) -> str | None:
    """None if the first bootstrap server accepts a TCP connection, else why not (for a clear failure)."""
    host, port = bootstrap_servers.split(",")[0].rsplit(":", 1)
    with socket.socket() as s:
        if s.connect_ex((host, int(port))) != 0:
            return f"Kafka is not reachable at {bootstrap_servers}: run `make infra-up`"
    return None


async def delete_topics_of(bootstrap: str, unique: str) -> None:
    """Delete every topic whose name carries `unique` (a test's prefix)."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap=bootstrap), request_timeout_ms=60_000)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if unique in t]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=60_000)
    finally:
        await admin.close()


async def drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
