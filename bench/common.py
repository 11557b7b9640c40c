"""What every benchmark prints: the machine it ran on, and medians over runs."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import psutil

from deploy.local.infra import use_local_admin_login

# The benchmarks run on the secured local broker (TLS, SCRAM, ACLs) as its administrator, as the tests do; with
# KAFKA_BOOTSTRAP_SERVERS or KAFKA_SECURITY_PROTOCOL set, the environment says which cluster and how to log in.
use_local_admin_login()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        java = "java: not found"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.node()} · {cpu} · {psutil.cpu_count()} cores · "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB · {platform.system()} {platform.release()} · "
        f"Python {platform.python_version()} · {java} · load average {load} · "
        f"Kafka {os.environ.get('KAFKA_SECURITY_PROTOCOL', 'PLAINTEXT')}"
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class OtlpSink:
    """bench/otlp_sink.py as its own process on a free port: where a service with spans on exports them."""

    def __init__(self, ratio: float = 1.0) -> None:
        from tests.harness import free_port

        self.ratio = ratio
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OtlpSink:
        self._process = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", str(self.port)])
        deadline = time.monotonic() + 30
        while True:
            try:
                self.counts()
                return self
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
                time.sleep(0.1)

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def counts(self) -> dict[str, Any]:
        """Requests, spans and bytes received so far, and spans by name."""
        with urllib.request.urlopen(f"{self.endpoint}/count", timeout=5) as answer:  # noqa: S310 - http://127.0.0.1
            counts: dict[str, Any] = json.load(answer)
        return counts

    def exported_since(self, before: dict[str, Any]) -> dict[str, Any]:
        """Spans received since `before` (an earlier `counts()`), in all and by name."""
        after = self.counts()
        names = {k: v - before["names"].get(k, 0) for k, v in after["names"].items()}
        return {"spans": after["spans"] - before["spans"], "by name": {k: v for k, v in names.items() if v}}

    def service_env(self) -> dict[str, str]:
        """What a service process needs to record every trace and export it here as production would (OTLP over
        HTTP, the batch span processor), sampling root traces at `ratio`."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_TRACES_SAMPLER_ARG": str(self.ratio),
        }


def compare(label: str, unit: str, off: Sequence[float], on: Sequence[float], *, higher_is_better: bool) -> str:
    """One line of the spans off/on comparison: medians, runs, and the cost of spans on."""
    m_off, m_on = median(off), median(on)
    cost = (1 - m_on / m_off) if higher_is_better else (m_on / m_off - 1)
    runs = " ".join(f"{v:,.0f}" for v in off) + " | " + " ".join(f"{v:,.0f}" for v in on)
    return (
        f"  {label:34} off {m_off:9,.0f} · on {m_on:9,.0f} {unit}   on/off {m_on / m_off:.3f} "
        f"(cost {cost * 100:+.1f} %)   runs off|on: {runs}"
    )
