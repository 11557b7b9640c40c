"""What Kafka's security costs: raw produce (idempotent, acks=all, 1 KiB records) and consume throughput on the
secured broker (TLS, SCRAM-SHA-512, ACLs: what every service uses) beside a plaintext one — two new nodes of the same
heap started here, measured alternately in the same run, medians over runs. Counts in and out are checked (nothing
lost or duplicated).
With `--consent`, the consent benchmark (the gate: consume, decide, produce — the most Kafka-bound path) runs on
each broker too, and the ratio of its medians is printed.

`python -m bench.kafka_security_bench [--records N] [--runs R] [--consent]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.common import machine, median
from deploy.local.infra import LOCAL_SECURITY, KafkaNode
from tests.harness.infra import free_port, new_unique

PAYLOAD = b"x" * 1024


async def one_run(options: dict[str, Any], records: int) -> tuple[float, float, int]:
    """(produced/s, consumed/s, records read back) on a new six-partition topic, deleted afterwards."""
    topic = f"bench{new_unique()}.security"
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, PAYLOAD, key=str(i).encode()) for i in range(records)]
        await asyncio.gather(*futures)
        produced = records / (time.perf_counter() - started)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < records:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            seen += sum(len(rows) for rows in batch.values())
        consumed = seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await admin.delete_topics([topic])
        await admin.close()
    return produced, consumed, seen


async def measure(label: str, options: dict[str, Any], records: int, runs: int) -> tuple[float, float]:
    produced, consumed = [], []
    for _ in range(runs):
        p, c, seen = await one_run(options, records)
        produced.append(p)
        consumed.append(c)
        print(f"  {label}: produced {p:,.0f}/s, consumed {c:,.0f}/s; in {records}, out {seen}, lost {records - seen}")
        assert seen == records, f"{label}: {records - seen} records lost or {seen - records} duplicated"
    return median(produced), median(consumed)


def consent_gate(env: dict[str, str], runs: int) -> float:
    """The consent benchmark's median gate throughput (events/s) with this environment; its output is shown."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.consent_bench", "--runs", str(runs), "--count", "20000"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    print("\n".join(f"    {line}" for line in result.stdout.splitlines()))
    found = re.search(r"gate, consenting citizens\s+([\d,]+) events/s", result.stdout)
    if found is None:
        raise RuntimeError("the consent benchmark printed no gate median")
    return float(found.group(1).replace(",", ""))


def fresh_node(home: Path, secured: bool) -> KafkaNode:
    """A new node with the same heap either way, so the two differ by their listeners' security only."""
    security = LOCAL_SECURITY if secured else None
    return KafkaNode(home, port=free_port(), controller_port=free_port(), heap="512m", security=security)


async def main(records: int, runs: int, consent: bool) -> None:
    print(machine())
    print(f"raw Kafka on two new nodes of the same heap, {records} records of 1 KiB per run, {runs} runs each "
          "(alternating, after one warm-up run each), medians:")  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        nodes = {"SASL_SSL": fresh_node(Path(home) / "secured", True),
                 "PLAINTEXT": fresh_node(Path(home) / "plain", False)}  # fmt: skip
        for node in nodes.values():
            await asyncio.to_thread(node.start)  # it waits with an event loop of its own
        try:
            for label, node in nodes.items():
                await measure(f"{label} warm-up", node.client_options(), records, 1)
            produced: dict[str, list[float]] = {label: [] for label in nodes}
            consumed: dict[str, list[float]] = {label: [] for label in nodes}
            for _ in range(runs):
                for label, node in nodes.items():
                    p, c = await measure(label, node.client_options(), records, 1)
                    produced[label].append(p)
                    consumed[label].append(c)
            gates: dict[str, float] = {}
            if consent:
                for label, node in nodes.items():
                    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
                    env.update(KAFKA_BOOTSTRAP_SERVERS=node.bootstrap)
                    if node.security is not None:
                        env.update(node.security.client_environment())
                    else:
                        env.update(KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
                    print(f"  consent benchmark on the {label} node:")
                    gates[label] = consent_gate(env, runs)
        finally:
            for node in nodes.values():
                await asyncio.to_thread(node.stop)
    for name, figures in (("produce", produced), ("consume", consumed)):
        s, u = median(figures["SASL_SSL"]), median(figures["PLAINTEXT"])
        print(f"{name}: secured {s:,.0f}/s, plaintext {u:,.0f}/s, secured/plaintext {s / u:.2f}")
    if gates:
        s, u = gates["SASL_SSL"], gates["PLAINTEXT"]
        print(f"consent gate: secured {s:,.0f}/s, plaintext {u:,.0f}/s, secured/plaintext {s / u:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--consent", action="store_true", help="the consent benchmark on each broker too")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.runs, args.consent))
