"""The temporal backtest by intake year: how the evaluated model did on each year it predicted.

The test rows are people of intake years the evaluated model never saw (the held-out years of
the split design, the out-of-fold years of the small-cohort design or an import). Pooled figures
can hide a year that went badly, which is what a municipality most needs to know before the
model meets next year's intake; so each year is shown apart, with a bootstrap interval. On
synthetic data the same rows are also judged against the truth: the share of the achievable
ranking and the ECE against the true probabilities, the yardstick of issue #15.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from riskscreen.model.evaluate import expected_calibration_error, share_of_achievable
from riskscreen.model.small_design import weighted_auc

if TYPE_CHECKING:
    from riskscreen.model.pipeline import TrainingResult

LEVEL = 0.90
REPLICATES = 200
SEED = 7


def backtest_section(result: TrainingResult) -> dict[str, Any]:
    """One row per predicted intake year and one pooled: people, observed rate and mean
    predicted risk (weighted), ROC AUC with its bootstrap interval, and against the truth on
    synthetic data."""
    test = result.test_frame
    years = test["intake_date"].dt.year.to_numpy()
    y, w = test["y"].to_numpy(dtype=np.float64), test["weight"].to_numpy(dtype=np.float64)
    p = test["probability"].to_numpy(dtype=np.float64)
    truth = test["oracle"].to_numpy(dtype=np.float64) if "oracle" in test else None
    rows = [
        _row(str(year), years == year, y, p, w, truth, seed=SEED + i)
        for i, year in enumerate(sorted(set(years.tolist())))
    ]
    rows.append(_row("all years", np.ones(len(y), dtype=bool), y, p, w, truth, seed=SEED))
    return {"rows": rows, "truth": truth is not None, "level": LEVEL, "replicates": REPLICATES}


def _row(
    name: str,
    keep: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    truth: np.ndarray | None,
    *,
    seed: int,
) -> dict[str, Any]:
    y, p, w = y[keep], p[keep], w[keep]
    auc, low, high = _auc_interval(y, p, w, seed)
    row = {
        "year": name,
        "people": f"{int(keep.sum()):,}",
        "observed": f"{np.average(y, weights=w):.3f}",
        "predicted": f"{np.average(p, weights=w):.3f}",
        "auc": f"{auc:.3f}",
        "interval": f"{low:.3f}–{high:.3f}",
    }
    if truth is not None:
        t = truth[keep]
        row["share"] = f"{share_of_achievable(p, t, w):.3f}"
        row["ece_truth"] = f"{expected_calibration_error(t, p, w):.4f}"
    return row


def _auc_interval(y: np.ndarray, p: np.ndarray, w: np.ndarray, seed: int) -> tuple[float, ...]:
    """Weighted ROC AUC and its percentile interval over Poisson(1) bootstrap replicates of
    the people, drawn in blocks so memory stays bounded on a large test cohort."""
    auc = float(weighted_auc(y, p, w[np.newaxis])[0])
    rng = np.random.default_rng(seed)
    block = max(1, min(REPLICATES, 2_000_000 // max(len(y), 1)))
    replicates = np.concatenate(
        [
            weighted_auc(y, p, rng.poisson(1.0, (min(block, REPLICATES - start), len(y))) * w)
            for start in range(0, REPLICATES, block)
        ]
    )
    low, high = np.nanquantile(replicates, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return auc, float(low), float(high)
