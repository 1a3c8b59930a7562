"""Forward-chaining folds over intake years, out-of-fold log-odds, and calibration on them.

With 10^3-10^4 labelled people a fixed held-out split is too small to decide anything
(DESIGN.md, "Small cohorts"). Instead each of the newest intake years is predicted by a model
trained on every earlier year only (rolling origin), as the model will be used: trained on the
past, applied to next year's intake. Model choice and calibration use these out-of-fold
predictions; the served model is then refitted on all years.

The calibration is Platt scaling of the out-of-fold log-odds (slope and intercept): an affine
map, so exact per-field contributions stay additive after it (`bundle.Calibration`).

Callers pass the labelled rows of fully followed-up years only (as `train.temporal_split` keeps
them): a partly followed-up year is a biased subset of its intake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from riskscreen.model.bundle import Calibration
from riskscreen.model.train import fit_calibration

# fit(x, y, w) -> a function giving log-odds for rows of x.
Predictor = Callable[[np.ndarray], np.ndarray]
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], Predictor]


class TooFewPeople(ValueError):
    """The data are too few for the forward-chaining design as configured."""


@dataclass(frozen=True, eq=False)
class YearFold:
    """Train on the rows of every year before `year`; predict the rows of `year`."""

    year: int
    train: np.ndarray  # row positions
    test: np.ndarray


def forward_folds(
    years: np.ndarray, *, test_years: int, min_per_year: int, min_train: int
) -> list[YearFold]:
    """One fold for each of the newest `test_years` intake years, oldest first.

    Args:
        years: the intake year of each labelled row.
        test_years: how many of the newest years are predicted (k).
        min_per_year: the fewest labelled people each predicted year may have.
        min_train: the fewest labelled people the first training window (every year before the
            oldest predicted one) may have.

    Raises:
        TooFewPeople: saying which year or window is short and what to change.
    """
    if test_years < 1:
        raise ValueError("test_years must be at least 1")
    years = np.asarray(years, dtype=np.int64)
    values, counts = np.unique(years, return_counts=True)
    need = (
        f"need at least {min_per_year} in each of the newest {test_years} years and "
        f"{min_train} in the first training window"
    )
    if len(values) <= test_years:
        found = ", ".join(str(v) for v in values) or "none"
        raise TooFewPeople(
            f"{len(values)} intake years with labelled people ({found}); need {test_years} to "
            f"predict and at least one before them; lower `folds.test_years` or use more years"
        )
    for year, count in zip(values[-test_years:], counts[-test_years:], strict=True):
        if count < min_per_year:
            raise TooFewPeople(
                f"year {year} has {count} labelled people; {need}; lower `folds.min_per_year` "
                f"or use more years"
            )
    first_window = int(counts[:-test_years].sum())
    if first_window < min_train:
        raise TooFewPeople(
            f"the years {values[0]}-{values[-test_years - 1]} before the first predicted year "
            f"have {first_window} labelled people; {need}; lower `folds.min_train` or use more "
            f"years"
        )
    return [
        YearFold(int(year), np.flatnonzero(years < year), np.flatnonzero(years == year))
        for year in values[-test_years:]
    ]


@dataclass(frozen=True, eq=False)
class OutOfFold:
    """Log-odds for the predicted rows, each from the model that did not see its year."""

    rows: np.ndarray  # positions in the arrays given to `out_of_fold`
    year: np.ndarray
    log_odds: np.ndarray


def out_of_fold(
    fit: Fit, x: np.ndarray, y: np.ndarray, w: np.ndarray, folds: Sequence[YearFold]
) -> OutOfFold:
    """Fit on each fold's training rows and predict its year; folds in the order given.

    `fit(x, y, w)` returns the fitted model's log-odds function, e.g.
    `lambda x, y, w: PenalizedLogistic(spec=spec).fit(x, y, w).model_.log_odds`.
    """
    predictions = [fit(x[f.train], y[f.train], w[f.train])(x[f.test]) for f in folds]
    return OutOfFold(
        rows=np.concatenate([f.test for f in folds]),
        year=np.concatenate([np.full(len(f.test), f.year) for f in folds]),
        log_odds=np.concatenate(predictions),
    )


def with_intercept_on(
    calibration: Calibration, raw: np.ndarray, y: np.ndarray, w: np.ndarray
) -> Calibration:
    """The same slope, with the intercept that makes the mean predicted risk on these people
    equal their observed rate (weighted): calibration-in-the-large on every labelled person.

    The out-of-fold slope says how far the refit's log-odds are to be trusted; its intercept,
    fitted on the few out-of-fold people (about 480 at 2,000), follows their label noise (a
    measured 0.05 off the truth on one seed). The intercept is one number, so every labelled
    person estimates it better, and the slope keeps the out-of-fold shrinkage.
    """
    offset = calibration.slope * raw
    intercept = calibration.intercept
    for _ in range(50):  # Newton on one parameter: converges in a handful of steps
        p = 1.0 / (1.0 + np.exp(-(offset + intercept)))
        step = float(np.sum(w * (p - y)) / np.sum(w * p * (1.0 - p)))
        intercept -= step
        if abs(step) < 1e-12:
            break
    return Calibration(slope=calibration.slope, intercept=intercept)


def cross_calibrated(oof: OutOfFold, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Probabilities for the predicted rows, each year's calibrated on the other years only.

    Calibration fitted on the same people it is judged on finds an intercept of about 0 and a
    slope of about 1 by construction; the gates would then certify the fit, not the model. Each
    predicted year is a fresh intake cohort for a calibration fitted on the others.
    """
    out = np.empty(len(oof.rows))
    for year in np.unique(oof.year):
        mine = oof.year == year
        rest = oof.rows[~mine]
        cal = fit_calibration(oof.log_odds[~mine], y[rest], w[rest])
        out[mine] = 1.0 / (1.0 + np.exp(-(cal.slope * oof.log_odds[mine] + cal.intercept)))
    return out


def calibrate(oof: OutOfFold, y: np.ndarray, w: np.ndarray) -> Calibration:
    """Weighted Platt scaling of the out-of-fold log-odds (`y`, `w` as given to `out_of_fold`)."""
    return fit_calibration(oof.log_odds, y[oof.rows], w[oof.rows])
