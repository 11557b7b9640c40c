"""Every environment variable the processes read, from their pydantic-settings classes (the only readers of the
environment, STYLE rule 2): `python -m deploy.settings_reference` prints the README's configuration table."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from services.kit.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]


def console_scripts() -> dict[str, str]:
    """Console script → `module:function`, from pyproject.toml."""
    scripts: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts


def settings_of(command: str) -> type[BaseSettings] | None:
    """The settings class of a console script's package (`services.intake.__main__` → `services.intake.settings`);
    the operator's command reads the common settings; None for a process configured by its arguments only."""
    if command == "minaintyg-admin":
        return ServiceSettings
    package = console_scripts()[command].split(":")[0].rsplit(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError:
        return None
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise LookupError(f"{module.__name__} should define exactly one settings class, has {len(classes)}")
    return classes[0]


def env_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable of one field."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias.upper()
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable `settings` reads (each choice of a field read from one of several)."""
    names = {env_name(settings, name, field) for name, field in settings.model_fields.items()}
    for field in settings.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(choice).upper() for choice in field.validation_alias.choices}
    return names


def _overrides(settings: type[BaseSettings], name: str, field: FieldInfo) -> bool:
    """Whether the field is not a common one, or one the class reads from a variable of its own."""
    common = ServiceSettings.model_fields.get(name)
    return common is None or env_name(settings, name, field) != env_name(ServiceSettings, name, common)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return "a development secret (required in production)"
    if isinstance(value, dict) and any(isinstance(v, SecretStr) for v in value.values()):
        return "development secrets (required in production)"
    return f"`{value}`" if value not in (None, "") else "—"


def _row(settings: type[BaseSettings], name: str, field: FieldInfo, reader: str) -> str:
    return f"| `{env_name(settings, name, field)}` | {_default(field)} | {reader} | {field.description or ''} |"


def table() -> str:
    """The configuration table: one row per variable, the common ones first."""
    rows = [_row(ServiceSettings, name, field, "every service") for name, field in ServiceSettings.model_fields.items()]
    for command in sorted(console_scripts()):
        settings = settings_of(command)
        if settings is None or settings is ServiceSettings:
            continue
        rows += [
            _row(settings, n, f, f"`{command}`") for n, f in settings.model_fields.items() if _overrides(settings, n, f)
        ]
    return "\n".join(["| variable | default | read by | what |", "|---|---|---|---|", *rows])


if __name__ == "__main__":
    print(table())
