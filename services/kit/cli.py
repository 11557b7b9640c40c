"""Command-line parsing for the service and simulator commands: they are configured by the environment only (STYLE
rule 2), so they take no arguments, but `--help` says so and lists the variables, and anything else is an error."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import AliasChoices
from pydantic_settings import BaseSettings


def environment_names(settings: type[BaseSettings]) -> list[str]:
    """The environment variables a settings class reads, in declaration order."""
    prefix = str(settings.model_config.get("env_prefix") or "")
    names: list[str] = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.extend(str(choice) for choice in alias.choices if isinstance(choice, str))
        else:
            names.append(f"{prefix}{name}".upper())
    return names


def parse_service_arguments(
    prog: str, description: str, settings: type[BaseSettings], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse the (empty) command line of a service: `--help` prints what configures it and exits 0; an unknown
    argument is an error (exit 2) rather than silently ignored."""
    variables = ", ".join(environment_names(settings))
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"Configured by the environment only: {variables}. See README.md for each variable's meaning.",
    )
    return parser.parse_args(argv)
