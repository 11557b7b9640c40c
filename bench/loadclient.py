"""A lean HTTP/1.1 keep-alive client for load generation: pre-serialised requests over asyncio streams (plain, or
TLS with a client certificate: one handshake per connection).

httpx spends about a millisecond of CPU per request, which on a 2-core machine starves the server it measures;
this client spends a few microseconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import queue
import ssl
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

Classify = Callable[[int, bytes], int | str]
"""What a response counts as, from its status and body (e.g. a RIV-TA answer's resultCode); by default its status."""


def post_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.body = b""  # the last response's body

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole response (its body in `body`), return its status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        self.body = await self.reader.readexactly(length) if length else b""
        return status

    def close(self) -> None:
        self.writer.close()


async def connect(host: str, port: int, tls: ssl.SSLContext | None = None) -> Connection:
    """A keep-alive connection; with `tls`, HTTPS (the handshake once, here, not per request)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    return Connection(reader, writer)


def _status(status: int, _body: bytes) -> int | str:
    return status


async def closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    tls: ssl.SSLContext | None = None,
    classify: Classify = _status,
) -> tuple[Counter[int | str], float]:
    """As fast as `concurrency` connections allow; returns counts by `classify` (status) and elapsed seconds."""
    statuses: Counter[int | str] = Counter()
    pending = iter(requests)
    connections = [await connect(host, port, tls) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        for request in pending:
            status = await conn.exchange(request)
            statuses[classify(status, conn.body)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for c in connections:
        c.close()
    return statuses, elapsed


async def on_schedule(count: int, rate: float, one: Callable[[int, float], Coroutine[Any, Any, None]]) -> None:
    """Start `one(i, scheduled)` for each i < `count` at its scheduled time, begin + i/rate, whether or not the
    earlier ones have finished (an open loop); return once all have."""
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for i in range(count):
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    max_connections: int = 64,
    tls: ssl.SSLContext | None = None,
    classify: Classify = _status,
) -> tuple[Counter[int | str], list[float]]:
    """Requests started on a fixed schedule (open loop); latency counts from the scheduled time."""
    statuses: Counter[int | str] = Counter()
    latencies: list[float] = []
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(max_connections):
        idle.put_nowait(await connect(host, port, tls))

    async def one(request: bytes, scheduled: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.exchange(request)
            statuses[classify(status, conn.body)] += 1
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)

    await on_schedule(len(requests), rate, lambda i, scheduled: one(requests[i], scheduled))
    while not idle.empty():
        idle.get_nowait().close()
    return statuses, latencies


def get_request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Drive:
    """What one load phase measured on the client side."""

    latencies: list[float]  # seconds; from the scheduled send time when paced
    statuses: Counter[int]
    seconds: float  # elapsed wall-clock time of the phase
    client_cpu: float  # CPU seconds the load generator itself spent

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def sessions(host: str, port: int, requests: Sequence[bytes], seconds: float, rate: float | None = None) -> Drive:
    """One keep-alive connection per entry of `requests` (one user session each, sending its own request bytes).

    Closed loop (`rate` None): every session sends its next request when the answer to the last one has arrived,
    so the server's throughput is measured. Paced (open loop): together the sessions offer `rate` requests/s,
    session i of n sending at begin + (k·n + i)/rate; latency counts from that scheduled time, so a slow answer
    also delays (and is charged to) the requests scheduled behind it, as for a real user (no coordinated omission).
    """
    connections = [await connect(host, port) for _ in requests]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    n = len(requests)
    cpu0 = time.process_time()
    begin = time.perf_counter() + 0.05
    end = begin + seconds

    async def closed(conn: Connection, request: bytes) -> None:
        clock = time.perf_counter
        while (t0 := clock()) < end:
            statuses[await conn.exchange(request)] += 1
            latencies.append(clock() - t0)

    async def paced(conn: Connection, request: bytes, i: int) -> None:
        assert rate is not None
        clock = time.perf_counter
        k = 0
        while (scheduled := begin + (k * n + i) / rate) < end:
            delay = scheduled - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            statuses[await conn.exchange(request)] += 1
            latencies.append(clock() - scheduled)
            k += 1

    if rate is None:
        await asyncio.gather(*(closed(c, r) for c, r in zip(connections, requests, strict=True)))
    else:
        await asyncio.gather(*(paced(c, r, i) for i, (c, r) in enumerate(zip(connections, requests, strict=True))))
    elapsed = time.perf_counter() - begin
    client_cpu = time.process_time() - cpu0
    for c in connections:
        c.close()
    return Drive(latencies, statuses, elapsed, client_cpu)


def _sessions_child(
    args: tuple[str, int, Sequence[bytes], float, float | None], results: multiprocessing.queues.Queue[Drive]
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio works too
        pass
    results.put(asyncio.run(sessions(*args)))


def sessions_in_process(
    host: str, port: int, requests: Sequence[bytes], seconds: float, rate: float | None = None
) -> Drive:
    """`sessions` in a separate process (uvloop), so the load generator neither shares the measuring process's
    event loop nor hides its own CPU cost: `Drive.client_cpu` is what it spent. Blocks; call it in a thread."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.queues.Queue[Drive] = context.Queue()
    child = context.Process(target=_sessions_child, args=((host, port, list(requests), seconds, rate), results))
    child.start()
    deadline = time.monotonic() + seconds + 120
    try:
        while time.monotonic() < deadline:
            try:
                return results.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the load generator exited with {child.exitcode} before reporting") from None
        raise RuntimeError(f"the load generator did not report within {seconds + 120:.0f} s")
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
