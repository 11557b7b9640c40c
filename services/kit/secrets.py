"""What a production secret must be: not empty, not short, not the development value or a placeholder.

Checked for every secret of every service's settings (`ServiceSettings` finds them by type: each `SecretStr` field
and each `dict[str, SecretStr]` of credentials), when the environment is production, so a new secret is covered
without anyone remembering to add a check. A secret a configuration does not use (the portal's OIDC client secret
under private_key_jwt) is named by the settings class (`unused_secrets`) and not checked. Messages name the setting
and the reason, never the value.
"""

from __future__ import annotations

MIN_LENGTH = 32  # e.g. `openssl rand -hex 32` (64 characters) or `openssl rand -base64 32` (44)
MIN_DISTINCT = 10  # a key of repeated characters ("k" * 40) is long and weak
# Markers of development and placeholder values (ours all start with "dev-"); hyphenated or long enough that a random
# key does not contain one by chance.
PLACEHOLDERS = ("dev-", "test-", "-dev", "-test", "changeme", "change-me", "example", "not-for-production", "secret-")


def weakness(value: str, *, development_value: str | None = None) -> str | None:
    """Why `value` is not fit as a production secret, or None."""
    if not value.strip():
        return "is empty"
    if development_value is not None and value == development_value:
        return "is the development value"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(value)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} different characters"
    lowered = value.lower()
    for marker in PLACEHOLDERS:
        if marker in lowered:
            return f"contains {marker!r} (a development or placeholder value)"
    return None
