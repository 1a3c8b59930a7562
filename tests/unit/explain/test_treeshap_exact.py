"""The served contributions are exact Shapley values, checked against the definition.

For a small tree ensemble the tree-path-dependent value function v(S) = E[f(x) | x_S] can be
computed by walking the trees (follow x on features in S, average children by cover otherwise),
and Shapley values by enumerating every subset. Both explainers must match it to 1e-9; the leaf
tables must also match LightGBM's `pred_contrib` to 1e-12 on every kind of split and awkward
input, give each row the same numbers whatever the batch and thread count, and hand models they
cannot represent to `pred_contrib` rather than explain them wrongly. The model's own score that
every served explanation is checked against, taken through LightGBM's single-row API, must equal
`Booster.predict` to the bit.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from itertools import combinations
from math import factorial
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from riskscreen.contract.features import FeatureSpec
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.explain import treeshap, treeshap_kernels
from riskscreen.explain.single_row import SingleRowPredictor, SingleRowUnavailable
from riskscreen.model.bundle import (
    EXPLAINERS,
    LEAF_TABLES,
    PRED_CONTRIB,
    Calibration,
    ModelBundle,
    Thresholds,
)
from riskscreen.model.scoring import Scorer
from riskscreen.model.train import explain_cost_us

FIELDS = ("age", "years_of_schooling", "self_rated_health", "disability")


def _expected(node: dict[str, Any], x: np.ndarray, known: set[int]) -> float:
    if "leaf_value" in node:
        return float(node["leaf_value"])
    f = node["split_feature"]
    left, right = node["left_child"], node["right_child"]
    if f in known:
        if node["decision_type"] == "==":
            cats = {int(c) for c in str(node["threshold"]).split("||")}
            go_left = not np.isnan(x[f]) and int(x[f]) in cats
        else:
            go_left = x[f] <= node["threshold"]
        return _expected(left if go_left else right, x, known)
    n_left, n_right = _count(left), _count(right)
    return (n_left * _expected(left, x, known) + n_right * _expected(right, x, known)) / (
        n_left + n_right
    )


def _count(node: dict[str, Any]) -> float:
    return float(node["leaf_count"] if "leaf_value" in node else node["internal_count"])


def _shapley(trees: list[dict[str, Any]], x: np.ndarray, k: int) -> np.ndarray:
    def v(s: set[int]) -> float:
        return sum(_expected(t["tree_structure"], x, s) for t in trees)

    phi = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for size in range(k):
            weight = factorial(size) * factorial(k - size - 1) / factorial(k)
            for subset in combinations(others, size):
                s = set(subset)
                phi[i] += weight * (v(s | {i}) - v(s))
    return phi


@pytest.fixture(scope="module")
def small() -> tuple[ModelBundle, np.ndarray]:
    """Four intake fields (one categorical), 25 trees of 7 leaves, and its training rows."""
    rng = np.random.default_rng(3)
    n = 4000
    x = np.column_stack(
        [
            rng.integers(18, 65, n),
            rng.integers(0, 20, n),
            rng.integers(1, 6, n),
            rng.integers(0, 5, n),
        ]
    ).astype(float)
    logit = (
        0.04 * (x[:, 0] - 40) - 0.15 * (x[:, 1] - 10) - 0.3 * (x[:, 2] - 3) + 0.6 * (x[:, 3] > 0)
    )
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    spec = FeatureSpec(FIELDS)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 1},
        lgb.Dataset(x, y, categorical_feature=spec.categorical_indices()),
        25,
    )
    return ModelBundle(booster, spec, Calibration(0.9, -0.1), Thresholds(0.5, 0.3)), x


@pytest.mark.parametrize("explainer", EXPLAINERS)
def test_contributions_equal_brute_force_shapley_values(
    small: tuple[ModelBundle, np.ndarray], explainer: str
) -> None:
    bundle, x = small
    trees = bundle.booster.dump_model()["tree_info"]
    base, contrib = bundle.contributions(x[:20], explainer=explainer)
    for row in range(20):
        exact = _shapley(trees, x[row], len(FIELDS))
        np.testing.assert_allclose(contrib[row], 0.9 * exact, atol=1e-9)
    np.testing.assert_allclose(base + contrib.sum(axis=1), bundle.log_odds(x[:20]), atol=1e-9)


def test_the_leaf_tables_are_the_default_and_a_named_explainer_is_used(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = small
    assert bundle.explainer == LEAF_TABLES
    assert np.array_equal(
        np.column_stack(bundle.contributions(x[:50])),
        np.column_stack(bundle.contributions(x[:50], explainer=LEAF_TABLES)),
    )
    raw = bundle.booster.predict(x[:50], pred_contrib=True, num_threads=1)
    base, contrib = bundle.contributions(x[:50], explainer=PRED_CONTRIB)
    assert np.array_equal(base, 0.9 * raw[:, -1] - 0.1)
    assert np.array_equal(contrib, 0.9 * raw[:, :-1])
    with pytest.raises(ValueError, match="unknown explainer 'shap'"):
        bundle.contributions(x[:1], explainer="shap")


def test_a_score_names_its_explainer_and_a_replay_can_ask_for_one(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, _ = small
    scorer = Scorer(bundle)
    record = {"age": 23, "years_of_schooling": 4, "self_rated_health": 2, "disability": "sensory"}
    assert scorer.score(record).explainer == LEAF_TABLES
    replayed = scorer.score(record, explainer=PRED_CONTRIB)
    assert replayed.explainer == PRED_CONTRIB
    x = np.array([[23.0, 4.0, 2.0, 2.0]])
    _, contrib = bundle.contributions(x, explainer=PRED_CONTRIB)
    assert {c.field: c.contribution for c in replayed.contributions} == dict(
        zip(FIELDS, contrib[0].tolist(), strict=True)
    )


# --- the leaf tables against LightGBM on every kind of split -------------------------------


def _mixed_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Numerical with NaN, numerical never missing, counts with many zeros, a category with NaN."""
    x = np.column_stack(
        [
            rng.normal(40, 12, n),
            rng.uniform(-3, 3, n),
            rng.poisson(0.7, n).astype(float),
            rng.integers(0, 7, n).astype(float),
            rng.normal(0, 1, n),
        ]
    )
    x[rng.random(n) < 0.15, 0] = np.nan
    x[rng.random(n) < 0.1, 3] = np.nan
    return x


@pytest.fixture(scope="module")
def mixed() -> list[lgb.Booster]:
    """Monotone constraints, categorical splits, and each missing-value rule LightGBM has:
    NaN (missing values in training), None (none in training), Zero (zero_as_missing)."""
    rng = np.random.default_rng(7)
    x = _mixed_rows(rng, 6000)
    cat = np.nan_to_num(x[:, 3], nan=2.0)
    logit = (
        0.05 * np.nan_to_num(x[:, 0] - 40, nan=8.0)
        - 0.5 * x[:, 1]
        + 0.4 * (x[:, 2] == 0)
        + np.where(np.isin(cat, (1, 4, 5)), 0.8, -0.4)
        + 0.2 * x[:, 4]
    )
    y = rng.random(len(x)) < 1 / (1 + np.exp(-logit))
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "monotone_constraints": [1, -1, 0, 0, 0],
        "verbosity": -1,
        "seed": 2,
    }
    return [
        lgb.train(
            {**params, **extra},
            lgb.Dataset(x, y, categorical_feature=[3], params={"verbosity": -1}),
            40,
        )
        for extra in ({}, {"zero_as_missing": True})
    ]


def _awkward_rows(rng: np.random.Generator, tables: treeshap.LeafTables) -> np.ndarray:
    """Random rows, then values on and just past every threshold, and values LightGBM treats
    specially: NaN, ±0, near-zero, ±inf, huge, negative, fractional and unseen categories."""
    x = _mixed_rows(rng, 3000)
    zero = float(np.float32(1e-35))  # LightGBM's kZeroThreshold
    near_zero = [0.0, -0.0, 1e-40, -1e-40, 1e-35, zero, -zero, float(np.nextafter(zero, 1))]
    extreme = [np.nan, np.inf, -np.inf, 1e300, -1e300, 2.0**31, -(2.0**31) - 5]
    categories = [-1.0, -0.5, 0.5, 2.5, 6.99, 7.0, 63.0, 64.0]
    special = np.array(near_zero + extreme + categories)
    for j in range(x.shape[1]):
        x[rng.integers(0, len(x), 600), j] = rng.choice(special, 600)
    nodes = tables.nodes
    for n, f in enumerate(nodes.feature):
        if nodes.rule[n] != 3:  # (3: categorical) on the threshold and the next double up
            t = nodes.threshold[n]
            x[rng.integers(0, len(x), 20), f] = t
            x[rng.integers(0, len(x), 20), f] = np.nextafter(t, np.inf)
    return x


def test_leaf_tables_equal_pred_contrib_on_every_kind_of_split(mixed: list[lgb.Booster]) -> None:
    rng = np.random.default_rng(11)
    rules = set()
    for booster in mixed:
        tables = treeshap.build(booster)
        rules |= set(tables.nodes.rule.tolist())
        x = _awkward_rows(rng, tables)
        ours = tables.contributions(x)
        theirs = booster.predict(x, pred_contrib=True, num_threads=1)
        assert float(np.abs(ours - theirs).max()) <= 1e-12
        # The expected value is summed in LightGBM's own order: equal to the last bit.
        assert np.array_equal(ours[:, -1], theirs[:, -1])
    assert rules == {0, 1, 2, 3}  # missing None, Zero, NaN, and categorical splits all met


def test_the_single_row_score_is_booster_predict_to_the_bit(mixed: list[lgb.Booster]) -> None:
    rng = np.random.default_rng(13)
    for booster in mixed:
        x = _awkward_rows(rng, treeshap.build(booster))
        predictor = SingleRowPredictor.create(booster)
        ours = np.array([predictor.raw_score(x[i : i + 1]) for i in range(len(x))])
        theirs = booster.predict(x, raw_score=True, num_threads=1)
        assert np.array_equal(ours, theirs)


def test_a_bundle_scores_one_row_through_the_single_row_api(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = small
    fresh = dataclasses.replace(bundle)
    expected = bundle.calibration.slope * bundle.booster.predict(x[:50], raw_score=True)
    one_by_one = [fresh.log_odds(x[i : i + 1])[0] for i in range(50)]
    assert fresh._single_row is not None  # the single-row API served them
    assert np.array_equal(one_by_one, expected + bundle.calibration.intercept)
    with pytest.raises(ValueError, match="one C-contiguous float64 row of 4 values"):
        fresh._single_row.raw_score(x[:2])  # would read past the row
    with pytest.raises(ValueError, match="C-contiguous"):
        fresh._single_row.raw_score(x[:1, ::-1])  # a view with a negative stride


def test_the_single_row_score_is_predicts_default_whatever_else_the_booster_predicts(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = small
    booster = lgb.Booster(model_str=bundle.booster.model_to_string())
    booster.best_iteration = 10  # as early stopping leaves it: predict uses the first 10 trees
    predictor = SingleRowPredictor.create(booster)
    expected = booster.predict(x[:50], raw_score=True, num_threads=1).tolist()
    assert [predictor.raw_score(x[i : i + 1]) for i in range(50)] == expected
    # LightGBM's single-row path takes its tree count from the booster's last prediction: a
    # prediction on fewer trees elsewhere must not change the served score.
    booster.predict(x[:5], raw_score=True, num_iteration=3)
    assert [predictor.raw_score(x[i : i + 1]) for i in range(50)] == expected


def test_a_copied_or_unpickled_bundle_prepares_its_own_single_row_predictor(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = small
    fresh = dataclasses.replace(bundle)
    served = fresh.log_odds(x[:1])
    for twin in (copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh))):
        assert twin._single_row is None
        assert np.array_equal(twin.log_odds(x[:1]), served)
        assert twin._single_row is not None and twin._single_row is not fresh._single_row


def test_without_the_single_row_api_a_bundle_falls_back_to_predict(
    small: tuple[ModelBundle, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, x = small

    def unavailable(booster: lgb.Booster) -> SingleRowPredictor:
        raise SingleRowUnavailable("not in this build")

    monkeypatch.setattr(SingleRowPredictor, "create", unavailable)
    fresh = dataclasses.replace(bundle)
    assert fresh.log_odds(x[:1])[0] == bundle.log_odds(x[:2])[0]
    assert fresh._single_row is None and fresh._single_row_refusal == "not in this build"


def test_a_single_row_predictor_lightgbm_refuses_is_unavailable_not_an_error(
    small: tuple[ModelBundle, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, x = small

    def refused(self: lgb.Booster, *args: Any, **kwargs: Any) -> str:
        raise lgb.basic.LightGBMError("out of memory")

    monkeypatch.setattr(lgb.Booster, "model_to_string", refused)
    fresh = dataclasses.replace(bundle)
    assert fresh.log_odds(x[:1])[0] == bundle.log_odds(x[:2])[0]  # served by Booster.predict
    assert fresh._single_row_refusal == "LightGBM refused it: out of memory"


def test_each_row_gets_the_same_numbers_whatever_the_batch_and_threads(
    mixed: list[lgb.Booster],
) -> None:
    tables = treeshap.build(mixed[0])
    x = _awkward_rows(np.random.default_rng(5), tables)
    x = np.vstack([x, x])  # 6000 rows: enough for several threads
    one_thread = tables.contributions(x)
    for threads in (2, 3, 0):
        assert np.array_equal(tables.contributions(x, threads), one_thread)
    singles = np.vstack([tables.contributions(x[i : i + 1]) for i in range(0, len(x), 97)])
    assert np.array_equal(singles, one_thread[::97])
    assert np.array_equal(tables.contributions(x[100:2700:3], 2), one_thread[100:2700:3])


def test_tables_that_disagree_with_lightgbm_are_refused(mixed: list[lgb.Booster]) -> None:
    tables = treeshap.build(mixed[0])
    off = dataclasses.replace(
        tables, leaves=tables.leaves._replace(table=tables.leaves.table * (1 + 1e-6))
    )
    with pytest.raises(treeshap.UnsupportedModel, match="differ from LightGBM's pred_contrib"):
        treeshap._check_against_lightgbm(off, mixed[0])


# --- models the tables refuse are explained by pred_contrib --------------------------------


def _long_paths() -> tuple[lgb.Booster, np.ndarray]:
    """One tree that must test all 14 features to find the rows where every one is set."""
    rng = np.random.default_rng(0)
    x = (rng.random((20000, 14)) < 0.85).astype(float)
    params = {"num_leaves": 16, "min_data_in_leaf": 1, "min_sum_hessian_in_leaf": 0}
    return _fit(x, x.all(axis=1), params), x


def _large_category() -> tuple[lgb.Booster, np.ndarray]:
    """A categorical split on a category code beyond the tables' range."""
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.choice([0, 3, 70000], 5000), rng.normal(size=(5000, 13))])
    y = (x[:, 0] == 70000) ^ (rng.random(5000) < 0.1)
    return _fit(x, y, {"num_leaves": 4, "min_data_per_group": 10}, categorical=[0]), x


def _fit(
    x: np.ndarray, y: np.ndarray, params: dict[str, Any], categorical: list[int] | None = None
) -> lgb.Booster:
    return lgb.train(
        {"objective": "binary", "verbosity": -1, **params},
        lgb.Dataset(x, y, categorical_feature=categorical or [], params={"verbosity": -1}),
        3,
    )


@pytest.mark.parametrize(
    ("model", "why"),
    [(_long_paths, "14 distinct features on its path"), (_large_category, "category 70000")],
)
def test_models_the_tables_refuse_are_explained_by_pred_contrib(model: Any, why: str) -> None:
    booster, x = model()
    with pytest.raises(treeshap.UnsupportedModel, match=why):
        treeshap.build(booster)
    bundle = ModelBundle(
        booster, FeatureSpec(DEFAULT_FEATURES[:14]), Calibration(1.1, 0.2), Thresholds(0.5, 0.3)
    )
    assert bundle.explainer == PRED_CONTRIB
    base, contrib = bundle.contributions(x[:500], num_threads=0)
    raw = booster.predict(x[:500], pred_contrib=True, num_threads=1)
    assert np.array_equal(base, 1.1 * raw[:, -1] + 0.2)
    assert np.array_equal(contrib, 1.1 * raw[:, :-1])
    with pytest.raises(treeshap.UnsupportedModel, match=why):
        bundle.contributions(x[:1], explainer=LEAF_TABLES)
    # Capacity selection times the explainer that would serve the model, and says which.
    assert explain_cost_us(booster, x)[1] == PRED_CONTRIB


def test_capacity_selection_times_the_leaf_tables_when_they_serve(
    small: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = small
    cost, explainer = explain_cost_us(bundle.booster, x)
    assert explainer == LEAF_TABLES == bundle.explainer and cost > 0


def test_kernels_compile_without_a_writable_cache_directory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only install with no user cache: compiled in every process, not an import error."""
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    def double(x: np.ndarray, out: np.ndarray) -> None:
        for i in range(x.shape[0]):
            out[i] = 2 * x[i]

    kernel = treeshap_kernels._kernel(double)
    out = np.zeros(3)
    kernel(np.arange(3.0), out)
    assert out.tolist() == [0.0, 2.0, 4.0]
    assert "compiling it in every process" in caplog.text
