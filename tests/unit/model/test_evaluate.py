"""Evaluation arithmetic on small inline data: group metrics, ECE, checklist ties, gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import precision_score

from riskscreen.model.config import ChecklistConfig, FairnessConfig
from riskscreen.model.evaluate import (
    checklist_factors,
    checklist_flags,
    expected_calibration_error,
    fairness_audit,
    group_metrics,
    recall_precision_at,
    share_of_achievable,
    soft_roc_auc,
)
from riskscreen.model.train import capacity_thresholds, weighted_quantile


@pytest.fixture
def sample() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(5)
    n = 3000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(float)
    w = 1 + rng.random(n)
    groups = rng.choice(np.array(["a", "b", "c"]), n, p=[0.6, 0.3, 0.1])
    return y, p, (p > 0.7).astype(float), w, groups


def test_group_metrics_equal_fairlearn_metricframe(sample: tuple[np.ndarray, ...]) -> None:
    y, p, flags, w, groups = sample
    sw = {"sample_weight": w}
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "precision": precision_score,
        },
        y_true=y,
        y_pred=flags,
        sensitive_features=groups,
        sample_params={k: sw for k in ("selection_rate", "tpr", "fpr", "precision")},
    ).by_group
    cat = pd.Categorical(groups)
    ours = group_metrics(y, p, flags, w, cat.codes, len(cat.categories))
    for metric in ("selection_rate", "tpr", "fpr", "precision"):
        np.testing.assert_allclose(
            ours[metric], frame.loc[list(cat.categories), metric], atol=1e-12
        )
    for i, g in enumerate(cat.categories):
        m = groups == g
        assert ours["mean_predicted"][i] == pytest.approx(np.average(p[m], weights=w[m]))
        assert ours["observed_rate"][i] == pytest.approx(np.average(y[m], weights=w[m]))


def test_fairness_audit_hides_small_groups_and_brackets_estimates(
    sample: tuple[np.ndarray, ...],
) -> None:
    y, p, flags, w, groups = sample
    cfg = FairnessConfig(min_group_size=400, bootstrap=50, reference_groups={"g": "a"})
    audit = fairness_audit(y, p, flags, w, sensitive_features=pd.DataFrame({"g": groups}), cfg=cfg)
    table = audit["g"]
    assert table.loc["c", "too_small"] and np.isnan(table.loc["c", "tpr"])
    for g in ("a", "b"):
        assert table.loc[g, "tpr_lo"] <= table.loc[g, "tpr"] <= table.loc[g, "tpr_hi"]
    assert table.loc["a", "reference"] and not table.loc["b", "reference"]


def test_ece_is_zero_for_perfect_calibration_and_sees_a_shift() -> None:
    levels = np.linspace(0.05, 0.95, 10)
    p = np.repeat(levels, 100)
    y = np.concatenate([np.arange(100) < round(q * 100) for q in levels]).astype(float)
    w = np.ones_like(p)
    assert expected_calibration_error(y, p, w) == pytest.approx(0.0, abs=1e-12)
    shifted = np.clip(p + 0.1, 0, 1)
    assert expected_calibration_error(y, shifted, w) == pytest.approx(0.09, abs=0.011)


def test_checklist_breaks_ties_by_factor_count_then_fractionally() -> None:
    factors = np.array([3, 2, 2, 1, 1, 0], dtype=float)
    w = np.ones(6)
    flags = checklist_flags(factors, w, share=2 / 6)  # the 3 and half of the two 2s
    np.testing.assert_allclose(flags, [1, 0.5, 0.5, 0, 0, 0])
    y = np.array([1, 1, 0, 1, 0, 0], dtype=float)
    recall, precision = recall_precision_at(y, flags, w)
    assert recall == pytest.approx(1.5 / 3) and precision == pytest.approx(0.75)


def test_capacity_threshold_flags_the_configured_share() -> None:
    rng = np.random.default_rng(1)
    p, w = rng.random(10_000), 1 + rng.random(10_000)
    t = capacity_thresholds(p, w, capacity=0.25, elevated_share=0.25)
    assert np.average(p >= t.flag, weights=w) == pytest.approx(0.25, abs=0.002)
    assert np.average(p >= t.elevated, weights=w) == pytest.approx(0.5, abs=0.002)
    assert weighted_quantile(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]), 0.5) == 2.0


def test_the_checklist_counts_only_factors_recorded_and_known() -> None:
    intake = pd.DataFrame(
        {
            "years_of_schooling": pd.array([3, None, 12], dtype="Int64"),
            "work_experience_years": [0.0, 0.0, 10.0],
            "self_rated_health": [2, 2, 5],
            "disability": pd.Categorical(["cognitive", None, "none"]),
        }
    )
    cfg = ChecklistConfig()
    # the unknown schooling and disability of the second person count as no factor
    np.testing.assert_array_equal(checklist_factors(intake, cfg), [4.0, 2.0, 0.0])
    not_recording_health = intake.drop(columns="self_rated_health")
    np.testing.assert_array_equal(checklist_factors(not_recording_health, cfg), [3.0, 1.0, 0.0])


def test_soft_auc_is_the_pairwise_probability_weighted_by_the_truth() -> None:
    """A second implementation: every ordered pair (i, j), weight w_i p_i · w_j (1 − p_j)."""
    rng = np.random.default_rng(3)
    truth, w = rng.uniform(0.05, 0.95, 40), rng.uniform(0.5, 2.0, 40)
    score = truth + rng.normal(0, 0.2, 40)
    score[:6] = score[6]  # ties count half
    pair = np.outer(w * truth, w * (1 - truth))
    wins = (score[:, None] > score[None, :]) + 0.5 * (score[:, None] == score[None, :])
    expected = float((pair * wins).sum() / pair.sum())
    assert soft_roc_auc(score, truth, w) == pytest.approx(expected, abs=1e-12)


def test_share_of_achievable_is_one_for_the_truth_and_zero_for_a_constant() -> None:
    rng = np.random.default_rng(4)
    truth, w = rng.uniform(0.05, 0.95, 500), rng.uniform(0.5, 2.0, 500)
    assert share_of_achievable(np.log(truth / (1 - truth)), truth, w) == pytest.approx(1.0)
    assert share_of_achievable(np.full(500, 0.3), truth, w) == pytest.approx(0.0)
    noisy = share_of_achievable(truth + rng.normal(0, 0.3, 500), truth, w)
    assert 0.0 < noisy < 1.0
