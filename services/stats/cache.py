"""Computed reports, kept until the ingest commits anything (or they grow old)."""

from __future__ import annotations

import time

from services.stats.reports import ReportView


class ReportCache:
    """Computed reports, until this process's ingest commits anything or `max_age` seconds pass (the age bound
    covers replicas whose ingest is idle while another replica's consumes)."""

    def __init__(self, max_age: float) -> None:
        self.version = 0
        self._max_age = max_age
        self._entries: dict[tuple[str, int, int, str | None], tuple[int, float, ReportView]] = {}

    def changed(self) -> None:
        self.version += 1
        self._entries.clear()

    def get(self, key: tuple[str, int, int, str | None]) -> ReportView | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != self.version or time.monotonic() - entry[1] > self._max_age:
            return None
        return entry[2]

    def put(self, key: tuple[str, int, int, str | None], version: int, report: ReportView) -> None:
        if version == self.version and self._max_age > 0:
            if len(self._entries) > 1000:
                self._entries.clear()
            self._entries[key] = (version, time.monotonic(), report)
