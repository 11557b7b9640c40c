"""The identity-provider simulator's settings (env prefix IDPSIM_)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_CLIENT_SECRET = "dev-portal-oidc-secret"  # noqa: S105 - the documented development credential
DEV_SUBJECT_KEY = "dev-idp-subject-key-not-for-production"

CommaList = Annotated[tuple[str, ...], NoDecode]


class IdpsimSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDPSIM_", extra="ignore", frozen=True, populate_by_name=True)
    uses_kafka: ClassVar[bool] = False

    environment: Literal["development", "test", "production"] = Field(
        "development",
        validation_alias=AliasChoices("IDPSIM_ENV", "MINAINTYG_ENV"),
        description="production refuses the development secrets and switches the /sim/ knobs off",
    )
    host: str = "127.0.0.1"
    port: int = 8010
    issuer: str = Field(
        "http://127.0.0.1:8010",
        description="The issuer identifier, kept exactly (a trailing slash too, as relying parties must compare it "
        "exactly); every endpoint hangs under it",
    )
    client_id: str = "minaintyg-portal"
    client_secret: SecretStr = SecretStr(DEV_CLIENT_SECRET)
    redirect_uris: CommaList = Field(
        ("http://127.0.0.1:8000/auth/callback",), description="Registered redirect URIs (comma-separated)"
    )
    post_logout_redirect_uris: CommaList = Field(
        ("http://127.0.0.1:8000/",), description="Registered post-logout redirect URIs (comma-separated)"
    )
    allow_loopback_redirects: bool = Field(
        False,
        description="Also accept http://127.0.0.1:<any port>/auth/callback and http://127.0.0.1:<any port>/ (tests)",
    )
    subject_key: SecretStr = Field(
        SecretStr(DEV_SUBJECT_KEY), description="Key of the pseudonymous `sub`: HMAC of the personnummer"
    )
    rotate_seconds: float | None = Field(None, gt=0, description="Rotate the signing key this often (unset: never)")
    id_token_seconds: int = Field(300, ge=10, le=3600)
    access_token_seconds: int = Field(300, ge=10, le=86_400)
    code_seconds: int = Field(60, ge=5, le=600, description="Lifetime of an authorization code")
    transaction_seconds: int = Field(600, ge=30, le=3600, description="How long the BankID (test) page stays valid")
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    @field_validator("redirect_uris", "post_logout_redirect_uris", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _no_test_redirects_in_production(self) -> Self:
        # Its secrets are checked by the base class (services/kit/secrets.py), like every service's.
        if self.environment == "production" and self.allow_loopback_redirects:
            raise ValueError("IDPSIM_ALLOW_LOOPBACK_REDIRECTS is for tests, not production")
        return self

    @property
    def knobs_enabled(self) -> bool:
        """The /sim/ security-test knobs exist everywhere but in production."""
        return self.environment != "production"
