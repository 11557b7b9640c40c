"""Settings shared by every service; each service subclasses with its own env prefix (STYLE rule 2)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kit.internal import DEFAULT_INTERNAL_NETWORKS
from services.kit.secrets import weakness

DEV_CITIZEN_REF_KEY = "dev-citizen-ref-key-not-for-production"
# Loopback needs no TLS; a production DATABASE_URL states its own sslmode.
DEFAULT_DATABASE_URL = "postgresql://minaintyg:minaintyg@127.0.0.1:5432/minaintyg?sslmode=disable"


class TelemetrySettings(BaseSettings):
    """The standard OpenTelemetry environment variables this system honours (each service reads them through its
    settings class, STYLE rule 2)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    otel_sdk_disabled: bool = Field(False, validation_alias="OTEL_SDK_DISABLED")
    otel_service_name: str | None = Field(None, validation_alias="OTEL_SERVICE_NAME")
    otel_traces_exporter: Literal["otlp", "console", "none"] | None = Field(
        None,
        validation_alias="OTEL_TRACES_EXPORTER",
        description="otlp, console or none; unset: otlp when an OTLP endpoint is set, else none (off)",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT", description="The collector's base URL (/v1/traces added)"
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", description="The traces URL, used as it is"
    )
    otel_traces_sampler_arg: float = Field(
        1.0, ge=0.0, le=1.0, validation_alias=AliasChoices("OTEL_TRACES_SAMPLER_ARG"), description="root sample ratio"
    )
    otel_traces_file: str | None = Field(
        None,
        validation_alias="MINAINTYG_OTEL_TRACES_FILE",
        description="With the console exporter: append the spans (JSON) to this file instead of standard output",
    )

    def exporter_name(self) -> Literal["otlp", "console", "none"]:
        """The exporter in effect."""
        if self.otel_sdk_disabled:
            return "none"
        if self.otel_traces_exporter is not None:
            return self.otel_traces_exporter
        return "otlp" if self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint else "none"

    def otlp_traces_endpoint(self) -> str:
        """The URL spans are posted to (the OTLP default, a local collector, when none is set)."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        base = self.otel_exporter_otlp_endpoint or "http://localhost:4318"
        return base.rstrip("/") + "/v1/traces"


class ServiceSettings(TelemetrySettings):
    """What every service reads: where Kafka and PostgreSQL are, and the system-wide keys."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    # Whether the program connects to Kafka (the simulators do not: production's Kafka rules do not apply to them).
    uses_kafka: ClassVar[bool] = True

    environment: Literal["development", "test", "production"] = Field("development", validation_alias="MINAINTYG_ENV")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="How the service connects to the brokers; production requires SASL_SSL (TLS and a login)",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", validation_alias="KAFKA_SASL_MECHANISM", description="The SASL mechanism of the login"
    )
    kafka_sasl_username: str | None = Field(
        None, validation_alias="KAFKA_SASL_USERNAME", description="The service's principal (e.g. intake)"
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, validation_alias="KAFKA_SASL_PASSWORD", description="The principal's password"
    )
    kafka_ssl_ca_file: str | None = Field(
        None,
        validation_alias="KAFKA_SSL_CA_FILE",
        description="CA that signed the brokers' certificates (PEM); unset: the system's trust store",
    )
    kafka_replication_factor: int = Field(1, ge=1, validation_alias="KAFKA_REPLICATION_FACTOR")
    kafka_partitions: int = Field(6, ge=1, validation_alias="KAFKA_PARTITIONS")
    consumer_stall_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias="KAFKA_CONSUMER_STALL_SECONDS",
        description="A consumer with lag that has consumed nothing for this long is stopped and started again",
    )
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    topic_prefix: str = Field(
        "", validation_alias="MINAINTYG_TOPIC_PREFIX", description="Prepended to every topic (tests)"
    )
    internal_networks: tuple[str, ...] = Field(
        DEFAULT_INTERNAL_NETWORKS,
        validation_alias="INTERNAL_NETWORKS",
        description="Where /metrics, /readyz and the OpenAPI document answer from (JSON list of networks); never "
        "through a proxy",
    )
    tls_cert_file: str | None = Field(None, description="Serve HTTPS with this certificate (PEM, chain first)")
    tls_key_file: str | None = Field(None, description="The private key of tls_cert_file (PEM)")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")

    @model_validator(mode="after")
    def _no_weak_secrets_in_production(self) -> Self:
        """Every secret of the settings class (found by type) is strong in production (services/kit/secrets.py)."""
        if self.environment != "production":
            return self
        unused = self.unused_secrets()
        problems = []
        for name, field in type(self).model_fields.items():
            if name in unused:
                continue
            value = getattr(self, name)
            default = field.get_default(call_default_factory=True)
            setting = self.setting_name(name)
            if isinstance(value, SecretStr):
                development = default.get_secret_value() if isinstance(default, SecretStr) else None
                reason = weakness(value.get_secret_value(), development_value=development)
                if reason:
                    problems.append(f"{setting} {reason}")
            elif isinstance(value, dict) and any(
                isinstance(v, SecretStr) for v in [*value.values(), *(default or {}).values()]
            ):
                defaults = {v.get_secret_value() for v in (default or {}).values() if isinstance(v, SecretStr)}
                if not value:
                    problems.append(f"{setting} is empty")
                for key, secret in value.items():
                    plain = secret.get_secret_value()
                    reason = "is the development value" if plain in defaults else weakness(plain)
                    if reason:
                        problems.append(f"{setting}: the secret of {key!r} {reason}")
        if problems:
            raise ValueError("weak secrets refused in production: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        """A SASL protocol comes with its login; production reaches the brokers only over TLS with a login."""
        if not self.uses_kafka:
            return self
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD (the service's principal and its password)"
            )
        if self.environment == "production" and self.kafka_security_protocol != "SASL_SSL":
            raise ValueError(
                f"production connects to Kafka over TLS with a login: KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}, set SASL_SSL with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _tls_certificate_and_key_together(self) -> Self:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            cert, key = self.setting_name("tls_cert_file"), self.setting_name("tls_key_file")
            raise ValueError(f"{cert} and {key} are set together (HTTPS needs both)")
        return self

    def unused_secrets(self) -> set[str]:
        """Fields holding secrets this configuration does not use (not checked); subclasses say which."""
        return set()

    @classmethod
    def setting_name(cls, field: str) -> str:
        """The environment variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def tls_files(self) -> tuple[str, str] | None:
        """(certificate, key) to serve HTTPS with, or None for plain HTTP."""
        return (self.tls_cert_file, self.tls_key_file) if self.tls_cert_file and self.tls_key_file else None

    def topic(self, name: str) -> str:
        """The broker-side name of a contract topic."""
        return f"{self.topic_prefix}{name}"


class CitizenRefKeySettings(BaseSettings):
    """The system key of citizen refs (HMAC of the personnummer). Only the services that turn a personnummer into a
    ref have it: intake (certificates in) and the portal (login); every other service and topic sees refs only."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    citizen_ref_key: SecretStr = Field(SecretStr(DEV_CITIZEN_REF_KEY), validation_alias="CITIZEN_REF_KEY")


def own_database_url(env_prefix: str) -> Any:
    """A service's `database_url` field: `<PREFIX>DATABASE_URL`, its own role's URL (one role per service, owning
    only its schema), else the shared `DATABASE_URL` (tests, and a PostgreSQL set up with one role for all)."""
    return Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices(f"{env_prefix}DATABASE_URL", "DATABASE_URL"),
        description="This process's PostgreSQL URL, as its own role (migrations too); unset: `DATABASE_URL`",
    )
