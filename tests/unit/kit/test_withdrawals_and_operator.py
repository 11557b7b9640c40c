"""Stale releases (a release made before the citizen's last withdrawal) and the operator identity operator commands
require (issue #16)."""

from __future__ import annotations

import argparse

import pytest

from services.kit.withdrawals import is_stale
from services.operator import CommandError, operator_of


@pytest.mark.parametrize(
    ("generation", "withdrawn", "stale"),
    [
        (1, None, False),  # never withdrew
        (1, 2, True),  # released, then withdrawn: the release is stale
        (3, 2, False),  # released after a new consent
        (3, 4, True),
        (0, 2, True),  # made before generations were counted, after a counted withdrawal
        (0, 0, False),  # neither counted (events published before the field): as before
    ],
)
def test_a_release_is_stale_when_made_before_the_last_withdrawal(
    generation: int, withdrawn: int | None, stale: bool
) -> None:
    assert is_stale(generation, withdrawn) is stale


def test_an_operator_must_say_who_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINAINTYG_OPERATOR", raising=False)
    with pytest.raises(CommandError, match="--operator or MINAINTYG_OPERATOR"):
        operator_of(argparse.Namespace(operator=None))
    with pytest.raises(CommandError, match="not an operator identity"):
        operator_of(argparse.Namespace(operator="x; DROP TABLE"))
    assert operator_of(argparse.Namespace(operator="anna.svensson")) == "anna.svensson"
    monkeypatch.setenv("MINAINTYG_OPERATOR", "SE2321000016-ABCD")
    assert operator_of(argparse.Namespace(operator=None)) == "SE2321000016-ABCD"
