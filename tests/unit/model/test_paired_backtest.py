"""The imported-vs-local backtest: sklearn's weighted AUC and log loss per year and pooled, a
verdict only where the difference exceeds its noise, and a sentence that says which and by how
much."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.paired_backtest import compare_backtests

CFG = SmallDesignConfig(bootstrap=200)


def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def people() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three years of 400 people: labels from a known truth, censoring-like weights."""
    rng = np.random.default_rng(5)
    z = rng.normal(0.2, 1.2, 1200)
    y = (rng.random(1200) < _expit(z)).astype(float)
    w = rng.uniform(1.0, 1.6, 1200)
    year = np.repeat([2022, 2023, 2024], 400)
    return z, y, w, year


def test_the_table_is_sklearns_per_year_and_pooled(
    people: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    z, y, w, year = people
    p_a, p_b = _expit(z), _expit(0.5 * z + 0.3)
    result = compare_backtests(y, w, year, p_a, p_b, CFG, local_family="linear")
    assert [r.period for r in result.rows] == ["pooled", "2022", "2023", "2024"]
    masks = [year > 0, *(year == v for v in (2022, 2023, 2024))]
    for row, mask in zip(result.rows, masks, strict=True):
        assert row.n == mask.sum()
        assert row.auc_imported == pytest.approx(
            roc_auc_score(y[mask], p_a[mask], sample_weight=w[mask])
        )
        assert row.auc_local == pytest.approx(
            roc_auc_score(y[mask], p_b[mask], sample_weight=w[mask])
        )
        expected = log_loss(y[mask], p_b[mask], sample_weight=w[mask])
        assert row.log_loss_local == pytest.approx(expected)
        assert row.auc_gain == pytest.approx(row.auc_imported - row.auc_local)
        assert row.log_loss_gain == pytest.approx(row.log_loss_local - row.log_loss_imported)
        assert row.auc_gain_se >= 0 and row.log_loss_gain_se > 0
    # the same ranking (a monotone map): no AUC difference, but the fit of the probabilities
    assert result.rows[0].auc_gain == pytest.approx(0.0, abs=1e-12)
    assert result.verdict == "imported"
    assert "its probabilities fit better" in result.sentence
    assert result.to_dict()["rows"][0]["period"] == "pooled"


def test_a_better_ranking_wins_and_the_sentence_says_by_how_much(
    people: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    z, y, w, year = people
    noisy = z + np.random.default_rng(6).normal(0, 2.0, len(z))
    good, bad = _expit(z), _expit(0.3 * noisy)
    local_wins = compare_backtests(y, w, year, bad, good, CFG, local_family="ebm")
    row = local_wins.rows[0]
    assert local_wins.verdict == "local" and row.auc_gain < -1.96 * row.auc_gain_se
    assert local_wins.sentence.startswith(
        "A model trained here (small-cohort design, ebm) serves this municipality better than "
        "the recalibrated imported model: on the 1,200 people of 2022–2024"
    )
    assert f"ROC AUC {row.auc_local:.3f} against {row.auc_imported:.3f}" in local_wins.sentence
    assert f"({-row.auc_gain:+.3f} ± {row.auc_gain_se:.3f} SE)" in local_wins.sentence
    imported_wins = compare_backtests(y, w, year, good, bad, CFG, local_family="ebm")
    assert imported_wins.verdict == "imported"
    assert imported_wins.sentence.startswith("The recalibrated imported model serves")


def test_the_same_predictions_cannot_be_told_apart(
    people: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    z, y, w, year = people
    p = _expit(z)
    nudged = _expit(z + np.random.default_rng(7).normal(0, 0.02, len(z)))
    result = compare_backtests(y, w, year, p, nudged, CFG, local_family="linear")
    assert result.verdict == "undecided"
    assert result.sentence.startswith("The data cannot tell the recalibrated imported model and")
