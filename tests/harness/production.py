"""What production requires of every service that uses Kafka besides its own settings: TLS and a login."""

from __future__ import annotations

import secrets

from pydantic import SecretStr


def kafka_login(principal: str = "svc") -> dict[str, object]:
    """The Kafka security settings a production configuration must have (a strong password each call)."""
    return {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": principal,
        "kafka_sasl_password": SecretStr(secrets.token_urlsafe(32)),
    }
