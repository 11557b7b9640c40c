"""Garbage-collector settings for services that turn over many short-lived objects (decoded events).

CPython's cyclic collector runs a young-generation pass every 700 container allocations and a full pass over every
tracked object from time to time. A consumer decoding thousands of certificates a second allocates tens of objects
per event that all survive until their batch commits, so with the defaults it spent about as long in the collector
as in pydantic (py-spy profiles and CPU time per event of bench/consent_bench.py). Reference counting frees these
objects anyway; the collector only has to find cycles, which are rare here, so it can run far less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 50_000
"""Container allocations between two young-generation passes (CPython's default is 700)."""


def tune_for_throughput(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Call once at the end of start-up: freezes what start-up created (modules, schemas, the app) into a
    generation the collector never scans again, and collects young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, max(middle, 20), max(old, 100))


_paused = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block, which may await: for work whose objects all stay alive until it
    ends (a batch being decoded and applied). Blocks of concurrent tasks nest; the collector runs again once the
    last one ends, if it ran before the first began."""
    global _paused, _was_enabled
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0 and _was_enabled:
            gc.enable()
