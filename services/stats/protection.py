"""Disclosure control of every published figure: the cell key method (pure; no I/O).

The method is the one SCB moved its frequency tables to in 2025 and that ABS TableBuilder uses for self-service
tables (see README, "Disclosure control"):

- every record (a sick-leave case; a certificate in "certificates per type") has a **record key**, a 32-bit number
  from a keyed hash that only statistics can compute, fixed for as long as the record is the same;
- a cell's **cell key** is the sum of its records' keys plus a hash of what the cell is (dimension, value, sex, its
  months, the county filter), modulo 2^32 (the aggregates keep the sums, so a cell key costs nothing extra to read).
  The same cell always gets the same figure, in whichever report it appears (the women of a month in "per sex" and
  in "per month"; a county's row of "per county" and the county's filtered table), so asking again, with another
  credential or in another report gives nothing new. The cell's identity in the key means that two different cells
  that happen to hold the same records (a month and the quarter it begins, when no case came in the later months)
  get unrelated noise: an unchanged figure never tells that nobody was added;
- the **perturbation table** turns (true count, cell key) into the published count: 0 stays 0, counts of 1–4 always
  move (1 → 0 or 2, 2 → 1 or 3, 3 → 1 or 4, 4 → 2 or 5: never published as they are), counts of 5 and more move by
  −2…+2 (40 % not at all); every published value can come from at least two true counts;
- a published figure below 5 is shown as suppressed (`null`, `..` in CSV): true zeros and small counts look alike;
- totals are the sums of the shown protected cells of their own table (a table adds up; no total is an unprotected
  count, and a total minus the shown cells is 0, so it tells nothing of the hidden ones), and a rate is computed
  from a protected total.

No Python library implements the cell key method (the reference implementations are the R packages `cellKey` and
`ptable` of sdcTools); the rules are short and are ours, with property tests in
tests/unit/stats/test_stats_protection.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

KEY_BITS = 32
KEY_SPACE = 1 << KEY_BITS
THRESHOLD = 5  # a published figure below this is shown as suppressed
MAX_NOISE = 2  # |published − true| of one cell never exceeds this (public: analysts may use it)

# Counts of 5 and more: the noise, by cell key, from cumulative shares of the key space (probabilities
# 0.1, 0.2, 0.4, 0.2, 0.1: mean 0, variance 1.2).
_LARGE_NOISE = ((0.1, -2), (0.3, -1), (0.7, 0), (0.9, 1), (1.0, 2))
_LARGE_BOUNDS = tuple((round(share * KEY_SPACE), d) for share, d in _LARGE_NOISE)
_HALF = KEY_SPACE // 2
_SMALL = {1: (0, 2), 2: (1, 3), 3: (1, 4), 4: (2, 5)}  # true count → (published below half the key space, above)


def record_key(secret: bytes, *parts: str) -> int:
    """A record's key: the first 32 bits of HMAC-SHA256 of its identity under the statistics key."""
    return int.from_bytes(hmac.digest(secret, "\x1f".join(parts).encode(), "sha256")[:4], "big")


def cell_salt(*coordinates: str) -> int:
    """What a cell adds to its key sum: a hash of what the cell counts (not secret; the record keys are)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(("cell", *coordinates)).encode()).digest()[:4], "big")


def perturb(count: int, cell_key: int) -> int:
    """The published count of a cell with `count` records whose keys sum to `cell_key` (mod 2^32).

    Every published value can come from at least two true counts, and a true count of 1–4 is never published.
    """
    key = cell_key % KEY_SPACE
    if count <= 0:
        return 0  # a cell without records (its key sum is 0); shown as suppressed like the small ones
    if count < THRESHOLD:
        return _SMALL[count][0 if key < _HALF else 1]
    for bound, noise in _LARGE_BOUNDS:
        if key < bound:
            return count + noise
    return count + MAX_NOISE  # unreachable: the last bound is the whole key space


def possible_counts(published: int) -> list[int]:
    """Every true count the perturbation table can publish as `published` (what an analyst can infer)."""
    low = max(0, published - MAX_NOISE - 1)
    return [v for v in range(low, published + MAX_NOISE + 2) if published in _outcomes(v)]


def _outcomes(count: int) -> set[int]:
    if count <= 0:
        return {0}
    if count < THRESHOLD:
        return set(_SMALL[count])
    return {count + d for _, d in _LARGE_NOISE}


@dataclass(frozen=True)
class Cell:
    """A table cell before protection: its true count, the sum of its records' keys and its salt (cell_salt)."""

    count: int
    key_sum: int
    salt: int = 0


@dataclass(frozen=True)
class ProtectedTable:
    """A table as published: inner cells protected, totals the sums of the shown protected cells, figures below the
    threshold None; `values` keeps the protected value of every cell, shown or not (for tests)."""

    cells: list[list[int | None]]
    values: list[list[int]]
    suppressed: frozenset[tuple[int, int]]


def protect(
    cells: Sequence[Sequence[Cell]], *, total_row: bool, total_column: bool, exact: bool = False
) -> ProtectedTable:
    """Perturb every inner cell, hide every figure below 5, and add totals as sums of the shown cells.

    `exact`: the true table, nothing perturbed or hidden, for the benchmark's measure of what protection costs
    (never served)."""
    values = [[c.count if exact else perturb(c.count, c.key_sum + c.salt) for c in row] for row in cells]
    threshold = 0 if exact else THRESHOLD
    counted = [[v if v >= threshold else 0 for v in row] for row in values]  # what totals add up
    if total_column:
        for row, row_counted in zip(values, counted, strict=True):
            row.append(sum(row_counted))
    if total_row:
        columns = len(counted[0]) if counted else 0
        totals = [sum(row[j] for row in counted) for j in range(columns)]
        values.append([*totals, sum(totals)] if total_column else totals)
    suppressed = frozenset((i, j) for i, row in enumerate(values) for j, v in enumerate(row) if v < threshold)
    shown: list[list[int | None]] = [
        [None if (i, j) in suppressed else v for j, v in enumerate(row)] for i, row in enumerate(values)
    ]
    return ProtectedTable(shown, values, suppressed)
