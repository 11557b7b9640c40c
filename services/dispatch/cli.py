"""Operator commands of dispatch, under `minaintyg-admin dispatch`:

dispatch request CERTIFICATE-ID [--recipient FKASSA]   put a send request on the topic, as the portal does
dispatch list --stuck [--older-than MINUTES] | --failed
dispatch retry LEDGER-ID|CERTIFICATE-ID               a failed send back in the queue, an unfinished one now
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.envelope import encode, new_envelope
from schemas.events import DispatchRequested
from schemas.topics import PORTAL_DISPATCH_REQUESTS
from services.dispatch import repo
from services.dispatch.app import MIGRATIONS
from services.dispatch.settings import DispatchSettings
from services.kit.db import Pool, close_pool, create_pool, migrate
from services.kit.kafka import ensure_topics, make_producer


class CommandError(Exception):
    """A command that cannot be carried out, with the reason for the operator."""


def _command(sub: argparse._SubParsersAction, name: str, help_text: str, example: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text[:1].upper() + help_text[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `dispatch …` on the admin CLI."""
    dispatch = _command(
        sub, "dispatch", "sends to recipients (Försäkringskassan)", "minaintyg-admin dispatch list --failed"
    )
    actions = dispatch.add_subparsers(dest="action", required=True, metavar="ACTION")
    request = _command(
        actions,
        "request",
        "request a send of a released certificate, as the portal does",
        "minaintyg-admin dispatch request 9f5c1a2e-0000-4000-8000-000000000001 --recipient FKASSA",
    )
    request.add_argument("certificate_id", help="the certificate's id")
    request.add_argument("--recipient", default="FKASSA", help="the recipient's id (default FKASSA)")
    listing = _command(
        actions,
        "list",
        "sends that are stuck or failed (read-only)",
        "minaintyg-admin dispatch list --stuck --older-than 10",
    )
    which = listing.add_mutually_exclusive_group(required=True)
    which.add_argument("--stuck", action="store_true", help="unfinished sends requested a while ago")
    which.add_argument("--failed", action="store_true", help="sends that failed for good")
    listing.add_argument("--older-than", type=float, default=5.0, metavar="MINUTES", help="for --stuck (default 5)")
    retry = _command(
        actions, "retry", "retry a failed send now (ledger id or certificate id)", "minaintyg-admin dispatch retry 42"
    )
    retry.add_argument("ident", help="a ledger id (see `dispatch list`) or a certificate id")


async def _pool(settings: DispatchSettings, *, writes: bool) -> Pool:
    if writes:  # `list` only reads: it never creates or migrates the schema
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    return await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=2)


async def run(args: argparse.Namespace) -> None:
    """Carry out `minaintyg-admin dispatch …`."""
    settings = DispatchSettings()
    pool = await _pool(settings, writes=args.action != "list")
    try:
        if args.action == "request":
            await request(settings, pool, args.certificate_id, args.recipient)
        elif args.action == "list":
            now = datetime.now(UTC)
            try:
                rows = await repo.list_sends(
                    pool, failed=args.failed, stuck_before=now - timedelta(minutes=args.older_than)
                )
            except asyncpg.UndefinedTableError:
                raise CommandError(
                    f"dispatch has not set up schema {settings.db_schema} yet (start dispatch once)"
                ) from None
            for row in rows:
                print(_line(row))
            print(f"{len(rows)} send(s)")
        else:
            now = datetime.now(UTC)
            rows = await repo.retry_now(
                pool, args.ident, now=now, deadline_at=now + timedelta(hours=settings.deadline_hours)
            )
            if not rows:
                raise CommandError(f"no unfinished or failed send with ledger id or certificate id {args.ident}")
            for row in rows:
                print(f"due now: {_line(row)}")
    finally:
        await close_pool(pool)


async def request(settings: DispatchSettings, pool: Pool, certificate_id: str, recipient_id: str) -> uuid.UUID:
    """Put a `dispatch.requested` on the portal's topic for a certificate dispatch holds; returns its key."""
    citizen = await repo.citizen_of(pool, certificate_id)
    if citizen is None:
        raise CommandError(f"dispatch has no released certificate {certificate_id} (has consent released it?)")
    key = uuid.uuid4()
    now = datetime.now(UTC)
    data = DispatchRequested(
        idempotency_key=key, certificate_id=certificate_id, recipient_id=recipient_id, citizen_ref=citizen,
        requested_at=now,
    )  # fmt: skip
    envelope = new_envelope(data, source="minaintyg/admin", time=now, correlation_id=str(key), subject=certificate_id)
    await ensure_topics(settings, [PORTAL_DISPATCH_REQUESTS])
    producer = make_producer(settings, client_id="admin-dispatch")
    await producer.start()
    try:
        topic = settings.topic(PORTAL_DISPATCH_REQUESTS.name)
        await producer.send_and_wait(topic, value=encode(envelope), key=certificate_id.encode())
    finally:
        await producer.stop()
    print(f"requested: certificate {certificate_id} to {recipient_id} (idempotency key {key}, citizen {citizen})")
    return key


def _line(row: repo.SendRow) -> str:
    return (
        f"{row.id:>8} {row.kind.value:<6} {row.certificate_id:<38} {row.recipient_id:<8} {row.state.value:<9} "
        f"attempts={row.attempts} requested={row.requested_at:%Y-%m-%d %H:%M:%S} "
        f"next={row.next_attempt_at:%H:%M:%S} code={row.failure_code or '-'} error={row.last_error or '-'}"
    )
