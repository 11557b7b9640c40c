"""Dispatch's settings (env prefix DISPATCH_)."""

from __future__ import annotations

import ssl
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings, own_database_url
from services.kit.tls import mutual_client_context

DEV_FK_TOKEN = "dev-minaintyg-to-fk"  # noqa: S105 - the development credential, refused in production


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPATCH_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8003
    db_schema: str = "dispatch"
    database_url: str = own_database_url("DISPATCH_")
    sender_name: str = Field("minaintyg", description="How Mina intyg names itself to recipients")
    fk_endpoint: str = Field(
        "http://127.0.0.1:8011", description="Base URL of Försäkringskassan (FKASSA); https in production"
    )
    fk_adapter: Literal["fk-http", "fk-riv"] = Field(
        "fk-http",
        description="How Försäkringskassan is reached: fk-http (its JSON API at DISPATCH_FK_ENDPOINT) or fk-riv "
        "(RIV-TA RegisterCertificate v3 / RevokeCertificate v2 at DISPATCH_FK_RIV_ENDPOINT, mutual TLS)",
    )
    fk_riv_endpoint: str = Field(
        "https://127.0.0.1:8445", description="Base URL of Försäkringskassan's RIV-TA services (fk-riv)"
    )
    fk_logical_address: str = Field(
        "FKASSA",
        description="Försäkringskassan's logical address (RIV-TA LogicalAddress header; the real one is 2021005521)",
    )
    riv_ca_file: str | None = Field(None, description="CA the RIV-TA receiver's certificate is checked against (PEM)")
    riv_client_cert_file: str | None = Field(None, description="Mina intyg's RIV-TA client (function) certificate")
    riv_client_key_file: str | None = Field(None, description="Its private key (PEM)")
    recipient_ca_file: str | None = Field(
        None, description="CA the recipients' certificates are checked against (PEM; default: the system's store)"
    )
    recipient_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"FKASSA": SecretStr(DEV_FK_TOKEN)},
        description='Bearer secret per recipient id, as JSON: {"FKASSA": "secret"}',
    )
    deadline_hours: float = Field(24.0, gt=0, description="A send not delivered by then fails for good")
    retry_first_seconds: float = Field(1.0, gt=0, description="Backoff cap of the first retry (full jitter)")
    retry_max_seconds: float = Field(300.0, gt=0, description="Largest backoff between two attempts")
    call_timeout_seconds: float = Field(10.0, gt=0, description="One HTTP call to a recipient")
    lease_seconds: float = Field(60.0, gt=0, description="A claimed send is reclaimed after this (a hung process)")
    breaker_failures: int = Field(5, ge=1, description="Consecutive failures that open a recipient's circuit")
    breaker_open_seconds: float = Field(5.0, gt=0, description="First pause before a half-open probe")
    breaker_max_open_seconds: float = Field(
        10.0, gt=0, description="Longest pause between probes (a probe is one call; a long pause delays recovery)"
    )
    # The portal offers sending only a certificate it holds, so a request for one dispatch has not seen means
    # dispatch's own consumer of the releases is behind (a restart, a rebalance, brokers away); refusing it then
    # would tell the citizen something false. A chaos run saw a release reach dispatch 2.5 min after the request.
    unknown_certificate_grace_seconds: float = Field(
        3600.0, ge=0, description="How long a request waits for its certificate's release before it is refused"
    )
    poll_seconds: float = Field(0.25, gt=0, description="How often each sender looks for due sends")
    registry_refresh_seconds: float = Field(10.0, gt=0, description="How often the recipient registry is re-read")
    consumer_group: str | None = Field(None, description="Consumer group (default: dispatch); tests replay with it")
    relay_enabled: bool = True
    consumer_enabled: bool = True
    sender_enabled: bool = True

    @model_validator(mode="after")
    def _riv_client_files(self) -> Self:
        if bool(self.riv_client_cert_file) != bool(self.riv_client_key_file):
            raise ValueError("DISPATCH_RIV_CLIENT_CERT_FILE and DISPATCH_RIV_CLIENT_KEY_FILE are set together")
        if self.fk_adapter == "fk-riv" and self.fk_riv_endpoint.startswith("https:") and not self.riv_client_cert_file:
            raise ValueError("fk-riv over https needs DISPATCH_RIV_CLIENT_CERT_FILE and DISPATCH_RIV_CLIENT_KEY_FILE")
        return self

    def fk_entry(self) -> tuple[str, str]:
        """The seeded Försäkringskassan registry entry's endpoint and adapter kind."""
        if self.fk_adapter == "fk-riv":
            return self.fk_riv_endpoint, "fk-riv"
        return self.fk_endpoint, "fk-http"

    def riv_client_context(self) -> ssl.SSLContext:
        """The RIV-TA client: verifies the receiver against DISPATCH_RIV_CA_FILE (default: the system's store) and
        presents Mina intyg's function certificate."""
        if not (self.riv_client_cert_file and self.riv_client_key_file):
            raise ValueError("DISPATCH_RIV_CLIENT_CERT_FILE and DISPATCH_RIV_CLIENT_KEY_FILE are not set")
        return mutual_client_context(self.riv_ca_file, self.riv_client_cert_file, self.riv_client_key_file)
