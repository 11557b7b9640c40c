"""`minaintyg-admin`: operator commands (`minaintyg-admin --help`, and `--help` of each command, say more).

minaintyg-admin care-units list|connect HSA-ID [--name N]|disconnect HSA-ID|connect-simulated
minaintyg-admin outbox status
minaintyg-admin lag
minaintyg-admin dlq list TOPIC | dlq replay TOPIC --operator ID [--limit N]
minaintyg-admin stats rebuild --operator ID [--batch-size N] | stats consent-simulated [--consent-url URL]
minaintyg-admin dispatch list --stuck|--failed | retry ID --operator ID

Commands that touch citizens' certificates (dlq replay, stats rebuild, dispatch retry) require the operator's
identity (--operator or MINAINTYG_OPERATOR) and write it to each citizen's access log; none sends for a citizen.

Commands that only read (care-units list, outbox status, lag, dlq list, dispatch list) never migrate a schema: on a
database a service has not set up yet they say so instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from schemas.certificate import County
from schemas.envelope import InvalidEvent, decode
from services.dispatch import cli as dispatch_cli
from services.intake import repo as intake_repo
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.settings import IntakeSettings
from services.kit.db import SchemaNotProvisioned, create_pool, migrate
from services.kit.kafka import client_options, make_producer
from services.kit.outbox import outbox_backlog
from services.kit.settings import ServiceSettings
from services.operator import CommandError, add_operator_argument, operator_of, record_for_citizens


class NotSetUp(Exception):
    """A read-only command on a schema its service has not migrated yet."""


async def _intake_pool(settings: IntakeSettings, *, writes: bool) -> asyncpg.Pool:
    if writes:  # connecting a unit before intake ever ran is fine: the schema is made as intake would make it
        await migrate(settings.database_url, settings.db_schema, INTAKE_MIGRATIONS)
    return await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=2)


async def care_units(args: argparse.Namespace) -> None:
    settings = IntakeSettings()
    pool = await _intake_pool(settings, writes=args.action != "list")
    try:
        if args.action == "connect":
            county = County(args.county).value if args.county else None
            rows = [await intake_repo.set_care_unit(pool, args.hsa_id, args.name, connected=True, county=county)]
        elif args.action == "disconnect":
            rows = [await intake_repo.set_care_unit(pool, args.hsa_id, None, connected=False)]
        elif args.action == "connect-simulated":
            from deploy.simulators.platform.generator import CARE_UNITS

            await intake_repo.connect_care_units(pool, [(u.hsa_id, u.name, u.county.value) for u in CARE_UNITS])
            rows = [r for r in await intake_repo.list_care_units(pool) if r.hsa_id in {u.hsa_id for u in CARE_UNITS}]
        else:
            try:
                rows = await intake_repo.list_care_units(pool)
            except asyncpg.UndefinedTableError:
                raise NotSetUp(f"intake has not set up schema {settings.db_schema} yet (start intake once)") from None
        for row in rows:
            state = "ansluten" if row.connected else "ej ansluten"
            print(f"{row.hsa_id:<32} {state:<12} {row.name}")
    finally:
        await pool.close()


def _services_with_outbox() -> list[ServiceSettings]:
    """The settings of every service that has an outbox: each schema is read as its own service's role."""
    from services.consent.settings import ConsentSettings
    from services.dispatch.settings import DispatchSettings
    from services.portal.settings import PortalSettings
    from services.stats.settings import StatsSettings

    return [IntakeSettings(), ConsentSettings(), PortalSettings(), DispatchSettings(), StatsSettings()]


async def outbox(_args: argparse.Namespace) -> None:
    """The outbox backlog of each service (one outbox per service's schema), read with that service's own
    database URL (`<SERVICE>_DATABASE_URL`, else `DATABASE_URL`): no role reads another service's schema."""
    migrated = 0
    for settings in _services_with_outbox():
        schema: str = getattr(settings, "db_schema")  # noqa: B009 - every service with an outbox has one
        pool = await create_pool(settings.database_url, schema, application="admin", max_size=1)
        try:
            backlog = await outbox_backlog(pool)
        except asyncpg.UndefinedTableError:
            continue  # that service has not migrated its schema yet
        finally:
            await pool.close()
        migrated += 1
        print(f"{schema:<16} outbox backlog: {backlog}")
    if not migrated:
        print("no service has migrated its database yet")


async def lag(_args: argparse.Namespace) -> None:
    """Every consumer group's lag per topic: messages between its committed offsets and the end of the log."""
    settings = ServiceSettings()
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="admin-lag")
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        groups = sorted(group for group, _protocol in await admin.list_consumer_groups())
        if not groups:
            print("no consumer groups")
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed)) if committed else {}
            per_topic: dict[str, int] = {}
            for tp, meta in committed.items():
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, ends[tp] - max(meta.offset, 0))
            for topic, behind in sorted(per_topic.items()):
                print(f"{group:<40} {topic:<40} lag {behind}")
    finally:
        await consumer.stop()
        await admin.close()


async def dlq(args: argparse.Namespace) -> None:
    """List or replay a dead-letter topic. A replay puts back the original record — read again from the source topic
    at the partition and offset the dead letter names, with its own key, value and headers — and refuses a dead
    letter that is not byte for byte that record: whoever may write a dead-letter topic (every consumer of the source
    topic) cannot have the operator publish, as the administrator, what it could not publish itself."""
    settings = ServiceSettings()
    operator = operator_of(args) if args.action == "replay" else None
    touched: list[tuple[str, str | None]] = []
    dlq_topic = settings.topic(args.topic if args.topic.endswith(".dlq") else f"{args.topic}.dlq")
    source_topic = dlq_topic.removesuffix(".dlq")
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=f"{settings.topic_prefix}admin-dlq-replay" if args.action == "replay" else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    origin = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    producer = make_producer(settings, client_id="admin-dlq-replay")
    await consumer.start()
    await origin.start()
    await producer.start()
    refused = 0
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
                        original, problem = await _original_of(origin, source_topic, record)
                        if original is None:
                            refused += 1
                            print(f"{dlq_topic}[{record.partition}]@{record.offset}: not replayed: {problem}")
                        else:
                            await (
                                await producer.send(
                                    source_topic,
                                    value=original.value,
                                    key=original.key,
                                    headers=list(original.headers or ()),
                                )
                            )
                            touched.extend(_citizen_of(original.value or b""))
                        await consumer.commit({tp: record.offset + 1})
                    handled += 1
        done = "replayed" if args.action == "replay" else "listed"
        print(f"{dlq_topic}: {done} {handled - refused} message(s)" + (f", refused {refused}" if refused else ""))
    finally:
        await producer.stop()
        await origin.stop()
        await consumer.stop()
        if operator is not None:
            await record_for_citizens(touched, "operator_dlq_replay", operator)
    if refused:
        raise CommandError(f"{refused} dead letter(s) were not the record at the source position they name")


async def _original_of(
    origin: AIOKafkaConsumer, source_topic: str, dead: ConsumerRecord[bytes, bytes]
) -> tuple[ConsumerRecord[bytes, bytes] | None, str]:
    """The source record a dead letter is a copy of, or None and why not."""
    headers = dict(dead.headers or ())
    try:
        named = headers["dlq.source.topic"].decode()
        partition = int(headers["dlq.source.partition"])
        offset = int(headers["dlq.source.offset"])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None, "it does not name its source partition and offset (dlq.source.*)"
    if named != source_topic:
        return None, f"it names the source topic {named!r}, not {source_topic!r}"
    tp = TopicPartition(source_topic, partition)
    origin.assign([tp])
    origin.seek(tp, offset)
    try:
        batch = await origin.getmany(tp, timeout_ms=10_000, max_records=1)
    except KafkaError as exc:
        return None, f"its source record cannot be read ({type(exc).__name__})"
    records = batch.get(tp, [])
    if not records or records[0].offset != offset:
        return None, f"there is no record at {source_topic}[{partition}]@{offset} (past retention?)"
    original = records[0]
    kept = [(k, v) for k, v in (dead.headers or ()) if not k.startswith("dlq.")]
    if (original.key, original.value, list(original.headers or ())) != (dead.key, dead.value, kept):
        return None, f"it differs from the record at {source_topic}[{partition}]@{offset}"
    return original, ""


def _citizen_of(value: bytes) -> list[tuple[str, str | None]]:
    """The citizen and certificate a replayed message is about (none for one that is no valid event)."""
    try:
        data = decode(value).data
    except InvalidEvent:
        return []
    ref = getattr(data, "citizen_ref", None)
    if not isinstance(ref, str):
        return []
    certificate = getattr(data, "certificate", None)
    certificate_id = getattr(certificate, "id", None) or getattr(data, "certificate_id", None)
    return [(ref, certificate_id if isinstance(certificate_id, str) else None)]


async def stats(args: argparse.Namespace) -> None:
    """Statistics operations (implemented in services.stats.rebuild)."""
    from services.stats.rebuild import RebuildRefused, rebuild
    from services.stats.settings import StatsSettings

    if args.action == "consent-simulated":
        from services.stats.simulated import consent_for_simulated

        given = await consent_for_simulated(args.consent_url)
        print(f"consent given for {given} simulated citizen(s) (the others had it already)")
        return
    operator = operator_of(args)
    try:
        result = await rebuild(StatsSettings(), batch_size=args.batch_size)
    except RebuildRefused as exc:
        print(f"minaintyg-admin: {exc}", file=sys.stderr)
        sys.exit(2)
    recorded = await record_for_citizens([(ref, None) for ref in result.citizens], "operator_stats_rebuild", operator)
    print(f"recorded in {recorded} citizen(s)' access log as done by {operator}")
    how = "resumed and finished" if result.resumed else "finished"
    print(f"stats rebuild {how}: {result.applied} events applied, {result.skipped} left out (as dead-lettered)")


def _command(sub: argparse._SubParsersAction, name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """A subcommand with its help text and examples (shown by `--help`)."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help_text,
        description=help_text[:1].upper() + help_text[1:] + ".",
        epilog="example" + ("s" if len(examples) > 1 else "") + ":\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main() -> None:
    """Entry point of `minaintyg-admin`."""
    parser = argparse.ArgumentParser(
        prog="minaintyg-admin",
        description="Mina intyg operator commands. Configured by the environment, as the services are "
        "(DATABASE_URL or <SERVICE>_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, MINAINTYG_TOPIC_PREFIX, "
        "<SERVICE>_DB_SCHEMA): each command works in a service's schema as that service's role.",
        epilog="`minaintyg-admin COMMAND --help` shows a command's arguments and examples.",
    )
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    units = _command(
        sub, "care-units", "the care units intake accepts certificates from", "minaintyg-admin care-units list"
    )
    units_sub = units.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(
        units_sub,
        "list",
        "list the known care units and whether each is connected (read-only)",
        "minaintyg-admin care-units list",
    )
    connect = _command(
        units_sub,
        "connect",
        "accept certificates from a care unit",
        'minaintyg-admin care-units connect SE2321000016-15CQ --name "Sankt Görans sjukhus"',
    )
    connect.add_argument("hsa_id", help="the unit's HSA-id")
    connect.add_argument("--name", help="the unit's name, as shown to operators")
    connect.add_argument(
        "--county",
        choices=[c.value for c in County],
        help="the unit's county (län) code as HSA records it; RIV-TA deliveries need it (statistics per county)",
    )
    disconnect = _command(
        units_sub,
        "disconnect",
        "stop accepting certificates from a care unit",
        "minaintyg-admin care-units disconnect SE2321000016-15CQ",
    )
    disconnect.add_argument("hsa_id", help="the unit's HSA-id")
    _command(
        units_sub,
        "connect-simulated",
        "connect every care unit of the platform simulator (development)",
        "minaintyg-admin care-units connect-simulated",
    )
    out = _command(sub, "outbox", "each service's outbox backlog (read-only)", "minaintyg-admin outbox status")
    out.add_argument("action", choices=["status"], help="status: events waiting to be published, per schema")
    _command(sub, "lag", "consumer lag per group and topic (read-only)", "minaintyg-admin lag")
    dead = _command(
        sub,
        "dlq",
        "list (read-only) or replay a dead-letter topic",
        "minaintyg-admin dlq list intake.certificates.v1",
        "minaintyg-admin dlq replay consent.released.v1 --limit 100 --operator anna.svensson",
    )
    dead.add_argument("action", choices=["list", "replay"], help="list the messages, or put them back on the source")
    dead.add_argument("topic", help="source topic (e.g. intake.certificates.v1) or its .dlq")
    dead.add_argument("--limit", type=int, default=10_000, help="at most this many messages (default 10000)")
    add_operator_argument(dead)
    statistics = _command(sub, "stats", "sick-leave statistics", "minaintyg-admin stats rebuild")
    stats_sub = statistics.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = _command(
        stats_sub,
        "rebuild",
        "rebuild statistics from consent.released.v1 (stop the stats service first; resumable)",
        "minaintyg-admin stats rebuild --batch-size 5000 --operator anna.svensson",
    )
    rebuild.add_argument("--batch-size", type=int, default=5000, help="events per transaction (default 5000)")
    add_operator_argument(rebuild)
    simulated = _command(
        stats_sub,
        "consent-simulated",
        "development: consent for the platform simulator's citizens, so stats gets data",
        "minaintyg-admin stats consent-simulated --consent-url http://127.0.0.1:8002",
    )
    simulated.add_argument("--consent-url", default="http://127.0.0.1:8002", help="consent's internal API")
    dispatch_cli.add_parser(sub)
    args = parser.parse_args()
    command = {
        "care-units": care_units,
        "outbox": outbox,
        "lag": lag,
        "dlq": dlq,
        "stats": stats,
        "dispatch": dispatch_cli.run,
    }[args.group]
    try:
        asyncio.run(command(args))
    except (OSError, asyncpg.PostgresError, CommandError, NotSetUp, SchemaNotProvisioned) as exc:
        print(f"minaintyg-admin: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
