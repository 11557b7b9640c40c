"""Settings shared by every service; each service subclasses with its own env prefix (STYLE rule 2)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_CITIZEN_REF_KEY = "dev-citizen-ref-key-not-for-production"
# Loopback needs no TLS; a production DATABASE_URL states its own sslmode.
DEFAULT_DATABASE_URL = "postgresql://minaintyg:minaintyg@127.0.0.1:5432/minaintyg?sslmode=disable"


class ServiceSettings(BaseSettings):
    """What every service reads: where Kafka and PostgreSQL are, and the system-wide keys."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field("development", validation_alias="MINAINTYG_ENV")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_replication_factor: int = Field(1, ge=1, validation_alias="KAFKA_REPLICATION_FACTOR")
    kafka_partitions: int = Field(6, ge=1, validation_alias="KAFKA_PARTITIONS")
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    topic_prefix: str = Field(
        "", validation_alias="MINAINTYG_TOPIC_PREFIX", description="Prepended to every topic (tests)"
    )
    citizen_ref_key: SecretStr = Field(SecretStr(DEV_CITIZEN_REF_KEY), validation_alias="CITIZEN_REF_KEY")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> Self:
        if self.environment == "production" and self.citizen_ref_key.get_secret_value() == DEV_CITIZEN_REF_KEY:
            raise ValueError("CITIZEN_REF_KEY must be set in production")
        return self

    def topic(self, name: str) -> str:
        """The broker-side name of a contract topic."""
        return f"{self.topic_prefix}{name}"
