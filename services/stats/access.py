"""Analysts' access to the report API: a bearer token per analyst organisation, a rate limit per credential
(limits' moving window, in this process), and an audit row per query (repo.audit).

The protection of the figures does not depend on who asks: every credential sees the same protected tables.
The limit and the audit make bulk querying slow and visible.
"""

from __future__ import annotations

import hmac

from services.kit.ratelimit import RateLimit
from services.stats.settings import StatsSettings


class Unauthorized(Exception):
    """No valid analyst credential."""


class Access:
    def __init__(self, settings: StatsSettings) -> None:
        self._tokens = [(name, token.get_secret_value().encode()) for name, token in settings.analyst_tokens.items()]
        self._limit = RateLimit(settings.rate_limit, "queries for this credential")

    def analyst(self, authorization: str | None) -> str:
        """The analyst organisation of an `Authorization: Bearer …` header; raises Unauthorized or
        TooManyRequests (the kit answers it: 429 with Retry-After)."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized
        given = credential.strip().encode()
        found = None
        for name, token in self._tokens:  # every token compared, in constant time each
            if hmac.compare_digest(given, token):
                found = name
        if found is None:
            raise Unauthorized
        self._limit.hit(found)
        return found
