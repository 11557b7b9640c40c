"""Statistics' settings (env prefix STATS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings, own_database_url

DEV_PSEUDONYM_KEY = "dev-stats-pseudonym-key-not-for-production"
DEV_ANALYST_TOKEN = "dev-analyst-secret"  # noqa: S105 - the documented development credential (ARCHITECTURE.md)


class StatsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATS_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8004
    db_schema: str = "stats"
    database_url: str = own_database_url("STATS_")
    pseudonym_key: SecretStr = Field(
        SecretStr(DEV_PSEUDONYM_KEY), description="Key of the persons' statistics pseudonym (only stats has it)"
    )
    publish_interval_seconds: float = Field(
        86_400.0, gt=0, description="Release cadence: preliminary tables and the feed change at most this often "
        "(whole multiples since the epoch: daily at 00:00 UTC)"
    )  # fmt: skip
    close_after_days: int = Field(5, ge=0, description="A period is closed (final) this many days after it ends")
    preliminary_min_changes: int = Field(
        20, ge=1, description="A release replaces the preliminary tables only when this many cases changed"
    )
    county_min_cases: int = Field(100, ge=1, description="A county table only where the county has this many cases")
    analyst_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"dev": SecretStr(DEV_ANALYST_TOKEN)},
        description="Bearer token per analyst organisation (name → token), JSON in STATS_ANALYST_TOKENS",
    )
    rate_limit: str = Field("120/minute", description="Queries per analyst credential (limits' notation)")
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
