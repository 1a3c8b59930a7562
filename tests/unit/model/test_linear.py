"""The penalized logistic regression: sklearn's numbers from JSON alone, exact contributions
against the training mean, missing values and unseen levels, and weights that reach the fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from family_data import AGE, COGNITIVE, DISABILITY, SPEC, WORK, Data, family_data

from riskscreen.model.linear import LinearModel, PenalizedLogistic, design_matrix


@pytest.fixture(scope="module")
def data() -> Data:
    data = family_data()
    # Informative missingness: work experience is missing far more often for long settlers.
    rng = np.random.default_rng(3)
    data.x[rng.random(len(data.y)) < np.where(data.y == 1, 0.3, 0.05), WORK] = np.nan
    return data


@pytest.fixture(scope="module")
def fitted(data: Data) -> PenalizedLogistic:
    return PenalizedLogistic(spec=SPEC).fit(data.x, data.y, sample_weight=data.w)


def _round_trip(model: LinearModel) -> LinearModel:
    return LinearModel.from_json(json.loads(json.dumps(model.to_json(), allow_nan=False)))


def test_scores_from_json_alone_equal_sklearn(data: Data, fitted: PenalizedLogistic) -> None:
    loaded = _round_trip(fitted.model_)
    assert (data.x_new[:, DISABILITY] == COGNITIVE).any()
    for x in (data.x, data.x_new):
        design = design_matrix(x, fitted.model_.encodings)  # what sklearn was fitted on
        log_odds = loaded.log_odds(x)
        np.testing.assert_allclose(
            log_odds, fitted.estimator_.decision_function(design), rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            1 / (1 + np.exp(-log_odds)),
            fitted.estimator_.predict_proba(design)[:, 1],
            rtol=0,
            atol=1e-12,
        )


def test_contributions_add_up_and_average_zero_in_training(
    data: Data, fitted: PenalizedLogistic
) -> None:
    model = fitted.model_
    for x in (data.x, data.x_new):
        base, contrib = model.contributions(x)
        assert contrib.shape == (len(x), len(SPEC.fields))
        np.testing.assert_allclose(base + contrib.sum(axis=1), model.log_odds(x), atol=1e-12)
    base, contrib = model.contributions(data.x)
    np.testing.assert_allclose(np.average(contrib, axis=0, weights=data.w), 0.0, atol=1e-12)
    # The base is the log-odds of the weighted training mean of every column.
    weighted_mean_log_odds = np.average(model.log_odds(data.x), weights=data.w)
    assert base[0] == pytest.approx(weighted_mean_log_odds, abs=1e-12)
    assert np.all(base == base[0])


def test_missing_values_and_unseen_levels(data: Data, fitted: PenalizedLogistic) -> None:
    model = fitted.model_
    _, contrib = model.contributions(data.x_new)
    # Never missing in training: a missing age says nothing (its indicator's coefficient is 0).
    age_missing = np.isnan(data.x_new[:, AGE])
    np.testing.assert_allclose(contrib[age_missing, AGE], 0.0, atol=1e-12)
    # Missing work experience was a sign of long settlement in training, and still is.
    work = model.to_json()["fields"][WORK]
    assert work["coef"][-1] > 0.5
    work_missing = np.isnan(data.x_new[:, WORK])
    assert contrib[work_missing, WORK].min() > contrib[~work_missing, WORK].mean()
    # A level never seen has a coefficient of exactly 0: it scores as a missing value does.
    disability = model.to_json()["fields"][DISABILITY]
    assert disability["coef"][disability["levels"].index("cognitive")] == 0.0
    cognitive = data.x_new[:, DISABILITY] == COGNITIVE
    unknown = data.x_new[:1].copy()
    unknown[0, DISABILITY] = np.nan
    np.testing.assert_allclose(
        contrib[cognitive, DISABILITY], model.contributions(unknown)[1][0, DISABILITY], atol=1e-15
    )


def test_json_round_trip_is_bit_for_bit(data: Data, fitted: PenalizedLogistic) -> None:
    model = fitted.model_
    loaded = _round_trip(model)
    assert loaded.to_json() == model.to_json()
    assert loaded.fields == SPEC.fields
    np.testing.assert_array_equal(loaded.log_odds(data.x_new), model.log_odds(data.x_new))
    for ours, theirs in zip(
        loaded.contributions(data.x_new), model.contributions(data.x_new), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_penalty_is_chosen_inside_the_grid(fitted: PenalizedLogistic) -> None:
    cs = list(fitted.cs)
    assert fitted.model_.penalty_c in cs
    assert cs[0] < fitted.model_.penalty_c < cs[-1]


def test_weights_reach_the_fit(data: Data) -> None:
    dropped = np.random.default_rng(4).random(len(data.y)) < 0.3
    weights = np.where(dropped, 0.0, data.w)
    zero_weighted = PenalizedLogistic(spec=SPEC, cs=(0.1,)).fit(data.x, data.y, weights)
    left_out = PenalizedLogistic(spec=SPEC, cs=(0.1,)).fit(
        data.x[~dropped], data.y[~dropped], data.w[~dropped]
    )
    np.testing.assert_allclose(
        zero_weighted.model_.log_odds(data.x_new), left_out.model_.log_odds(data.x_new), atol=1e-3
    )
    unweighted = PenalizedLogistic(spec=SPEC, cs=(0.1,)).fit(data.x, data.y)
    gap = np.abs(zero_weighted.model_.log_odds(data.x_new) - unweighted.model_.log_odds(data.x_new))
    assert gap.max() > 0.05


def test_refuses_a_matrix_of_other_fields_and_foreign_json(fitted: PenalizedLogistic) -> None:
    with pytest.raises(ValueError, match="encoded matrix"):
        fitted.model_.log_odds(np.zeros((2, len(SPEC.fields) - 1)))
    with pytest.raises(ValueError, match="penalized-logistic"):
        LinearModel.from_json({**fitted.model_.to_json(), "format": 99})
    broken = fitted.model_.to_json()
    broken["fields"][0]["coef"] = broken["fields"][0]["coef"][:1]
    with pytest.raises(ValueError, match="coefficients"):
        LinearModel.from_json(broken)
