"""The numbered notebooks run top to bottom on a small cohort, in order, in a fresh data dir.

Notebook 02 trains and registers a champion in a throw-away MLflow store; notebook 03 loads it
from there. The kernel is this interpreter's (the venv's), started in a temporary directory, so
the notebooks' relative defaults never touch the repository's `data/`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = (
    "01-explore-cohort.ipynb",
    "02-train-and-compare.ipynb",
    "03-audit-explanations.ipynb",
)
SMALL_N = 30_000
CELL_TIMEOUT_S = 600
ADDITIVITY = re.compile(r"additivity max abs error: (\S+) over")


def _kernel_manager() -> AsyncKernelManager:
    """A python3 kernel from this interpreter's prefix only, installed there if missing.

    Only the venv's kernel directory is searched, so a `python3` kernelspec in the user's or the
    system's Jupyter paths (possibly another Python) can never be picked up instead.
    """
    kernels = Path(sys.prefix) / "share" / "jupyter" / "kernels"
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    try:
        specs.get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix)
    spec = specs.get_kernel_spec("python3")
    # jupyter_client runs a bare "python" as sys.executable: this very interpreter.
    assert spec.argv[0] in ("python", sys.executable), spec.argv
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _run(name: str, workdir: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
    ).execute(env=env, cleanup_kc=True)  # shut the kernel down although we made its manager
    # Kept for reading after a failure; never written back to the repository.
    nbformat.write(nb, workdir / f"executed-{name}")
    return nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every notebook executed in order against one data directory."""
    workdir = tmp_path_factory.mktemp("notebooks")
    data_dir = workdir / "data"
    env = {
        **os.environ,
        "RISKSCREEN_NB_N": str(SMALL_N),
        "RISKSCREEN_NB_SEED": "7",
        "RISKSCREEN_NB_FAST": "1",
        "RISKSCREEN_DATA_DIR": str(data_dir),
        "RISKSCREEN_CONFIG": str(REPO / "configs" / "train.yaml"),
        "MPLBACKEND": "agg",
    }
    notebooks = {name: _run(name, workdir, env) for name in NOTEBOOKS}
    return {"notebooks": notebooks, "data_dir": data_dir}


def _outputs(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed to stdout."""
    return "".join(
        out["text"]
        for out in _outputs(nb)
        if out["output_type"] == "stream" and out["name"] == "stdout"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_stripped(name: str) -> None:
    raw = (REPO / "notebooks" / name).read_text(encoding="utf-8")
    nb = nbformat.reads(raw, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert not re.search(r'"execution_count": [0-9]', raw)


def test_every_cell_ran_without_error(executed: dict[str, Any]) -> None:
    for name, nb in executed["notebooks"].items():
        errors = [out for out in _outputs(nb) if out["output_type"] == "error"]
        assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), name


def test_exploration_shows_card_and_censoring(executed: dict[str, Any]) -> None:
    nb = executed["notebooks"]["01-explore-cohort.ipynb"]
    html = json.dumps([out.get("data", {}) for out in _outputs(nb)])
    assert "Data card: synthetic intake cohort" in html
    assert "support_excluded" in html and "labelled_share" in html


def test_training_registered_a_champion_and_wrote_the_report(executed: dict[str, Any]) -> None:
    from riskscreen.registry import client
    from riskscreen.settings import Settings

    data_dir = executed["data_dir"]
    reports = list((data_dir / "reports").glob("riskscreen-v*.html"))
    assert len(reports) == 1 and reports[0].stat().st_size > 10_000
    settings = Settings(data_dir=data_dir)
    champion = client(settings).get_model_version_by_alias("riskscreen", "champion")
    assert reports[0].name == f"riskscreen-v{champion.version}.html"
    text = _text(executed["notebooks"]["02-train-and-compare.ipynb"])
    assert "champion: yes" in text
    assert f"mlflow ui --backend-store-uri sqlite:///{data_dir.resolve()}/mlflow.db" in text


def test_audit_shows_additive_explanations(executed: dict[str, Any]) -> None:
    text = _text(executed["notebooks"]["03-audit-explanations.ipynb"])
    found = ADDITIVITY.search(text)
    assert found, text[-2000:]
    assert float(found[1]) < 1e-6
    assert "sv: " in text and "en: " in text
