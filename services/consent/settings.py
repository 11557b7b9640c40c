"""Consent's settings (env prefix CONSENT_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings, own_database_url

DEV_PORTAL_TOKEN = "dev-portal-to-consent"  # noqa: S105 - the development credential, refused in production


class ConsentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENT_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8002
    db_schema: str = "consent"
    database_url: str = own_database_url("CONSENT_")
    service_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"portal": SecretStr(DEV_PORTAL_TOKEN)},
        description='Bearer secret per calling service, as JSON: {"portal": "secret"}',
    )
    text_versions: list[str] = Field(
        default_factory=lambda: ["2025-1"], description="Consent texts in use; the last is the one shown now"
    )
    held_retention_days: int = Field(365, ge=1, description="Held certificates of citizens without consent")
    purge_interval_seconds: float = 3600.0
    relay_enabled: bool = True
    consumer_enabled: bool = True

    @property
    def current_text_version(self) -> str:
        return self.text_versions[-1]
