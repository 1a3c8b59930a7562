"""The layer contract in pyproject.toml is enforced: a backwards import fails `lint-imports`.

Runs the linter on a copy of the package with one upward import added (the data contract
reaching into the model), so the test fails if the contract stops catching it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.nbc", "*.nbi")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    shutil.copytree(ROOT / "service", tree / "service", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_backwards_import_is_refused_with_the_linters_message(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    schema = tree / "src" / "riskscreen" / "contract" / "schema.py"
    schema.write_text(
        schema.read_text(encoding="utf-8") + "\nfrom riskscreen.model import bundle  # noqa\n",
        encoding="utf-8",
    )
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "layered: each imports only the layers below it BROKEN" in done.stdout
    assert "riskscreen.contract.schema -> riskscreen.model.bundle" in done.stdout


def test_a_module_outside_every_layer_is_refused(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    (tree / "src" / "riskscreen" / "helpers.py").write_text('"""Unplaced."""\n')
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "riskscreen.helpers" in done.stdout
