"""The collector pause of the kit's consumer: nested across concurrent batches, always lifted at the end."""

import asyncio
import gc
from collections.abc import Iterator

import pytest

from services.kit.memory import collector_paused, tune_for_throughput


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    if enabled:
        gc.enable()


async def test_concurrent_pauses_lift_only_when_the_last_ends_and_even_after_a_failure() -> None:
    gc.enable()
    first_in, second_in, first_may_end = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> None:
        with collector_paused():
            first_in.set()
            await first_may_end.wait()
        assert not gc.isenabled()  # the second batch is still being applied

    async def failing_batch() -> None:
        with collector_paused():
            second_in.set()
            assert not gc.isenabled()
            first_may_end.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            raise RuntimeError("the batch failed")

    async def second() -> None:
        await first_in.wait()
        with pytest.raises(RuntimeError):
            await failing_batch()

    await asyncio.gather(first(), second())
    assert second_in.is_set()
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_tuning_keeps_the_collector_running_less_often_and_freezes_start_up() -> None:
    gc.enable()
    tune_for_throughput(12_345)
    assert gc.isenabled()
    assert gc.get_threshold()[0] == 12_345
    assert gc.get_freeze_count() > 0
