"""Operator commands of dispatch, under `minaintyg-admin dispatch`:

dispatch list --stuck [--older-than MINUTES] | --failed
dispatch retry LEDGER-ID|CERTIFICATE-ID --operator ID  a failed send back in the queue, an unfinished one now

There is no command that sends for a citizen: nothing is sent without the citizen's own action (the consent text
promises it). `retry` only re-drives a send the citizen asked for (a row of the ledger), and records who did it:
on the ledger row and in the citizen's access log.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import asyncpg

from services.dispatch import repo
from services.dispatch.app import MIGRATIONS
from services.dispatch.settings import DispatchSettings
from services.kit.db import Pool, close_pool, create_pool, migrate
from services.operator import CommandError, add_operator_argument, operator_of, record_for_citizens

__all__ = ["CommandError", "add_parser", "run"]


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
        actions,
        "retry",
        "re-drive a send the citizen asked for, now (ledger id or certificate id; recorded with the operator)",
        "minaintyg-admin dispatch retry 42 --operator anna.svensson",
    )
    retry.add_argument("ident", help="a ledger id (see `dispatch list`) or a certificate id")
    add_operator_argument(retry)


async def _pool(settings: DispatchSettings, *, writes: bool) -> Pool:
    if writes:  # `list` only reads: it never creates or migrates the schema
        await migrate(settings.database_url, settings.db_schema, MIGRATIONS)
    return await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=2)


async def run(args: argparse.Namespace) -> None:
    """Carry out `minaintyg-admin dispatch …`."""
    settings = DispatchSettings()
    pool = await _pool(settings, writes=args.action != "list")
    try:
        if args.action == "list":
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
            operator = operator_of(args)
            now = datetime.now(UTC)
            rows = await repo.retry_now(
                pool,
                args.ident,
                now=now,
                deadline_at=now + timedelta(hours=settings.deadline_hours),
                operator=operator,
            )
            if not rows:
                raise CommandError(f"no unfinished or failed send with ledger id or certificate id {args.ident}")
            await record_for_citizens(
                [(row.citizen_ref, row.certificate_id) for row in rows], "operator_dispatch_retry", operator
            )
            for row in rows:
                print(f"due now: {_line(row)}")
    finally:
        await close_pool(pool)


def _line(row: repo.SendRow) -> str:
    return (
        f"{row.id:>8} {row.kind.value:<6} {row.certificate_id:<38} {row.recipient_id:<8} {row.state.value:<9} "
        f"attempts={row.attempts} requested={row.requested_at:%Y-%m-%d %H:%M:%S} "
        f"next={row.next_attempt_at:%H:%M:%S} code={row.failure_code or '-'} error={row.last_error or '-'}"
    )
