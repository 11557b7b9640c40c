"""The Försäkringskassan simulator's settings (env prefix FKSIM_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.kit.settings import ServiceSettings

DEV_SENDER_SECRET = "dev-minaintyg-to-fk"  # noqa: S105 - the documented development credential


class FksimSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FKSIM_", extra="ignore", frozen=True, populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8011
    db_schema: str = "fk_sim"
    sender_tokens: dict[str, SecretStr] = Field(
        default_factory=lambda: {"minaintyg": SecretStr(DEV_SENDER_SECRET)},
        description='Bearer secret per sender, as JSON: {"sender-name": "secret"}',
    )
    max_body_bytes: int = Field(512 * 1024, ge=1024)
