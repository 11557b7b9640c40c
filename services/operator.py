"""Operators act on the record, never for the citizen: the operator's identity every command that touches a
citizen's certificates requires (`--operator` or MINAINTYG_OPERATOR), and the entry such a command writes to the
citizen's access log in the portal ("Driftpersonal (id)"), so the citizen sees who did what to their record.

The admin tool writes the portal's access log directly (as it writes intake's care units): it is the portal's table
of record for access, and an operator command has no portal request to go through.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.db import create_pool, migrate

OPERATOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


class CommandError(Exception):
    """A command that cannot be carried out, with the reason for the operator."""


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MINAINTYG_", extra="ignore", frozen=True)

    operator: str | None = None  # the operator's identity (user name or HSA-id) when --operator is not given


def add_operator_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--operator",
        default=None,
        help="who you are (user name or HSA-id; required, or MINAINTYG_OPERATOR): shown in the citizen's access log",
    )


def operator_of(args: argparse.Namespace) -> str:
    """The operator's identity from the argument or the environment; refuses the command without a valid one."""
    operator = getattr(args, "operator", None) or OperatorSettings().operator
    if not operator:
        raise CommandError(
            "this command touches citizens' certificates: say who you are (--operator or MINAINTYG_OPERATOR)"
        )
    if not OPERATOR.match(operator):
        raise CommandError(f"not an operator identity: {operator!r} (2-64 letters, digits, . _ @ -)")
    return operator


async def record_for_citizens(
    entries: Iterable[tuple[str, str | None]], action: str, operator: str, *, at: datetime | None = None
) -> int:
    """Write one access-log row per (citizen ref, certificate id or None) to the portal, with the operator."""
    from services.portal import repo as portal_repo
    from services.portal.app import MIGRATIONS as PORTAL_MIGRATIONS
    from services.portal.settings import PortalSettings

    rows = list(dict.fromkeys(entries))
    if not rows:
        return 0
    settings = PortalSettings()
    await migrate(settings.database_url, settings.db_schema, PORTAL_MIGRATIONS)
    pool = await create_pool(settings.database_url, settings.db_schema, application="admin", max_size=1)
    moment = at or datetime.now(UTC)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for citizen_ref, certificate_id in rows:
                await portal_repo.log_operator_action(conn, citizen_ref, certificate_id, action, operator, moment)
    finally:
        await pool.close()
    return len(rows)
