"""Operator commands of dispatch, under `minaintyg-admin dispatch`:

dispatch request CERTIFICATE-ID [--recipient FKASSA]   put a send request on the topic, as the portal does
dispatch list --stuck [--older-than MINUTES] | --failed
dispatch retry LEDGER-ID|CERTIFICATE-ID               a failed send back in the queue, an unfinished one now
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta

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


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `dispatch …` on the admin CLI."""
    dispatch = sub.add_parser("dispatch", help="sends to recipients (Försäkringskassan)")
    actions = dispatch.add_subparsers(dest="action", required=True)
    request = actions.add_parser("request", help="request a send of a released certificate, as the portal does")
    request.add_argument("certificate_id")
    request.add_argument("--recipient", default="FKASSA")
    listing = actions.add_parser("list", help="sends that are stuck or failed")
    which = listing.add_mutually_exclusive_group(required=True)
    which.add_argument("--stuck", action="store_true", help="unfinished sends requested a while ago")
    which.add_argument("--failed", action="store_true", help="sends that failed for good")
    listing.add_argument("--older-than", type=float, default=5.0, metavar="MINUTES", help="for --stuck (default 5)")
    retry = actions.add_parser("retry", help="retry a failed send now (ledger id or certificate id)")
    retry.add_argument("ident")


async def _pool(settings: DispatchSettings) -> Pool:
    await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    return await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=2)


async def run(args: argparse.Namespace) -> None:
    """Carry out `minaintyg-admin dispatch …`."""
    settings = DispatchSettings()
    pool = await _pool(settings)
    try:
        if args.action == "request":
            await request(settings, pool, args.certificate_id, args.recipient)
        elif args.action == "list":
            now = datetime.now(UTC)
            rows = await repo.list_sends(
                pool, failed=args.failed, stuck_before=now - timedelta(minutes=args.older_than)
            )
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
