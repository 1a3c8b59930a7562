"""A model trained elsewhere, recalibrated on a municipality's own labelled people.

A model trained on a larger cohort may rank this municipality's intake well and still be off in
level (another labour market, another mix of arrivals). Recalibration fits an intercept and a
slope on the imported model's served log-odds (Platt scaling, weighted by the censoring
weights) and composes them into the bundle's affine calibration:

    served = s2 * (s1 * raw + i1) + i2 = (s2 * s1) * raw + (s2 * i1 + i2),

so the imported model's exact contributions scale with it and base + Σ contributions stays the
served log-odds (DESIGN.md, "Explanations are exact").

Judged honestly, as the small-cohort design judges its own models (`small_design`): the newest
`test_years` complete years, the years the local design predicts (`folds.forward_folds`), each
get probabilities from a calibration fitted on the other years only (`folds.cross_calibrated`),
since a calibration judged on the people it was fitted on looks perfect by construction. The
imported model saw none of the local people, so every other labelled year may calibrate a year,
not only the other predicted ones. The capacity thresholds are set on these out-of-fold
probabilities; the served calibration is fitted on every labelled local person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscreen.contract.cross import INTAKE_DATE
from riskscreen.contract.features import encode_frame
from riskscreen.model.bundle import Calibration, ModelBundle
from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.folds import (
    OutOfFold,
    YearFold,
    calibrate,
    cross_calibrated,
    forward_folds,
)
from riskscreen.model.train import capacity_thresholds


@dataclass(frozen=True)
class Recalibration:
    """The local map on the imported model's served log-odds, and the people it rests on."""

    slope: float
    intercept: float
    n_labelled: int
    years: tuple[int, ...]  # every intake year of the labelled people it was fitted on
    test_years: tuple[int, ...]  # the years judged out of fold (the backtest's)

    def to_dict(self) -> dict[str, Any]:
        return {
            "slope": self.slope,
            "intercept": self.intercept,
            "n_labelled": self.n_labelled,
            "years": list(self.years),
            "test_years": list(self.test_years),
        }


@dataclass(frozen=True)
class RecalibratedFit:
    """The imported model with the composed calibration and local thresholds, and its backtest.

    `oof` has one row per person of the predicted years: `row` (position in the frame given),
    `year`, `y`, `weight` and `probability`, each year calibrated on the other years;
    `folds` are the predicted years with the rows before each (for baselines fitted on them).
    """

    bundle: ModelBundle
    recalibration: Recalibration
    oof: pd.DataFrame
    folds: tuple[YearFold, ...]


def compose(first: Calibration, then: Calibration) -> Calibration:
    """`then` applied after `first`: one affine map of the raw log-odds."""
    return Calibration(
        slope=then.slope * first.slope, intercept=then.slope * first.intercept + then.intercept
    )


def recalibrate(
    imported: ModelBundle,
    frame: pd.DataFrame,
    folds: SmallDesignConfig,
    *,
    capacity: float,
    elevated_share: float,
    num_threads: int = 0,
) -> RecalibratedFit:
    """Recalibrate `imported` on local labelled people and judge it out of fold.

    Args:
        imported: the bundle as it arrived; not changed.
        frame: labelled rows of fully followed-up intake years: `intake_date`, the fields of
            the imported model, `y` (0/1) and `weight` (censoring weight).
        folds: which years are predicted and the fewest people they need (`test_years`,
            `min_per_year`, `min_train`), as for the local small-cohort design.
        capacity: the weighted share flagged `high`.
        elevated_share: the next share, `elevated`.
        num_threads: for scoring a tree model (LightGBM's convention, 0 for every core).

    Raises:
        TooFewPeople: a predicted year or the years before them are short.
        ValueError: rows that are not labelled.
    """
    years = frame[INTAKE_DATE].dt.year.to_numpy(dtype=np.int64)
    predicted = forward_folds(
        years,
        test_years=folds.test_years,
        min_per_year=folds.min_per_year,
        min_train=folds.min_train,
    )
    y = frame["y"].to_numpy(dtype=np.float64, na_value=np.nan)
    w = frame["weight"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isin(y, (0.0, 1.0)).all() or not (np.isfinite(w) & (w > 0)).all():
        raise ValueError("pass labelled rows only: y 0 or 1 and a positive finite weight")
    served = imported.log_odds(encode_frame(frame, imported.spec), num_threads)
    everyone = OutOfFold(rows=np.arange(len(frame)), year=years, log_odds=served)
    local = calibrate(everyone, y, w)
    probability = cross_calibrated(everyone, y, w)
    rows = np.concatenate([f.test for f in predicted])
    thresholds = capacity_thresholds(probability[rows], w[rows], capacity, elevated_share)
    bundle = ModelBundle(
        imported.model, imported.spec, compose(imported.calibration, local), thresholds
    )
    recalibration = Recalibration(
        slope=local.slope,
        intercept=local.intercept,
        n_labelled=len(frame),
        years=tuple(int(v) for v in np.unique(years)),
        test_years=tuple(f.year for f in predicted),
    )
    oof = pd.DataFrame(
        {
            "row": rows,
            "year": years[rows],
            "y": y[rows],
            "weight": w[rows],
            "probability": probability[rows],
        }
    )
    return RecalibratedFit(bundle, recalibration, oof, tuple(predicted))
