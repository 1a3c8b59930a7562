"""Test-cohort metrics, the checklist and oracle comparisons, and the fairness audit.

All metrics are weighted by the censoring weights, so they describe the eligible cohort, not
just the people who happened to stay in follow-up. Sensitive attributes arrive beside the
predictions (`sensitive_features=`), never inside the model's features.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from riskscreen.model.config import ChecklistConfig, FairnessConfig

AGE_BANDS = (18, 30, 40, 50, 65)
AGE_LABELS = ("18-29", "30-39", "40-49", "50-64")


def age_band(age: pd.Series) -> pd.Series:
    """The age bands the fairness audit reports on."""
    return pd.cut(age, bins=list(AGE_BANDS), right=False, labels=list(AGE_LABELS))


def sensitive_frame(intake: pd.DataFrame) -> pd.DataFrame:
    """The audit's grouping columns; a missing value is its own group, 'unknown'.

    An attribute the municipality does not record (no column) has no column here either: its
    fairness gates are then not assessable, never passed (`gates.group_gates`).
    """
    out = pd.DataFrame(index=intake.index)
    for name in ("sex", "region_of_origin", "disability", "permit_type"):
        if name in intake:
            out[name] = intake[name].astype(object).where(intake[name].notna(), "unknown")
    out["age_band"] = age_band(intake["age"]).astype(object)
    return out


def checklist_factors(intake: pd.DataFrame, cfg: ChecklistConfig) -> np.ndarray:
    """How many of the manual-checklist factors each person has (0-4).

    Only the factors whose field the municipality records count (a field not recorded has no
    column), and an answer not known for a person does not count as the factor: the status quo
    can only act on what the case manager knows.
    """
    limits = {
        "years_of_schooling": cfg.max_years_of_schooling,
        "work_experience_years": cfg.max_work_experience_years,
        "self_rated_health": cfg.max_self_rated_health,
    }
    factors = [
        intake[name].to_numpy(dtype=np.float64, na_value=np.nan) <= limit
        for name, limit in limits.items()
        if name in intake
    ]
    if cfg.any_disability and "disability" in intake:
        disability = intake["disability"]
        factors.append((disability.notna() & (disability != "none")).to_numpy(dtype=bool))
    return np.sum(factors, axis=0).astype(np.float64) if factors else np.zeros(len(intake))


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10
) -> float:
    """ECE over equal-frequency (by weight) bins: Σ share_b · |mean p_b − observed rate_b|."""
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    bin_of = np.minimum((cum * bins - 1e-12).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        idx = order[bin_of == b]
        if len(idx):
            wb = w[idx]
            total += (
                wb.sum()
                / w.sum()
                * abs(np.average(p[idx], weights=wb) - np.average(y[idx], weights=wb))
            )
    return float(total)


def soft_roc_auc(score: np.ndarray, truth: np.ndarray, w: np.ndarray) -> float:
    """ROC AUC against true probabilities: each person a positive of weight w·p and a negative of
    weight w·(1 − p). The AUC expected over the labels the truth would draw, so it measures the
    ranking without label noise or censoring; on synthetic data only."""
    labels = np.r_[np.ones(len(truth)), np.zeros(len(truth))]
    weights = np.r_[w * truth, w * (1.0 - truth)]
    return float(roc_auc_score(labels, np.r_[score, score], sample_weight=weights))


def share_of_achievable(score: np.ndarray, truth: np.ndarray, w: np.ndarray) -> float:
    """(soft AUC − 0.5) / (the truth's own soft AUC − 0.5): how much of the ranking that these
    fields make possible the model reaches (issue #15's yardstick)."""
    return (soft_roc_auc(score, truth, w) - 0.5) / (soft_roc_auc(truth, truth, w) - 0.5)


def recall_precision_at(y: np.ndarray, flagged: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted recall and precision of a (possibly fractional) flag vector."""
    tp = float(np.sum(w * y * flagged))
    return tp / float(np.sum(w * y)), tp / max(float(np.sum(w * flagged)), 1e-12)


def checklist_flags(factors: np.ndarray, w: np.ndarray, share: float) -> np.ndarray:
    """Flag the same weighted share as the model, most factors first.

    People tied on the boundary count are flagged fractionally, the expectation of a random
    tie-break, so the comparison does not depend on a lucky draw.
    """
    flags = np.zeros_like(factors)
    budget = share * w.sum()
    for count in sorted(np.unique(factors), reverse=True):
        group = factors == count
        weight = w[group].sum()
        take = min(1.0, budget / weight) if weight > 0 else 0.0
        flags[group] = take
        budget -= take * weight
        if budget <= 0:
            break
    return flags


@dataclass
class Evaluation:
    metrics: dict[str, float]
    fairness: dict[str, pd.DataFrame]
    calibration_curve: pd.DataFrame
    extras: dict[str, Any] = field(default_factory=dict)


GROUP_METRICS = ("selection_rate", "tpr", "fpr", "precision", "mean_predicted", "observed_rate")


def group_metrics(
    y: np.ndarray,
    p: np.ndarray,
    flagged: np.ndarray,
    w: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
) -> dict[str, np.ndarray]:
    """Weighted per-group metrics from sums over groups (one `bincount` each).

    The same definitions as fairlearn's MetricFrame with sample weights (a unit test holds the
    two equal); computed directly because MetricFrame 0.15 walks every row through Python lists,
    about 0.2 s per metric and attribute on a 66k-row test cohort, and the bootstrap repeats
    this hundreds of times.
    """

    def s(v: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=w * v, minlength=n_groups)

    total, pos, neg, hits = s(np.ones_like(y)), s(y), s(1 - y), s(y * flagged)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "selection_rate": s(flagged) / total,
            "tpr": hits / pos,
            "fpr": s((1 - y) * flagged) / neg,
            "precision": hits / s(flagged),
            "mean_predicted": s(p) / total,
            "observed_rate": pos / total,
        }


def fairness_audit(
    y: np.ndarray,
    p: np.ndarray,
    flagged: np.ndarray,
    w: np.ndarray,
    *,
    sensitive_features: pd.DataFrame,
    cfg: FairnessConfig,
) -> dict[str, pd.DataFrame]:
    """Per attribute: one row per group with point estimates, 95% intervals and a size flag.

    Intervals come from a Poisson bootstrap (weights × Poisson(1) draws), the same draws for
    every attribute, so the intervals of different attributes are comparable.
    """
    rng = np.random.default_rng(cfg.seed)
    draws = rng.poisson(1.0, size=(cfg.bootstrap, len(y))).astype(np.float64)
    out = {}
    for attr in sensitive_features.columns:
        groups = pd.Categorical(sensitive_features[attr].astype(str))
        codes, names = groups.codes, list(groups.categories)
        table = pd.DataFrame(group_metrics(y, p, flagged, w, codes, len(names)), index=names)
        table.insert(0, "size", np.bincount(codes, minlength=len(names)))
        replicates = [group_metrics(y, p, flagged, w * d, codes, len(names)) for d in draws]
        for metric in GROUP_METRICS:
            values = np.array([r[metric] for r in replicates])
            with warnings.catch_warnings():  # an all-NaN column: a group with no positives
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = np.nanpercentile(values, [2.5, 97.5], axis=0)
            table[f"{metric}_lo"], table[f"{metric}_hi"] = lo, hi
        table["too_small"] = table["size"] < cfg.min_group_size
        metric_cols = [c for c in table.columns if c not in ("size", "too_small")]
        table.loc[table["too_small"], metric_cols] = np.nan
        table["reference"] = table.index == cfg.reference_groups.get(attr)
        out[attr] = table
    return out


def flag_tpr_ratio(
    y: np.ndarray, flags: np.ndarray, w: np.ndarray, groups: pd.Series, min_size: int
) -> float:
    """Lowest over highest weighted TPR among large groups, for any (fractional) flag vector."""
    tprs = []
    for g in groups.unique():
        m = (groups == g).to_numpy()
        positives = float(np.sum(w[m] * y[m]))
        if m.sum() >= min_size and positives > 0:
            tprs.append(float(np.sum(w[m] * y[m] * flags[m])) / positives)
    return min(tprs) / max(tprs) if len(tprs) >= 2 and max(tprs) > 0 else float("nan")


def calibration_gap(table: pd.DataFrame) -> float:
    """Largest |mean predicted − observed rate| among the groups large enough to report."""
    big = table.loc[~table["too_small"]]
    return (
        float((big["mean_predicted"] - big["observed_rate"]).abs().max())
        if len(big)
        else float("nan")
    )


def tpr_ratio(table: pd.DataFrame) -> float:
    """Lowest over highest TPR among the groups large enough to report."""
    tpr = table.loc[~table["too_small"], "tpr"].dropna()
    return float(tpr.min() / tpr.max()) if len(tpr) >= 2 and tpr.max() > 0 else float("nan")


def calibration_table(y: np.ndarray, p: np.ndarray, w: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per equal-frequency bin, for the report's curve."""
    order = np.argsort(p, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    bin_of = np.minimum((cum * bins - 1e-12).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        idx = order[bin_of == b]
        rows.append(
            {
                "bin": b,
                "mean_predicted": np.average(p[idx], weights=w[idx]),
                "observed_rate": np.average(y[idx], weights=w[idx]),
                "weight": w[idx].sum(),
            }
        )
    return pd.DataFrame(rows)


def evaluate_test(
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    threshold: float,
    *,
    checklist: np.ndarray,
    logreg_p: np.ndarray,
    oracle_p: np.ndarray | None,
    sensitive_features: pd.DataFrame,
    fairness: FairnessConfig,
) -> Evaluation:
    """Every test metric under the names the registry and the gates use."""
    flagged = (p >= threshold).astype(float)
    share = float(np.average(flagged, weights=w))
    recall, precision = recall_precision_at(y, flagged, w)
    cl_recall, cl_precision = recall_precision_at(y, checklist_flags(checklist, w, share), w)
    metrics = {
        "test_roc_auc": float(roc_auc_score(y, p, sample_weight=w)),
        "test_pr_auc": float(average_precision_score(y, p, sample_weight=w)),
        "test_brier": float(brier_score_loss(y, p, sample_weight=w)),
        "test_ece": expected_calibration_error(y, p, w),
        "test_share_flagged": share,
        "test_recall_at_capacity": recall,
        "test_precision_at_capacity": precision,
        "test_checklist_roc_auc": float(roc_auc_score(y, checklist, sample_weight=w)),
        "test_checklist_recall_at_capacity": cl_recall,
        "test_checklist_precision_at_capacity": cl_precision,
        "test_logreg_roc_auc": float(roc_auc_score(y, logreg_p, sample_weight=w)),
        "test_prevalence": float(np.average(y, weights=w)),
        "test_n": float(len(y)),
    }
    if oracle_p is not None:
        metrics["test_oracle_roc_auc"] = float(roc_auc_score(y, oracle_p, sample_weight=w))
        metrics["test_oracle_gap"] = metrics["test_oracle_roc_auc"] - metrics["test_roc_auc"]
        oracle_flags = (oracle_p >= weighted_top_share_cut(oracle_p, w, share)).astype(float)
        metrics["test_oracle_recall_at_capacity"] = recall_precision_at(y, oracle_flags, w)[0]
        metrics["test_oracle_ece"] = expected_calibration_error(y, oracle_p, w)
        metrics["test_oracle_brier"] = float(brier_score_loss(y, oracle_p, sample_weight=w))
        metrics["test_share_of_achievable"] = share_of_achievable(p, oracle_p, w)
        metrics["test_ece_vs_truth"] = expected_calibration_error(oracle_p, p, w)
    audit = fairness_audit(y, p, flagged, w, sensitive_features=sensitive_features, cfg=fairness)
    benchmarks = {"checklist": checklist_flags(checklist, w, share)}
    if oracle_p is not None:
        benchmarks["oracle"] = (oracle_p >= weighted_top_share_cut(oracle_p, w, share)).astype(
            float
        )
    # The best any ranking could do at this share: every flag on a person who does not settle.
    metrics["test_max_recall_at_capacity"] = min(1.0, share / metrics["test_prevalence"])
    for attr, table in audit.items():
        metrics[f"test_tpr_ratio_{attr}"] = tpr_ratio(table)
        metrics[f"test_calibration_gap_{attr}"] = calibration_gap(table)
        groups = sensitive_features[attr].astype(str)
        for name, flags in benchmarks.items():
            metrics[f"test_{name}_tpr_ratio_{attr}"] = flag_tpr_ratio(
                y, flags, w, groups, fairness.min_group_size
            )
    return Evaluation(metrics, audit, calibration_table(y, p, w))


def weighted_top_share_cut(p: np.ndarray, w: np.ndarray, share: float) -> float:
    """The score above which a weighted `share` of people lie."""
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    return float(p[order][min(int(np.searchsorted(cum, share)), len(p) - 1)])
