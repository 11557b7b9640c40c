"""uv.lock pins the whole dependency tree and agrees with pyproject.toml; the set-up and the image install from it;
development-only packages stay out of the runtime dependencies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
DEV_ONLY = {"honcho", "testcontainers", "pytest", "mypy", "ruff", "hypothesis", "playwright", "uv", "cloudevents"}


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is a dev dependency: `make install` puts it in the virtualenv"
    return found


def _name(requirement: str) -> str:
    return re.split(r"[\[=<>~! ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_agrees_with_pyproject() -> None:
    # --locked fails when resolving pyproject.toml again would change uv.lock; --offline keeps it to what is cached
    # (`make install` cached every locked file).
    done = subprocess.run(
        [_uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_every_pin_of_pyproject_is_the_locked_version() -> None:
    locked = {p["name"]: p["version"] for p in LOCK["package"]}
    requirements = [*PYPROJECT["project"]["dependencies"]]
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        requirements.extend(extra)
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        assert version, f"{requirement} is not pinned exactly"
        assert locked[_name(name)] == version.split(";")[0].strip(), requirement


def test_every_locked_file_has_a_hash() -> None:
    for package in LOCK["package"]:
        if package.get("source", {}).get("editable") or package.get("source", {}).get("virtual"):
            continue
        files = [package.get("sdist", {}), *package.get("wheels", [])]
        assert all(f.get("hash", "").startswith("sha256:") for f in files if f), package["name"]


def test_development_packages_are_not_runtime_dependencies() -> None:
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not runtime & DEV_ONLY
    assert "honcho" in {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["run"]}


def test_the_set_up_and_the_image_install_from_the_lock() -> None:
    bootstrap = (ROOT / "deploy/local/bootstrap.sh").read_text()
    assert 'uv" sync --quiet --frozen' in bootstrap or "uv sync --frozen" in bootstrap
    assert "--require-hashes" in bootstrap  # uv itself, by hash
    dockerfile = (ROOT / "deploy/container/Dockerfile").read_text()
    assert "uv export --frozen --no-dev" in dockerfile
    assert "--require-hashes" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\):.*\buv\.lock\b", makefile, re.MULTILINE)
