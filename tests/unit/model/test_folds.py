"""Forward-chaining folds over intake years on a ~3,000-person cohort: each newest year predicted
from earlier years only, clear refusals when the data are too few, and Platt scaling on the
out-of-fold log-odds."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.model.folds import (
    OutOfFold,
    Predictor,
    TooFewPeople,
    YearFold,
    calibrate,
    forward_folds,
    out_of_fold,
)
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)


@dataclass(frozen=True)
class Data:
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    years: np.ndarray


@pytest.fixture(scope="module")
def data() -> Data:
    cohort = generate_cohort(3000, 11)
    labels = make_labels(cohort.intake, cohort.outcomes)
    keep = (labels["status"] == "labelled").to_numpy()
    return Data(
        encode_frame(cohort.intake[keep], SPEC),
        labels["long_settlement"][keep].to_numpy(dtype=float),
        labels["ipcw_weight"][keep].to_numpy(),
        labels["intake_year"][keep].to_numpy(),
    )


def _folds(
    data: Data, *, test_years: int = 3, min_per_year: int = 150, min_train: int = 1000
) -> list[YearFold]:
    return forward_folds(
        data.years, test_years=test_years, min_per_year=min_per_year, min_train=min_train
    )


def test_each_newest_year_is_predicted_from_earlier_years_only(data: Data) -> None:
    newest = sorted(set(data.years.tolist()))[-3:]
    folds = _folds(data)
    assert [f.year for f in folds] == newest
    for fold in folds:
        np.testing.assert_array_equal(fold.train, np.flatnonzero(data.years < fold.year))
        np.testing.assert_array_equal(fold.test, np.flatnonzero(data.years == fold.year))


def _mean_rate(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Predictor:
    rate = np.average(y, weights=w)
    return lambda rows: np.full(len(rows), np.log(rate / (1 - rate)))


def test_out_of_fold_predicts_each_row_once_from_its_own_fold(data: Data) -> None:
    folds = _folds(data)
    oof = out_of_fold(_mean_rate, data.x, data.y, data.w, folds)
    assert sorted(oof.rows.tolist()) == np.flatnonzero(data.years >= folds[0].year).tolist()
    np.testing.assert_array_equal(oof.year, data.years[oof.rows])
    for fold in folds:
        earlier = data.years < fold.year
        rate = np.average(data.y[earlier], weights=data.w[earlier])
        np.testing.assert_allclose(oof.log_odds[oof.year == fold.year], np.log(rate / (1 - rate)))


def test_too_few_people_are_refused_with_the_remedy(data: Data) -> None:
    newest = sorted(set(data.years.tolist()))[-3:]
    counts = {year: int((data.years == year).sum()) for year in newest}
    needed = min(counts.values()) + 1
    short = min(year for year in newest if counts[year] < needed)  # the oldest short year
    expected = (
        f"year {short} has {counts[short]} labelled people; need at least {needed} in each of "
        f"the newest 3 years and 1000 in the first training window; lower `folds.min_per_year` "
        f"or use more years"
    )
    with pytest.raises(TooFewPeople, match=re.escape(expected)):
        _folds(data, min_per_year=needed)
    window = int((data.years < newest[0]).sum())
    with pytest.raises(TooFewPeople, match=rf"have {window} labelled people.*`folds.min_train`"):
        _folds(data, min_train=window + 1)
    with pytest.raises(TooFewPeople, match=r"9 intake years .*`folds.test_years`"):
        _folds(data, test_years=9)
    assert len(_folds(data, min_per_year=needed - 1, min_train=window)) == 3


def test_platt_scaling_on_out_of_fold_log_odds(data: Data) -> None:
    def linear(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Predictor:
        return PenalizedLogistic(spec=SPEC, cs=(0.05,)).fit(x, y, w).model_.log_odds

    oof = out_of_fold(linear, data.x, data.y, data.w, _folds(data))
    y, w = data.y[oof.rows], data.w[oof.rows]
    assert roc_auc_score(y, oof.log_odds, sample_weight=w) > 0.7
    cal = calibrate(oof, data.y, data.w)
    p = 1 / (1 + np.exp(-(cal.slope * oof.log_odds + cal.intercept)))
    # The score equations of a weighted Platt fit: the calibrated risk matches the observed
    # rate on average and along the log-odds.
    assert np.average(p, weights=w) == pytest.approx(np.average(y, weights=w), abs=1e-4)
    assert np.average((p - y) * oof.log_odds, weights=w) == pytest.approx(0.0, abs=1e-4)


def test_platt_scaling_recovers_a_known_distortion() -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 1.5, 40_000)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(float)
    w = rng.choice([1.0, 2.0], len(z))
    rows = np.arange(len(z))
    oof = OutOfFold(rows=rows, year=np.full(len(z), 2020), log_odds=(z - 0.5) / 2)
    cal = calibrate(oof, y, w)
    assert cal.slope == pytest.approx(2.0, abs=0.1)
    assert cal.intercept == pytest.approx(0.5, abs=0.1)  # z = 2 * log_odds + 0.5
    # A weight of 2 counts as the row twice.
    twice = np.concatenate([rows, rows[w == 2]])
    dup = OutOfFold(rows=twice, year=np.full(len(twice), 2020), log_odds=oof.log_odds[twice])
    unweighted = calibrate(dup, y, np.ones(len(z)))
    assert cal.slope == pytest.approx(unweighted.slope, abs=1e-4)
    assert cal.intercept == pytest.approx(unweighted.intercept, abs=1e-4)
