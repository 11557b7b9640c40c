"""`minaintyg-admin`: operator commands.

minaintyg-admin care-units list|connect HSA-ID [--name N]|disconnect HSA-ID|connect-simulated
minaintyg-admin outbox status
minaintyg-admin dlq list TOPIC | dlq replay TOPIC [--limit N]
minaintyg-admin dispatch request CERTIFICATE-ID [--recipient R] | list --stuck|--failed | retry ID
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.dispatch import cli as dispatch_cli
from services.intake import repo as intake_repo
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.settings import IntakeSettings
from services.kit.db import create_pool, migrate
from services.kit.kafka import make_producer
from services.kit.outbox import outbox_backlog
from services.kit.settings import ServiceSettings


async def _intake_pool(settings: IntakeSettings) -> asyncpg.Pool:
    await migrate(settings.database_url, settings.db_schema, INTAKE_MIGRATIONS)
    return await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=2)


async def care_units(args: argparse.Namespace) -> None:
    settings = IntakeSettings()
    pool = await _intake_pool(settings)
    try:
        if args.action == "connect":
            rows = [await intake_repo.set_care_unit(pool, args.hsa_id, args.name, connected=True)]
        elif args.action == "disconnect":
            rows = [await intake_repo.set_care_unit(pool, args.hsa_id, None, connected=False)]
        elif args.action == "connect-simulated":
            from deploy.simulators.platform.generator import CARE_UNITS

            await intake_repo.connect_care_units(pool, [(u.hsa_id, u.name) for u in CARE_UNITS])
            rows = [r for r in await intake_repo.list_care_units(pool) if r.hsa_id in {u.hsa_id for u in CARE_UNITS}]
        else:
            rows = await intake_repo.list_care_units(pool)
        for row in rows:
            state = "ansluten" if row.connected else "ej ansluten"
            print(f"{row.hsa_id:<32} {state:<12} {row.name}")
    finally:
        await pool.close()


async def outbox(_args: argparse.Namespace) -> None:
    """The outbox backlog of every service that has one."""
    from services.consent.settings import ConsentSettings
    from services.dispatch.settings import DispatchSettings

    services = (
        ("intake", IntakeSettings().db_schema),
        ("consent", ConsentSettings().db_schema),
        ("dispatch", DispatchSettings().db_schema),
    )
    for service, schema in services:
        settings = ServiceSettings()
        pool = await create_pool(settings.database_url, schema, application="admin", max_size=1)
        try:
            print(f"{service:<8} outbox backlog: {await outbox_backlog(pool)}")
        except asyncpg.UndefinedTableError:
            print(f"{service:<8} not migrated yet")
        finally:
            await pool.close()


async def dlq(args: argparse.Namespace) -> None:
    """List or replay a dead-letter topic: originals go back to their source topic with the original headers."""
    settings = ServiceSettings()
    dlq_topic = settings.topic(args.topic if args.topic.endswith(".dlq") else f"{args.topic}.dlq")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}admin-dlq-replay" if args.action == "replay" else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = make_producer(settings, client_id="admin-dlq-replay")
    await consumer.start()
    await producer.start()
    try:
        # A consumer without subscriptions may not have fetched metadata of a topic made after it started.
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(dlq_topic) or set()
        assignment = [TopicPartition(dlq_topic, p) for p in partitions]
        if not assignment:
            print(f"{dlq_topic}: no such topic or empty")
            return
        consumer.assign(assignment)
        ends = await consumer.end_offsets(assignment)
        if args.action == "list":
            await consumer.seek_to_beginning(*assignment)
        handled = 0

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in assignment])

        while handled < args.limit and await behind():
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            for tp, records in batches.items():
                for record in records:
                    headers = dict(record.headers or ())
                    if args.action == "list":
                        print(
                            json.dumps(
                                {
                                    k: v.decode(errors="replace")
                                    for k, v in headers.items()
                                    if k.startswith(("dlq.", "ce_"))
                                }
                            )
                        )
                    else:
                        source = headers["dlq.source.topic"].decode()
                        original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")]
                        await (await producer.send(source, value=record.value, key=record.key, headers=original))
                        await consumer.commit({tp: record.offset + 1})
                    handled += 1
        print(f"{dlq_topic}: {'replayed' if args.action == 'replay' else 'listed'} {handled} message(s)")
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    """Entry point of `minaintyg-admin`."""
    parser = argparse.ArgumentParser(prog="minaintyg-admin", description="Mina intyg operator commands")
    sub = parser.add_subparsers(dest="group", required=True)
    units = sub.add_parser("care-units", help="the care units intake accepts certificates from")
    units_sub = units.add_subparsers(dest="action", required=True)
    units_sub.add_parser("list")
    connect = units_sub.add_parser("connect")
    connect.add_argument("hsa_id")
    connect.add_argument("--name")
    disconnect = units_sub.add_parser("disconnect")
    disconnect.add_argument("hsa_id")
    units_sub.add_parser("connect-simulated", help="connect every care unit of the platform simulator (development)")
    out = sub.add_parser("outbox", help="outbox backlog")
    out.add_argument("action", choices=["status"])
    dead = sub.add_parser("dlq", help="dead-letter topics")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("topic", help="source topic (e.g. intake.certificates.v1) or its .dlq")
    dead.add_argument("--limit", type=int, default=10_000)
    dispatch_cli.add_parser(sub)
    args = parser.parse_args()
    command = {"care-units": care_units, "outbox": outbox, "dlq": dlq, "dispatch": dispatch_cli.run}[args.group]
    try:
        asyncio.run(command(args))
    except (OSError, asyncpg.PostgresError, dispatch_cli.CommandError) as exc:
        print(f"minaintyg-admin: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
