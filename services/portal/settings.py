"""The portal's settings (env prefix PORTAL_)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.riv import RivListenerSettings
from services.kit.settings import CitizenRefKeySettings, ServiceSettings, own_database_url

DEV_OIDC_SECRET = "dev-portal-oidc-secret"  # noqa: S105 - the development credential, refused in production
DEV_CONSENT_TOKEN = "dev-portal-to-consent"  # noqa: S105 - the development credential, refused in production


class PortalSettings(RivListenerSettings, ServiceSettings, CitizenRefKeySettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    db_schema: str = "portal"
    database_url: str = own_database_url("PORTAL_")
    public_origin: str = Field("http://127.0.0.1:8000", description="Scheme, host and port the browser uses")
    oidc_issuer: str = "http://127.0.0.1:8010"
    oidc_client_id: str = "minaintyg-portal"
    oidc_client_secret: SecretStr = SecretStr(DEV_OIDC_SECRET)
    oidc_client_auth_method: Literal["auto", "client_secret_basic", "private_key_jwt"] = Field(
        "auto",
        description="Token endpoint client authentication; auto: private_key_jwt when a key is set and the provider "
        "lists it, else client_secret_basic",
    )
    oidc_client_private_key: SecretStr = Field(
        SecretStr(""), description="private_key_jwt: the client's private key, PEM or JWK (RSA or EC)"
    )
    oidc_scopes: tuple[str, ...] = Field(
        (
            "openid",
            "https://id.oidc.se/scope/naturalPersonInfo",
            "https://id.oidc.se/scope/naturalPersonNumber",
        ),
        description="Scopes asked for (JSON list): the Swedish OpenID Connect profile's for natural persons",
    )
    oidc_min_loa: int = Field(3, ge=3, le=4, description="Lowest accepted assurance level (loa3 or loa4)")
    oidc_jwks_seconds: int = Field(300, ge=1, description="How long the provider's JWKS is trusted before a refetch")
    oidc_metadata_seconds: int = Field(3600, ge=1, description="How long the provider's metadata is cached")
    min_age_years: int = 16
    consent_url: str = Field("http://127.0.0.1:8002", description="Consent's internal API (https in production)")
    consent_ca_file: str | None = Field(None, description="CA that signed consent's certificate (PEM)")
    consent_token: SecretStr = SecretStr(DEV_CONSENT_TOKEN)
    consent_text_version: str = "2025-1"
    session_idle_seconds: int = Field(1800, ge=60)
    session_absolute_seconds: int = Field(12 * 3600, ge=60, description="A session ends this long after login")
    session_warning_seconds: int = Field(300, ge=10)
    pre_login_seconds: int = Field(600, ge=30, description="How long a started login may take")
    new_badge_days: int = 14
    login_rate_limit: str = Field(
        "30/minute", description="Logins started per client address (each is a database row); limits' notation"
    )
    pdf_rate_limit: str = Field("30/minute", description="PDFs (certificate, employer copy) per citizen")
    pdf_in_flight: int = Field(2, ge=1, description="PDFs of one citizen queued or rendering at once")
    extract_rate_limit: str = Field("6/minute", description="Register extracts (page data, JSON, PDF) per citizen")
    font_dir: str = "/usr/share/fonts/truetype/dejavu"
    relay_enabled: bool = True
    consumer_enabled: bool = True
    db_pool_size: int = 20

    # Försäkringskassan fetches the citizen's certificates (issue #13): ListCertificatesForCitizen v3 and
    # GetCertificate v2 over mutual TLS on a listener of their own (services/kit/riv.py, services/portal/riv.py).
    # Its certificate, key and client CA are set together; production refuses to start without them.
    riv_port: int = Field(8444, description="The RIV-TA endpoints' HTTPS port (client certificates required)")
    riv_client_ca_file: str | None = Field(
        None, description="CA whose client certificates may connect (Försäkringskassan's function certificate)"
    )
    riv_clients: dict[str, str] = Field(
        default_factory=lambda: {"fkassa": "FKASSA"},
        description='Client certificate common name → party (KV_PART code), as JSON: {"CN": "FKASSA"}; another CN '
        "from the CA is refused",
    )

    @model_validator(mode="after")
    def _https_and_a_key_where_needed(self) -> Self:
        if self.environment == "production" and not self.public_origin.startswith("https://"):
            raise ValueError("PORTAL_PUBLIC_ORIGIN must be https in production")
        if self.environment == "production" and not self.consent_url.startswith("https://"):
            raise ValueError("PORTAL_CONSENT_URL must be https in production")
        if self.environment == "production" and not self.oidc_issuer.startswith("https://"):
            raise ValueError("PORTAL_OIDC_ISSUER must be https in production")
        if self.oidc_client_auth_method == "private_key_jwt" and not self.oidc_client_private_key.get_secret_value():
            raise ValueError("PORTAL_OIDC_CLIENT_AUTH_METHOD=private_key_jwt needs PORTAL_OIDC_CLIENT_PRIVATE_KEY")
        return self

    def unused_secrets(self) -> set[str]:
        """The client secret is not used with private_key_jwt, the private key not with client_secret_basic (nor in
        `auto` without a key); in `auto` with a key both may be used (the provider decides)."""
        if self.oidc_client_auth_method == "private_key_jwt":
            return {"oidc_client_secret"}
        if self.oidc_client_auth_method == "client_secret_basic" or not self.oidc_client_private_key.get_secret_value():
            return {"oidc_client_private_key"}
        return set()

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_origin}/auth/callback"
