"""The local Kafka node's configuration (deploy/local/infra.py): what it must hold to start on a small heap."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.infra import KafkaNode


@pytest.mark.parametrize(
    ("heap", "buffer"), [("256m", 16 * 2**20), ("384m", 24 * 2**20), ("1g", 64 * 2**20), ("4g", 128 * 2**20)]
)
def test_the_log_cleaners_buffer_fits_the_heap(tmp_path: Path, heap: str, buffer: int) -> None:
    # A chaos run's 256 MiB node died at start with OutOfMemoryError in the cleaner's 128 MiB default buffer.
    node = KafkaNode(tmp_path, heap=heap)
    properties = dict(
        line.split("=", 1) for line in node._config().read_text().splitlines() if line and not line.startswith("#")
    )
    assert int(properties["log.cleaner.dedupe.buffer.size"]) == buffer
