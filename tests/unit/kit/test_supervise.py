"""The supervisor's pause between runs of a failing task: it grows while the task keeps failing, and starts small
again after a run that lasted."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from services.kit.tasks import Backoff, supervise


async def test_the_pause_grows_while_failing_and_starts_again_after_a_healthy_run() -> None:
    runs = 0
    seventh = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 7:
            seventh.set()
        if runs == 4:
            await asyncio.sleep(0.3)  # a healthy run (longer than healthy_after)
        raise RuntimeError("boom")

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(supervise("w", work, first_backoff=0.01, max_backoff=0.04, healthy_after=0.2))
        await asyncio.wait_for(seventh.wait(), 5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    pauses = [e["retry_in"] for e in logs if e["event"] == "task.failed"][:6]
    assert pauses == [0.01, 0.02, 0.04, 0.01, 0.02, 0.04]
    assert all(e["error"] == "RuntimeError: boom" for e in logs if e["event"] == "task.failed")


def test_backoff_doubles_up_to_its_maximum_and_starts_again_after_a_healthy_run() -> None:
    backoff = Backoff(0.2, 1.0, healthy_after=30.0)
    assert [backoff.after(0.1) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.after(31.0) == 0.2
    assert backoff.after(29.0) == 0.4
