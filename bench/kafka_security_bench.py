"""What Kafka's security costs: raw produce (idempotent, acks=all, 1 KiB records) and consume throughput on the
secured local broker (TLS, SCRAM-SHA-512, ACLs: what every service uses) beside a plaintext node started here for the
comparison only, in the same run, medians over runs. Counts in and out are checked (nothing lost or duplicated).
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
from deploy.local.infra import LOCAL_KAFKA, KafkaNode
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


async def main(records: int, runs: int, consent: bool) -> None:
    print(machine())
    print(f"raw Kafka, {records} records of 1 KiB per run, {runs} runs, medians:")
    secured = await measure("SASL_SSL", LOCAL_KAFKA.client_options(), records, runs)
    gates: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as home:
        plain = KafkaNode(Path(home), port=free_port(), controller_port=free_port(), heap="512m", security=None)
        plain.start()
        try:
            unsecured = await measure("PLAINTEXT", plain.client_options(), records, runs)
            if consent:
                print("  consent benchmark on the secured broker:")
                on = consent_gate(dict(os.environ), runs)
                plaintext = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_SASL", "KAFKA_SSL"))}
                plaintext.update(KAFKA_BOOTSTRAP_SERVERS=plain.bootstrap, KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
                print("  consent benchmark on the plaintext node:")
                gates = (on, consent_gate(plaintext, runs))
        finally:
            plain.stop()
    for name, s, u in (("produce", secured[0], unsecured[0]), ("consume", secured[1], unsecured[1])):
        print(f"{name}: secured {s:,.0f}/s, plaintext {u:,.0f}/s, secured/plaintext {s / u:.2f}")
    if gates is not None:
        print(f"consent gate: secured {gates[0]:,.0f}/s, plaintext {gates[1]:,.0f}/s, "
              f"secured/plaintext {gates[0] / gates[1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--consent", action="store_true", help="the consent benchmark on each broker too")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.runs, args.consent))
