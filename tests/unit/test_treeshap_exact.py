"""The served contributions are exact Shapley values, checked against the definition.

For a small tree ensemble the tree-path-dependent value function v(S) = E[f(x) | x_S] can be
computed by walking the trees (follow x on features in S, average children by cover otherwise),
and Shapley values by enumerating every subset. LightGBM's TreeSHAP must match to 1e-9.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial
from typing import Any

import lightgbm as lgb
import numpy as np

from riskscreen.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.features import FeatureSpec

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


def test_lightgbm_contributions_equal_brute_force_shapley_values() -> None:
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
    bundle = ModelBundle(booster, spec, Calibration(0.9, -0.1), Thresholds(0.5, 0.3))
    trees = booster.dump_model()["tree_info"]
    base, contrib = bundle.contributions(x[:20])
    for row in range(20):
        exact = _shapley(trees, x[row], len(FIELDS))
        np.testing.assert_allclose(contrib[row], 0.9 * exact, atol=1e-9)
    np.testing.assert_allclose(base + contrib.sum(axis=1), bundle.log_odds(x[:20]), atol=1e-9)
