"""The portal's settings (env prefix PORTAL_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_OIDC_SECRET = "dev-portal-oidc-secret"  # noqa: S105 - the development credential, refused in production
DEV_CONSENT_TOKEN = "dev-portal-to-consent"  # noqa: S105 - the development credential, refused in production


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    db_schema: str = "portal"
    public_origin: str = Field("http://127.0.0.1:8000", description="Scheme, host and port the browser uses")
    oidc_issuer: str = "http://127.0.0.1:8010"
    oidc_client_id: str = "minaintyg-portal"
    oidc_client_secret: SecretStr = SecretStr(DEV_OIDC_SECRET)
    oidc_min_loa: int = Field(3, ge=3, le=4, description="Lowest accepted assurance level (loa3 or loa4)")
    min_age_years: int = 16
    consent_url: str = "http://127.0.0.1:8002"
    consent_token: SecretStr = SecretStr(DEV_CONSENT_TOKEN)
    consent_text_version: str = "2025-1"
    session_idle_seconds: int = Field(1800, ge=60)
    session_warning_seconds: int = Field(300, ge=10)
    pre_login_seconds: int = Field(600, ge=30, description="How long a started login may take")
    new_badge_days: int = 14
    font_dir: str = "/usr/share/fonts/truetype/dejavu"
    relay_enabled: bool = True
    consumer_enabled: bool = True
    db_pool_size: int = 20

    @model_validator(mode="after")
    def _no_development_credentials_in_production(self) -> Self:
        if self.environment == "production" and (
            self.oidc_client_secret.get_secret_value() == DEV_OIDC_SECRET
            or self.consent_token.get_secret_value() == DEV_CONSENT_TOKEN
        ):
            raise ValueError("the development OIDC client secret or consent credential is refused in production")
        if self.environment == "production" and not self.public_origin.startswith("https://"):
            raise ValueError("PORTAL_PUBLIC_ORIGIN must be https in production")
        return self

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_origin}/auth/callback"
