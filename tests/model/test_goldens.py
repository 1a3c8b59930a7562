"""No behaviour change across refactors: the default training reproduces the figures recorded
for a fixed seed (first at c10ac4c, the last commit before the domain layout; every later
recording and its reason in tests/goldens/README.md).

A change that alters results on purpose re-records them in a commit of its own that says why:
`.venv/bin/python tests/goldens/figures.py`.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

import pytest
from goldens.figures import GOLDEN, GOLDEN_REPORT, compute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def figures() -> tuple[dict[str, Any], str]:
    return compute()


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_training_figures_are_unchanged(figures: tuple[dict[str, Any], str], golden: dict) -> None:
    now = figures[0]
    for key in ("gates", "chosen", "split_sizes", "label_counts"):
        assert now[key] == golden[key], key
    assert now["metrics"].keys() == golden["metrics"].keys()
    for name, value in golden["metrics"].items():
        assert math.isclose(now["metrics"][name], value, rel_tol=0, abs_tol=1e-12) or (
            math.isnan(value) and math.isnan(now["metrics"][name])
        ), name


def test_scores_and_contributions_are_unchanged(
    figures: tuple[dict[str, Any], str], golden: dict
) -> None:
    now, then = figures[0]["records"], golden["records"]
    assert now["case_ref"] == then["case_ref"]
    for key in ("probability", "base_log_odds"):
        assert now[key] == pytest.approx(then[key], rel=0, abs=1e-12), key
    assert now["contributions"].keys() == then["contributions"].keys()
    for field, values in then["contributions"].items():
        assert now["contributions"][field] == pytest.approx(values, rel=0, abs=1e-12), field


def test_report_content_is_unchanged(figures: tuple[dict[str, Any], str]) -> None:
    report, recorded = figures[1], GOLDEN_REPORT.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            recorded.splitlines(keepends=True), report.splitlines(keepends=True), n=1
        )
    )
    assert report == recorded, diff[:4000]
