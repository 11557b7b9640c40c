"""kit.groupcommit: concurrent submissions written as groups, each caller answered with its own result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.kit.groupcommit import GroupCommit


async def test_concurrent_items_are_written_in_groups_and_each_gets_its_own_result() -> None:
    groups: list[list[int]] = []

    async def write(group: list[int]) -> list[int | BaseException]:
        groups.append(group)
        await asyncio.sleep(0.01)  # the commit: what arrives meanwhile waits for the next group
        return [item * 10 if item != 3 else ValueError("item 3") for item in group]

    commit: GroupCommit[int, int] = GroupCommit(write, max_group=4)
    results = await asyncio.gather(*(commit.submit(i) for i in range(10)), return_exceptions=True)
    await commit.close()

    assert [r for i, r in enumerate(results) if i != 3] == [i * 10 for i in range(10) if i != 3]
    assert isinstance(results[3], ValueError)
    assert sorted(i for g in groups for i in g) == list(range(10))  # each written once
    assert len(groups) == 3
    assert all(len(g) <= 4 for g in groups)


async def test_a_failing_group_fails_each_of_its_callers_and_the_next_group_still_runs() -> None:
    calls = 0

    async def write(group: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return [s.upper() for s in group]

    commit: GroupCommit[str, str] = GroupCommit(write, max_group=100)
    with pytest.raises(ConnectionError):
        await commit.submit("a")
    assert await commit.submit("b") == "B"


async def test_a_cancelled_caller_does_not_stop_its_group() -> None:
    written: list[int] = []
    release = asyncio.Event()

    async def write(group: list[int]) -> Sequence[int]:
        await release.wait()
        written.extend(group)
        return group

    commit: GroupCommit[int, int] = GroupCommit(write, max_group=100)
    first = asyncio.create_task(commit.submit(1))
    second = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == 2
    await commit.close()
    assert written == [1, 2]
