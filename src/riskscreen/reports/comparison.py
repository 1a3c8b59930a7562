"""The model against its comparators on the test cohort: their scores and the metrics table.

Kept apart from the figures so that the metrics table can be built without matplotlib: the
exploration notebook shows the very cells the report shows (`jobs.explore.comparison_table`).
The curves in `figures` read the same `TestScores`, so a table cell and a curve never disagree
about which rows, weights or comparators they describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from riskscreen.model.config import TrainConfig
from riskscreen.model.evaluate import checklist_factors, expected_calibration_error

if TYPE_CHECKING:
    from riskscreen.model.pipeline import TrainingResult

COMPARATORS: dict[str, tuple[str, str]] = {  # key -> (column title, logged-metric prefix)
    "model": ("Model", "test_"),
    "checklist": ("Checklist baseline", "test_checklist_"),
    "logreg": ("Logistic regression", "test_logreg_"),
    "oracle": ("Oracle (true probability)", "test_oracle_"),
}
METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("brier", "Brier score (lower is better)"),
    ("ece", "Expected calibration error (lower is better)"),
    ("recall_at_capacity", "Recall at capacity"),
    ("precision_at_capacity", "Precision at capacity"),
    ("share_flagged", "Share flagged"),
)


# --- formatting -------------------------------------------------------------------------------


def format_metric(name: str, value: float) -> str:
    """The one way a logged metric is printed, so tests and readers can find it verbatim."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not assessable"
    if name == "test_n":
        return f"{value:,.0f}"
    return f"{value:.4f}"


# --- the test cohort's scores ----------------------------------------------------------------


@dataclass(frozen=True)
class TestScores:
    """Everything the curves need, taken from the test rows the evaluation used."""

    y: np.ndarray
    w: np.ndarray
    scores: dict[str, np.ndarray]  # comparator key -> score (higher = riskier)
    probabilistic: frozenset[str]  # comparators whose score is a probability

    @classmethod
    def from_result(cls, result: TrainingResult, cfg: TrainConfig) -> TestScores:
        """Model and checklist always; the oracle and the logistic regression only when the
        test frame carries their probabilities (columns `oracle`, `logreg`)."""
        frame = result.test_frame
        scores = {
            "model": frame["probability"].to_numpy(dtype=float),
            "checklist": checklist_factors(frame, cfg.checklist),
        }
        for key in ("logreg", "oracle"):
            if key in frame.columns:
                scores[key] = frame[key].to_numpy(dtype=float)
        return cls(
            frame["y"].to_numpy(dtype=float),
            frame["weight"].to_numpy(dtype=float),
            scores,
            frozenset(k for k in scores if k != "checklist"),
        )


def capacity_curve(
    score: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted share flagged and recall when flagging from the highest score down.

    Tied scores enter together; the straight line between two points is the expectation of a
    random tie-break, the same convention `evaluate.checklist_flags` uses.
    """
    order = np.argsort(-score, kind="stable")
    s, ww, yw = score[order], w[order], (w * y)[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    share = np.r_[0.0, np.cumsum(ww)[last_of_tie]] / ww.sum()
    recall = np.r_[0.0, np.cumsum(yw)[last_of_tie]] / yw.sum()
    return share, recall


def _at_share(key: str, metric: str, scores: TestScores, share: float) -> float:
    share_grid, recall_grid = capacity_curve(scores.scores[key], scores.y, scores.w)
    recall = float(np.interp(share, share_grid, recall_grid))
    if metric == "recall_at_capacity":
        return recall
    prevalence = float(np.average(scores.y, weights=scores.w))
    return recall * prevalence / share if share > 0 else float("nan")


def _not_computable(key: str, metric: str, scores: TestScores) -> str | None:
    """Why a comparison cell stays empty: '–' without scores, 'n/a' where it means nothing."""
    if key not in scores.scores:
        return "–"
    if metric in ("brier", "ece") and key not in scores.probabilistic:
        return "n/a"
    return None


def _computed_metric(key: str, metric: str, scores: TestScores, share: float) -> float:
    """A comparison cell the evaluation did not log, computed from the same rows and weights."""
    y, w, s = scores.y, scores.w, scores.scores[key]
    if metric == "roc_auc":
        return float(roc_auc_score(y, s, sample_weight=w))
    if metric == "pr_auc":
        return float(average_precision_score(y, s, sample_weight=w))
    if metric == "brier":
        return float(brier_score_loss(y, s, sample_weight=w))
    if metric == "ece":
        return expected_calibration_error(y, s, w)
    if metric == "share_flagged":
        return share
    return _at_share(key, metric, scores, share)


def has_oracle(result: TrainingResult) -> bool:
    """Synthetic runs know the true probabilities; real data never do."""
    return "oracle" in result.test_frame.columns or any(
        k.startswith("test_oracle_") for k in result.evaluation.metrics
    )


# --- the table --------------------------------------------------------------------------------


def metrics_section(result: TrainingResult, cfg: TrainConfig, scores: TestScores) -> dict[str, Any]:
    """Model against the baselines; logged `test_*` metrics first, report-computed cells marked."""
    metrics = result.evaluation.metrics
    share = metrics["test_share_flagged"]
    keys = [k for k in COMPARATORS if k != "oracle" or has_oracle(result)]
    rows = []
    for metric, title in METRIC_ROWS:
        cells: list[dict[str, Any]] = []
        for key in keys:
            name = COMPARATORS[key][1] + metric
            if name in metrics:
                cells.append({"value": format_metric(name, metrics[name]), "name": name})
                continue
            reason = _not_computable(key, metric, scores)
            value = reason or format_metric("", _computed_metric(key, metric, scores, share))
            cells.append({"value": value, "name": None, "computed": reason is None})
        rows.append({"title": title, "cells": cells})
    all_metrics = [
        {"name": k, "value": format_metric(k, v)}
        for k, v in sorted(metrics.items())
        if k.startswith("test_")
    ]
    return {
        "columns": [COMPARATORS[k][0] for k in keys],
        "rows": rows,
        "all": all_metrics,
        "capacity": cfg.capacity,
    }
