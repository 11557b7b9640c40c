"""Fixtures of the tests that follow one request across services: intake's fixtures, shared from its folder."""

from tests.integration.intake.conftest import intake_client, intake_settings

__all__ = ["intake_client", "intake_settings"]
