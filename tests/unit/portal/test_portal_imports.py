"""The portal's import contracts (pyproject's [tool.importlinter]): no cycle among its modules, the pages and the
JSON API independent of each other, and its layers in one direction. The checker itself is shown to fail on a
package with a cycle, so a green run means something."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import EXIT_STATUS_ERROR, EXIT_STATUS_SUCCESS, lint_imports

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


def test_the_portal_keeps_its_import_contracts() -> None:
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True, verbose=True)
    assert status == EXIT_STATUS_SUCCESS  # the broken contract is printed above


def test_the_cycle_check_fails_on_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "circular_example"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("from circular_example import web\n")
    (package / "web.py").write_text("from circular_example import api\n")
    (package / "api.py").write_text("")
    config = tmp_path / "importlinter.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["circular_example"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "no cycle"\ntype = "acyclic_siblings"\n'
        'ancestors = ["circular_example"]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def lint() -> int:
        return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)

    assert lint() == EXIT_STATUS_SUCCESS  # app → web → api
    (package / "api.py").write_text("from circular_example import app\n")  # api → app closes the circle
    assert lint() == EXIT_STATUS_ERROR
