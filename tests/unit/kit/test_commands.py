"""Every console script is a command: `--help` prints help and exits 0, an unknown argument is an error (exit 2);
every `minaintyg-admin` command has help text and an example."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
ADMIN_COMMANDS = [
    ["care-units"],
    ["care-units", "list"],
    ["care-units", "connect"],
    ["care-units", "disconnect"],
    ["care-units", "connect-simulated"],
    ["outbox"],
    ["lag"],
    ["dlq"],
    ["stats"],
    ["stats", "rebuild"],
    ["stats", "consent-simulated"],
    ["dispatch"],
    ["dispatch", "list"],
    ["dispatch", "retry"],
]


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as installed: `module:function` called with `args` as its command line."""
    module, function = SCRIPTS[script].split(":")
    code = f"import sys; sys.argv[0] = {script!r}; from {module} import {function}; {function}()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_prints_help_and_exits_0(script: str) -> None:
    done = run(script, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout[:200]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_an_unknown_argument_is_an_error(script: str) -> None:
    done = run(script, "--no-such-option")
    assert done.returncode == 2, (done.stdout[-500:], done.stderr[-500:])
    assert "error:" in done.stderr


def test_the_installed_scripts_are_these_commands() -> None:
    assert {"minaintyg-admin", "fk-sim", "idp-sim", "platform-sim", "minaintyg-infra"} <= set(SCRIPTS)
    assert {f"minaintyg-{s}" for s in ("intake", "consent", "portal", "dispatch", "stats")} <= set(SCRIPTS)


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_every_admin_command_has_help_text_and_an_example(command: list[str]) -> None:
    done = run("minaintyg-admin", *command, "--help")
    assert done.returncode == 0, done.stderr
    description = done.stdout.split("\n\n")[1]
    assert len(description.strip()) > 10, done.stdout
    assert "example" in done.stdout, done.stdout
    assert f"minaintyg-admin {' '.join(command)}" in done.stdout.split("example", 1)[1]
