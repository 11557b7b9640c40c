"""The provider's signing keys: one current RSA key signs, the previous one stays published until the next rotation.

Keys live in memory and are generated at start; a restarted simulator publishes new keys (relying parties fetch the
JWKS again when they meet an unknown `kid`).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from joserfc.jwk import Key, KeySet, RSAKey

ALGORITHM = "RS256"
KEY_BITS = 2048


def new_signing_key() -> RSAKey:
    """A fresh RSA key with a random `kid`, for RS256 signatures."""
    kid = secrets.token_urlsafe(12)
    return RSAKey.generate_key(KEY_BITS, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM}, private=True)


class KeyRing:
    """The current signing key and the one before it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current = new_signing_key()
        self._previous: RSAKey | None = None

    @property
    def current(self) -> RSAKey:
        return self._current

    def rotate(self) -> RSAKey:
        """Make a new key current; the old current stays published, the one before it is dropped."""
        fresh = new_signing_key()  # generated outside the lock: it takes a moment
        with self._lock:
            self._previous, self._current = self._current, fresh
        return fresh

    def published(self) -> KeySet:
        """Every key a token may have been signed with: current first."""
        with self._lock:
            keys: list[Key] = [self._current] if self._previous is None else [self._current, self._previous]
        return KeySet(keys)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        return {"keys": [key.as_dict(private=False) for key in self.published().keys]}
