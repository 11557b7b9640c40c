"""Statistics' settings (env prefix STATS_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_PSEUDONYM_KEY = "dev-stats-pseudonym-key-not-for-production"


class StatsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATS_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8004
    db_schema: str = "stats"
    pseudonym_key: SecretStr = Field(
        SecretStr(DEV_PSEUDONYM_KEY), description="Key of the persons' statistics pseudonym (only stats has it)"
    )
    publish_interval_seconds: float = Field(10.0, gt=0, description="At most one feed snapshot per report this often")
    report_cache_seconds: float = Field(
        5.0, ge=0, description="A computed report is served again until the ingest commits or this many seconds pass"
    )
    max_records: int = Field(5000, ge=1, description="Events per consumer batch")
    ingest_consumers: int = Field(
        2,
        ge=1,
        le=8,
        description="Ingest consumers (group members): one's Python overlaps another's SQL",
    )
    relay_enabled: bool = True
    consumer_enabled: bool = True
    publisher_enabled: bool = True

    @model_validator(mode="after")
    def _no_development_key_in_production(self) -> Self:
        if self.environment == "production" and self.pseudonym_key.get_secret_value() == DEV_PSEUDONYM_KEY:
            raise ValueError("STATS_PSEUDONYM_KEY must be set in production")
        return self
