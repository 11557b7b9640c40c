"""A lean HTTP/1.1 keep-alive client for load generation: pre-serialised requests over asyncio streams.

httpx spends about a millisecond of CPU per request, which on a 2-core machine starves the server it measures;
this client spends a few microseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence


def post_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole response, return its status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def connect(host: str, port: int) -> Connection:
    reader, writer = await asyncio.open_connection(host, port)
    return Connection(reader, writer)


async def closed_loop(host: str, port: int, requests: Sequence[bytes], concurrency: int) -> tuple[Counter[int], float]:
    """As fast as `concurrency` connections allow; returns status counts and elapsed seconds."""
    statuses: Counter[int] = Counter()
    pending = iter(requests)
    connections = [await connect(host, port) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        for request in pending:
            statuses[await conn.exchange(request)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    return statuses, elapsed


async def open_loop(
    host: str, port: int, requests: Sequence[bytes], rate: float, max_connections: int = 64
) -> tuple[Counter[int], list[float]]:
    """Requests started on a fixed schedule (open loop); latency counts from the scheduled time."""
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(max_connections):
        idle.put_nowait(await connect(host, port))

    async def one(request: bytes, scheduled: float) -> None:
        conn = await idle.get()
        try:
            statuses[await conn.exchange(request)] += 1
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)

    tasks = []
    begin = time.perf_counter()
    for i, request in enumerate(requests):
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, scheduled)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return statuses, latencies
