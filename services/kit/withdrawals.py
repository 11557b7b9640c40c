"""Stale releases: what every consumer of consent.released.v1 keeps of a citizen's withdrawals, and the check that
drops an event made before the citizen's last one, whatever path it came by (late, a dead-letter replay, a
redelivery, a rebuild reading the topic again)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.kit.db import Connection


async def record_withdrawal(conn: Connection, citizen_ref: str, generation: int, at: datetime) -> None:
    """Remember a withdrawal; an older one seen late never lowers what is kept."""
    await conn.execute(
        "INSERT INTO citizen_withdrawals (citizen_ref, generation, at) VALUES ($1, $2, $3) "
        "ON CONFLICT (citizen_ref) DO UPDATE SET generation = EXCLUDED.generation, at = EXCLUDED.at "
        "WHERE citizen_withdrawals.generation < EXCLUDED.generation",
        citizen_ref,
        generation,
        at,
    )


async def withdrawn_generations(conn: Connection, citizen_refs: Iterable[str]) -> dict[str, int]:
    """The generation of each citizen's last withdrawal seen (citizens who never withdrew are absent)."""
    refs = sorted(set(citizen_refs))
    if not refs:
        return {}
    rows = await conn.fetch(
        "SELECT citizen_ref, generation FROM citizen_withdrawals WHERE citizen_ref = ANY($1::text[])", refs
    )
    return {r["citizen_ref"]: r["generation"] for r in rows}


def is_stale(generation: int, withdrawn: int | None) -> bool:
    """An event made in `generation` is stale if the citizen withdrew in that generation or a later one.

    Generations count consent changes: a release is made while consent is given (an odd generation), a withdrawal
    is the next one. An event without a generation (0, published before they were counted) is stale once any
    withdrawal with a generation was seen."""
    return withdrawn is not None and generation < withdrawn
