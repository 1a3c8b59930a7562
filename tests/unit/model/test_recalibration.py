"""Recalibrating an imported model on local people: a known miscalibration is recovered, the
composed map keeps the explanations exact, and the backtest is judged out of fold.

The imported model is a logistic regression trained on one synthetic world (seed 11). The local
municipality (seed 21) lives in a world whose true log-odds are those of the generator's truth
shifted by +0.5: its labels are drawn from that shifted truth, so the recalibration should find
an intercept of about +0.5 and a slope of about 1, and bring the probabilities to the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.model.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.folds import TooFewPeople
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.recalibration import RecalibratedFit, compose, recalibrate
from riskscreen.model.train import capacity_thresholds, fit_calibration
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)
SHIFT = 0.5
FOLDS = SmallDesignConfig()


def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def ece_against_truth(p: np.ndarray, truth: np.ndarray) -> float:
    """10 equal-count bins of the predicted probability, share-weighted |mean p − mean truth|."""
    bins = np.array_split(np.argsort(p, kind="stable"), 10)
    return float(sum(len(b) * abs(p[b].mean() - truth[b].mean()) for b in bins) / len(p))


@pytest.fixture(scope="module")
def imported() -> ModelBundle:
    cohort = generate_cohort(4000, 11)
    labels = make_labels(cohort.intake, cohort.outcomes)
    keep = (labels["status"] == "labelled").to_numpy()
    x = encode_frame(cohort.intake[keep], SPEC)
    y = labels["long_settlement"][keep].to_numpy(dtype=float)
    w = labels["ipcw_weight"][keep].to_numpy()
    model = PenalizedLogistic(spec=SPEC, cs=(0.1, 1.0), cv=3).fit(x, y, w).model_
    return ModelBundle(model, SPEC, Calibration(1.0, 0.0), Thresholds(0.6, 0.4), {})


@pytest.fixture(scope="module")
def shifted() -> tuple[pd.DataFrame, np.ndarray]:
    """Local people whose true log-odds are the generator's + SHIFT, labelled from that truth."""
    cohort = generate_cohort(4000, 21)
    p = cohort.oracle["p_long_settlement"].to_numpy()
    truth = _expit(np.log(p / (1 - p)) + SHIFT)
    frame = cohort.intake.reset_index(drop=True).copy()
    frame["y"] = (np.random.default_rng(21).random(len(frame)) < truth).astype(float)
    frame["weight"] = 1.0
    return frame, truth


@pytest.fixture(scope="module")
def fit(imported: ModelBundle, shifted: tuple[pd.DataFrame, np.ndarray]) -> RecalibratedFit:
    return recalibrate(imported, shifted[0], FOLDS, capacity=0.25, elevated_share=0.25)


def test_a_known_shift_is_recovered_and_the_probabilities_reach_the_truth(
    imported: ModelBundle, shifted: tuple[pd.DataFrame, np.ndarray], fit: RecalibratedFit
) -> None:
    frame, truth = shifted
    rec = fit.recalibration
    assert rec.intercept == pytest.approx(SHIFT, abs=0.15), rec
    assert rec.slope == pytest.approx(1.0, abs=0.15), rec
    x = encode_frame(frame, SPEC)
    before = ece_against_truth(_expit(imported.log_odds(x)), truth)
    after = ece_against_truth(_expit(fit.bundle.log_odds(x)), truth)
    rows = fit.oof["row"].to_numpy()
    out_of_fold = ece_against_truth(fit.oof["probability"].to_numpy(), truth[rows])
    assert before > 0.07 and after < 0.025 and after < before / 3, (before, after)
    assert out_of_fold < 0.03, out_of_fold
    assert rec.n_labelled == len(frame) and rec.years == tuple(range(2015, 2025))


def test_the_composed_map_keeps_contributions_exact(
    imported: ModelBundle, shifted: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame = shifted[0]
    first = ModelBundle(imported.model, SPEC, Calibration(0.9, -0.1), imported.thresholds, {})
    fit = recalibrate(first, frame, FOLDS, capacity=0.25, elevated_share=0.25)
    rec, served = fit.recalibration, fit.bundle
    assert served.calibration == compose(first.calibration, Calibration(rec.slope, rec.intercept))
    x = encode_frame(frame, SPEC)
    np.testing.assert_allclose(
        served.log_odds(x), rec.slope * first.log_odds(x) + rec.intercept, rtol=0, atol=1e-12
    )
    base, contrib = served.contributions(x)
    np.testing.assert_allclose(base + contrib.sum(axis=1), served.log_odds(x), rtol=0, atol=1e-9)
    assert served.model is first.model and first.calibration == Calibration(0.9, -0.1)


def test_the_backtest_is_out_of_fold_on_the_newest_years(
    imported: ModelBundle, shifted: tuple[pd.DataFrame, np.ndarray], fit: RecalibratedFit
) -> None:
    frame = shifted[0]
    years = frame["intake_date"].dt.year.to_numpy()
    newest = (2022, 2023, 2024)
    assert fit.recalibration.test_years == newest == tuple(f.year for f in fit.folds)
    assert set(fit.oof["row"]) == set(np.flatnonzero(np.isin(years, newest)))
    served = imported.log_odds(encode_frame(frame, SPEC))
    y = frame["y"].to_numpy()
    w = frame["weight"].to_numpy()
    # 2023 is calibrated on every other labelled year, never on itself.
    mine = years == 2023
    cal = fit_calibration(served[~mine], y[~mine], w[~mine])
    rows = fit.oof[fit.oof["year"] == 2023]
    np.testing.assert_allclose(
        rows["probability"],
        _expit(cal.slope * served[rows["row"]] + cal.intercept),
        rtol=0,
        atol=1e-12,
    )
    expected = capacity_thresholds(fit.oof["probability"].to_numpy(), w[fit.oof["row"]], 0.25, 0.25)
    assert fit.bundle.thresholds == expected


def test_too_few_people_and_unlabelled_rows_are_refused(
    imported: ModelBundle, shifted: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame = shifted[0]
    with pytest.raises(TooFewPeople, match="year 2022 has"):
        few = frame[(frame["intake_date"].dt.year != 2022) | (frame.index % 20 == 0)]
        recalibrate(imported, few, FOLDS, capacity=0.25, elevated_share=0.25)
    blank = frame.assign(y=frame["y"].where(frame.index != 5))
    with pytest.raises(ValueError, match="labelled rows only"):
        recalibrate(imported, blank, FOLDS, capacity=0.25, elevated_share=0.25)
