"""The citizen ref: the only way a citizen is named on topics and in logs."""

import hashlib
import hmac


def citizen_ref(personnummer_digits: str, key: str) -> str:
    """HMAC-SHA256 (hex) of a 12-digit personnummer under the system key."""
    return hmac.new(key.encode(), personnummer_digits.encode(), hashlib.sha256).hexdigest()
