"""Intake's settings (env prefix INTAKE_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import CitizenRefKeySettings, ServiceSettings
from services.kit.tls import MutualTls, mutual_listener

DEV_PLATFORM_SECRET = "dev-platform-secret"  # noqa: S105 - the documented development credential


class IntakeSettings(ServiceSettings, CitizenRefKeySettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8001
    db_schema: str = "intake"
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

    # RIV-TA (issue #13): the national contracts, served over mutual TLS on a listener of their own.
    riv_host: str = "127.0.0.1"
    riv_port: int = Field(8443, description="The RIV-TA endpoints' HTTPS port (client certificates required)")
    riv_tls_cert_file: str | None = Field(None, description="The RIV-TA listener's server certificate (PEM)")
    riv_tls_key_file: str | None = Field(None, description="Its private key (PEM)")
    riv_client_ca_file: str | None = Field(
        None, description="CA whose client certificates may connect (the national platform's function certificates)"
    )
    riv_clients: dict[str, str] = Field(
        default_factory=lambda: {"national-platform": "national-platform"},
        description='Client certificate common name → platform name, as JSON: {"CN": "platform"}; another CN from '
        "the CA is refused",
    )
    riv_logical_address: str = Field(
        "MINAINTYG", description="The logical address (RIV-TA LogicalAddress header) Mina intyg is registered under"
    )

    @model_validator(mode="after")
    def _riv_listener_in_production(self) -> Self:
        files = (self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file)
        if any(files) and not all(files):
            raise ValueError(
                "INTAKE_RIV_TLS_CERT_FILE, INTAKE_RIV_TLS_KEY_FILE and INTAKE_RIV_CLIENT_CA_FILE are set together"
            )
        if self.environment == "production" and not all(files):
            raise ValueError(
                "production serves the RIV-TA endpoints over mutual TLS: set INTAKE_RIV_TLS_CERT_FILE, "
                "INTAKE_RIV_TLS_KEY_FILE and INTAKE_RIV_CLIENT_CA_FILE"
            )
        return self

    def mutual_tls(self) -> MutualTls | None:
        """The RIV-TA listener, when configured."""
        return mutual_listener(
            self.riv_host, self.riv_port, self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file
        )
