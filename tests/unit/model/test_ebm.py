"""The main-effects EBM: interpret's own numbers from our JSON tables alone (missing values and
unseen categories included), one exact contribution per field, and a bit-exact round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from family_data import AGE, COGNITIVE, DISABILITY, SPEC, WORK, Data, family_data

from riskscreen.model.ebm import EBMModel, MainEffectsEBM, Term, library_frame

OCCUPATION = SPEC.fields.index("occupation_group")


@pytest.fixture(scope="module")
def data() -> Data:
    data = family_data()
    data.x[np.random.default_rng(3).random(len(data.y)) < 0.1, WORK] = np.nan
    data.x_new[:20, AGE] = [-np.inf, np.inf, 17.0, 65.0, 18.5] * 4  # beyond and on the cut points
    return data


@pytest.fixture(scope="module")
def fitted(data: Data) -> MainEffectsEBM:
    return MainEffectsEBM(spec=SPEC, outer_bags=4).fit(data.x, data.y, sample_weight=data.w)


def _round_trip(model: EBMModel) -> EBMModel:
    return EBMModel.from_json(json.loads(json.dumps(model.to_json(), allow_nan=False)))


def test_scores_from_json_alone_equal_interpret(data: Data, fitted: MainEffectsEBM) -> None:
    loaded = _round_trip(fitted.model_)
    new = data.x_new
    assert (new[:, DISABILITY] == COGNITIVE).any() and np.isnan(new[:, OCCUPATION]).any()
    for x in (data.x, new):
        frame = library_frame(x, SPEC)
        log_odds = loaded.log_odds(x)
        np.testing.assert_allclose(
            log_odds, fitted.ebm_.decision_function(frame), rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            1 / (1 + np.exp(-log_odds)), fitted.ebm_.predict_proba(frame)[:, 1], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            loaded.contributions(x)[1], fitted.ebm_.eval_terms(frame), rtol=0, atol=1e-12
        )


def test_one_term_per_field_and_contributions_add_up(data: Data, fitted: MainEffectsEBM) -> None:
    model = fitted.model_
    assert model.fields == SPEC.fields
    assert model.intercept == fitted.ebm_.intercept_[0]
    base, contrib = model.contributions(data.x_new)
    assert contrib.shape == (len(data.x_new), len(SPEC.fields))
    assert np.all(base == model.intercept)
    np.testing.assert_allclose(base + contrib.sum(axis=1), model.log_odds(data.x_new), atol=1e-12)


def test_missing_and_unseen_values_follow_interpret(data: Data, fitted: MainEffectsEBM) -> None:
    model = fitted.model_
    _, contrib = model.contributions(data.x_new)
    # Missing where training had none, and a category training never saw: 0, the unseen bin.
    np.testing.assert_array_equal(contrib[np.isnan(data.x_new[:, AGE]), AGE], 0.0)
    assert "cognitive" not in (model.terms[DISABILITY].categories or {})
    np.testing.assert_array_equal(contrib[data.x_new[:, DISABILITY] == COGNITIVE, DISABILITY], 0.0)
    # Missing where training had some: the learnt score of the missing bin.
    work_missing = np.isnan(data.x_new[:, WORK])
    np.testing.assert_array_equal(contrib[work_missing, WORK], model.terms[WORK].scores[0])
    assert model.terms[WORK].scores[0] != 0.0
    # Lower-inclusive cuts: a value on a cut point falls in the bin above it.
    cuts = model.terms[AGE].cuts
    assert cuts is not None and 18.5 in cuts
    on_cut = model.terms[AGE].bins(np.array([18.5, np.nextafter(18.5, 0), -np.inf, np.inf]))
    k = int(np.searchsorted(cuts, 18.5))
    np.testing.assert_array_equal(on_cut, [k + 2, k + 1, 1, len(cuts) + 1])


def test_json_round_trip_is_bit_for_bit(data: Data, fitted: MainEffectsEBM) -> None:
    model = fitted.model_
    loaded = _round_trip(model)
    assert loaded.to_json() == model.to_json()
    np.testing.assert_array_equal(loaded.log_odds(data.x_new), model.log_odds(data.x_new))
    for ours, theirs in zip(
        loaded.contributions(data.x_new), model.contributions(data.x_new), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


def test_weights_reach_the_fit(data: Data, fitted: MainEffectsEBM) -> None:
    tilted = np.where(data.y == 1, 3.0, 1.0) * data.w
    heavier = MainEffectsEBM(spec=SPEC, outer_bags=4).fit(data.x, data.y, sample_weight=tilted)
    shift = heavier.model_.log_odds(data.x_new) - fitted.model_.log_odds(data.x_new)
    assert np.median(shift) == pytest.approx(np.log(3.0), abs=0.3)


def test_refuses_malformed_tables(fitted: MainEffectsEBM) -> None:
    with pytest.raises(ValueError, match="encoded matrix"):
        fitted.model_.log_odds(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ebm-main-effects"):
        EBMModel.from_json({**fitted.model_.to_json(), "kind": "trees"})
    with pytest.raises(ValueError, match="expected 5 scores"):
        Term("age", np.zeros(4), cuts=np.array([20.0, 30.0]))
    with pytest.raises(ValueError, match="either cuts or categories"):
        Term("age", np.zeros(4))
