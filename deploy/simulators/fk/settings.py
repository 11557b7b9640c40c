"""The Försäkringskassan simulator's settings (env prefix FKSIM_)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings, own_database_url
from services.kit.tls import MutualTls, mutual_listener

DEV_SENDER_SECRET = "dev-minaintyg-to-fk"  # noqa: S105 - the documented development credential


class FksimSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FKSIM_", extra="ignore", frozen=True, populate_by_name=True)
    uses_kafka: ClassVar[bool] = False

    host: str = "127.0.0.1"
    port: int = 8011
    db_schema: str = "fk_sim"
    database_url: str = own_database_url("FKSIM_")
    sender_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"minaintyg": SecretStr(DEV_SENDER_SECRET)},
        description='Bearer secret per sender, as JSON: {"sender-name": "secret"}',
    )
    max_body_bytes: int = Field(512 * 1024, ge=1024)

    # RIV-TA (issue #13): RegisterCertificate v3 and RevokeCertificate v2 as Försäkringskassan receives them, over
    # mutual TLS on a listener of their own.
    riv_host: str = "127.0.0.1"
    riv_port: int = Field(8445, description="The RIV-TA endpoints' HTTPS port (client certificates required)")
    riv_tls_cert_file: str | None = Field(None, description="The RIV-TA listener's server certificate (PEM)")
    riv_tls_key_file: str | None = Field(None, description="Its private key (PEM)")
    riv_client_ca_file: str | None = Field(None, description="CA whose client certificates may connect (PEM)")
    riv_senders: dict[str, str] = Field(
        default_factory=lambda: {"minaintyg": "minaintyg"},
        description='Client certificate common name → sender name, as JSON: {"CN": "sender"}; another CN from the '
        "CA is refused",
    )
    riv_logical_address: str = Field(
        "FKASSA",
        description="The logical address (RIV-TA LogicalAddress header) served; the real Försäkringskassan's is "
        "2021005521",
    )

    @model_validator(mode="after")
    def _riv_files_together(self) -> Self:
        files = (self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file)
        if any(files) and not all(files):
            raise ValueError(
                "FKSIM_RIV_TLS_CERT_FILE, FKSIM_RIV_TLS_KEY_FILE and FKSIM_RIV_CLIENT_CA_FILE are set together"
            )
        return self

    def mutual_tls(self) -> MutualTls | None:
        """The RIV-TA listener, when configured."""
        return mutual_listener(
            self.riv_host, self.riv_port, self.riv_tls_cert_file, self.riv_tls_key_file, self.riv_client_ca_file
        )
