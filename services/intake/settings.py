"""Intake's settings (env prefix INTAKE_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_PLATFORM_SECRET = "dev-platform-secret"  # noqa: S105 - the documented development credential


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8001
    db_schema: str = "intake"
    platform_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"national-platform": SecretStr(DEV_PLATFORM_SECRET)},
        description='Bearer secret per national platform, as JSON: {"platform-name": "secret"}',
    )
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    revocation_retry_after_seconds: int = 30
    clock_skew_seconds: int = 300
    relay_enabled: bool = Field(True, description="Run the outbox relay in this process")
    document_retention_days: int = Field(
        365, ge=1, description="Received documents are kept this long, then only the receipt (as consent's held ones)"
    )
    purge_interval_seconds: float = 3600.0

    @model_validator(mode="after")
    def _no_development_credential_in_production(self) -> Self:
        if self.environment == "production" and any(
            token.get_secret_value() == DEV_PLATFORM_SECRET for token in self.platform_tokens.values()
        ):
            raise ValueError("the development platform credential is refused in production")
        return self
