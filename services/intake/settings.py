"""Intake's settings (env prefix INTAKE_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.riv import RivListenerSettings
from services.kit.settings import CitizenRefKeySettings, ServiceSettings, own_database_url

DEV_PLATFORM_SECRET = "dev-platform-secret"  # noqa: S105 - the documented development credential


class IntakeSettings(RivListenerSettings, ServiceSettings, CitizenRefKeySettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8001
    db_schema: str = "intake"
    database_url: str = own_database_url("INTAKE_")
    platform_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"national-platform": SecretStr(DEV_PLATFORM_SECRET)},
        description='Bearer secret per national platform, as JSON: {"platform-name": "secret"}',
    )
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    rate_limit: str = Field(
        "500/second",
        description="Deliveries (certificates and revocations) per platform and process, limits' notation; over it: "
        "429 with Retry-After (the platform retries)",
    )
    revocation_retry_after_seconds: int = 30
    clock_skew_seconds: int = 300
    relay_enabled: bool = Field(True, description="Run the outbox relay in this process")
    document_retention_days: int = Field(
        365, ge=1, description="Received documents are kept this long, then only the receipt (as consent's held ones)"
    )
    purge_interval_seconds: float = 3600.0

    # RIV-TA (issue #13): the national contracts, served over mutual TLS on a listener of their own
    # (services/kit/riv.py: host, port, certificate, key, client CA and logical address).
    riv_client_ca_file: str | None = Field(
        None, description="CA whose client certificates may connect (the national platform's function certificates)"
    )
    riv_clients: dict[str, str] = Field(
        default_factory=lambda: {"national-platform": "national-platform"},
        description='Client certificate common name → platform name, as JSON: {"CN": "platform"}; another CN from '
        "the CA is refused",
    )
