"""Group commit: what concurrent callers submit while a group is being written is written together as the next group.

One statement, one round trip and one commit per group instead of one per item; each caller still waits for the
commit of its own item, so nothing is answered or reported before it is durable. The writer of a group returns one
result per item, in order: a value, or an exception that only that item's caller gets. If it raises, every item of
the group gets that exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WriteGroup = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, write_group: WriteGroup[T, R], max_group: int) -> None:
        self._write_group = write_group
        self._max_group = max_group
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item` written in the next group; its result once that group is committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
            results: Sequence[R | BaseException]
            try:
                results = await self._write_group([item for item, _ in group])
            except Exception as exc:
                results = [exc] * len(group)
            for (_, future), result in zip(group, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        """Wait for the group being written."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
