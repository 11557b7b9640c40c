"""The short chaos run `make test` includes: the whole system on a private three-node cluster and a private
PostgreSQL, a minute of workload under a fault of every kind, then the checker: nothing acknowledged
lost, duplicated or leaked (`make chaos` is the long run)."""

from __future__ import annotations

import os

import pytest

from tests.chaos.runner import Config, run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


@pytest.mark.timeout(900)  # ~4 min on a quiet 2-core machine; start-up alone took 4 min at load 50
async def test_a_short_chaos_run_loses_duplicates_and_leaks_nothing() -> None:
    config = Config.short()
    config.seed = int(os.environ.get("CHAOS_SEED", "18"))
    counts, line = await run(config)
    assert line.startswith("[chaos] ")
    assert counts.acknowledged > 100, line
    assert counts.ok, line
