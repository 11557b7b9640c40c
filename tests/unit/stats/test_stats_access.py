"""Analysts' credentials and the rate limit per credential (services/stats/access.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.kit.ratelimit import TooManyRequests
from services.stats.access import Access, Unauthorized
from services.stats.settings import StatsSettings


def access(limit: str = "3/minute") -> Access:
    tokens = {
        "scb": SecretStr("scb-token-0123456789abcdef0123456789"),
        "fk": SecretStr("fk-token-abcdef0123456789abcdef"),
    }
    return Access(StatsSettings(analyst_tokens=tokens, rate_limit=limit))


def test_a_known_bearer_token_names_its_organisation() -> None:
    a = access()
    assert a.analyst("Bearer scb-token-0123456789abcdef0123456789") == "scb"
    assert a.analyst("bearer fk-token-abcdef0123456789abcdef") == "fk"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic scb-token-0123456789abcdef0123456789",
        "Bearer scb-token-0123456789abcdef",
        "Bearer dev-analyst-secret",
    ],
)
def test_anything_else_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        access().analyst(header)


def test_the_limit_is_per_credential_and_says_when_to_retry() -> None:
    a = access("3/minute")
    for _ in range(3):
        a.analyst("Bearer scb-token-0123456789abcdef0123456789")
    with pytest.raises(TooManyRequests) as refused:
        a.analyst("Bearer scb-token-0123456789abcdef0123456789")
    assert 1 <= refused.value.retry_after <= 60
    assert a.analyst("Bearer fk-token-abcdef0123456789abcdef") == "fk"  # another organisation has its own limit
