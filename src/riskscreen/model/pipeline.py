"""The training flow of DESIGN.md from data to evaluated bundle, without MLflow.

Kept apart from the registry so notebooks and tests can train and inspect a model in memory;
`riskscreen train` adds logging, registration and the gates on top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import label_counts, make_labels
from riskscreen.contract.schema import FIELDS_BY_NAME, schema_hash
from riskscreen.model.bundle import ModelBundle
from riskscreen.model.config import TrainConfig
from riskscreen.model.evaluate import (
    Evaluation,
    checklist_factors,
    evaluate_test,
    sensitive_frame,
)
from riskscreen.model.folds import YearFold, forward_folds, out_of_fold
from riskscreen.model.gate_rules import GateOutcome, Verdict
from riskscreen.model.gates import champion_allowed, decide_gates
from riskscreen.model.refit import refit_on_every_year
from riskscreen.model.small_design import SmallFit, fit_small_design
from riskscreen.model.train import (
    CandidateResult,
    YearSplit,
    fit_bundle,
    fit_logistic_baseline,
    temporal_split,
)
from riskscreen.model.training_data import TrainingData

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    bundle: ModelBundle
    evaluation: Evaluation
    candidates: list[CandidateResult]
    chosen: int
    split: YearSplit
    label_counts: dict[str, int]
    split_sizes: dict[str, int]
    gate_outcomes: list[GateOutcome]
    verdict: Verdict  # "yes": champion now; "needs_approval": only not-assessable gates open
    importance: pd.Series  # mean |contribution| per field on the test cohort
    test_frame: pd.DataFrame  # test intake rows with y, weight, probability (for the report)
    test_contributions: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    # The small-cohort design's candidate families on out-of-fold data, and why one was chosen.
    families: pd.DataFrame | None = None
    family_reason: str = ""
    # Read through a mapping: the coverage report of the export (contract.coverage), for the
    # model report; None for synthetic data and files already in the contract's form.
    coverage: dict[str, Any] | None = None

    @property
    def gates(self) -> dict[str, bool]:
        """Each gate and whether it passed (true only for a pass), as clients have read them."""
        return {o.name: o.outcome == "pass" for o in self.gate_outcomes}

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.gate_outcomes if o.outcome == "fail")

    @property
    def open_gates(self) -> tuple[str, ...]:
        """The gates that could not be assessed: an approval must answer for these."""
        return tuple(o.name for o in self.gate_outcomes if o.outcome == "not_assessable")

    @property
    def passed(self) -> bool:
        return self.verdict == "yes"


def labels_for(data: TrainingData, cfg: TrainConfig) -> pd.DataFrame:
    return make_labels(
        data.intake, data.outcomes, horizon_months=cfg.horizon_months, support=cfg.support_handling
    )


def _frame(data: TrainingData, labels: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The intake rows kept, with their label `y` and censoring weight `weight`."""
    frame = data.intake.reset_index(drop=True).copy()
    frame["y"] = labels["long_settlement"].to_numpy(dtype=float, na_value=np.nan)
    frame["weight"] = labels["ipcw_weight"].to_numpy()
    return frame[keep]


def model_fields(cfg: TrainConfig, data: TrainingData) -> FeatureSpec:
    """The configured features the data record: a field the municipality does not record
    cannot be a feature (the version is trained, registered and served without it)."""
    return FeatureSpec(tuple(f for f in cfg.features if f not in data.not_recorded))


def small_design_fit(frame: pd.DataFrame, spec: FeatureSpec, cfg: TrainConfig) -> SmallFit:
    """`fit_small_design` with the training config's folds, capacity and threads."""
    return fit_small_design(
        frame,
        spec,
        cfg.design.folds,
        capacity=cfg.capacity,
        elevated_share=cfg.elevated_share,
        num_threads=cfg.model.num_threads,
    )


def complete_years_frame(data: TrainingData, labels: pd.DataFrame) -> pd.DataFrame:
    """The labelled people of fully followed-up intake years, with `y` and `weight`, at
    positions 0..n−1: what the out-of-fold designs (small cohorts, an import) judge on."""
    partial = labels.loc[labels["status"] == "recent", "intake_year"].unique()
    complete = ~labels["intake_year"].isin(partial)
    keep = ((labels["status"] == "labelled") & complete).to_numpy()
    return _frame(data, labels, keep).reset_index(drop=True)


def logistic_baseline_oof(
    frame: pd.DataFrame, x: np.ndarray, spec: FeatureSpec, folds: Sequence[YearFold]
) -> pd.Series:
    """The one-hot logistic baseline's probability for every predicted row (indexed by its
    position in `frame`), each fitted on the years before its row's, as the design's models."""

    def fit(x_fit: np.ndarray, y: np.ndarray, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = fit_logistic_baseline(x_fit, y, w, spec)
        return lambda rows: model.predict_proba(rows)[:, 1]  # type: ignore[attr-defined]

    y, w = frame["y"].to_numpy(), frame["weight"].to_numpy()
    baseline = out_of_fold(fit, x, y, w, folds)
    return pd.Series(baseline.log_odds, index=baseline.rows)


def _split_frame(
    data: TrainingData, labels: pd.DataFrame, cfg: TrainConfig
) -> tuple[pd.DataFrame, YearSplit]:
    """The labelled people of complete years, each with its split (`split` column)."""
    split = temporal_split(labels, cfg.split)
    assigned = split.assign(labels["intake_year"]).to_numpy()
    frame = _frame(data, labels, (labels["status"] == "labelled").to_numpy() & (assigned != ""))
    frame["split"] = assigned[frame.index]
    return frame, split


def _labelled(
    data: TrainingData, cfg: TrainConfig
) -> tuple[pd.DataFrame, YearSplit, dict[str, int]]:
    """The split design's frame, its years and the label counts (for inspection and tests)."""
    labels = labels_for(data, cfg)
    frame, split = _split_frame(data, labels, cfg)
    return frame, split, label_counts(labels)


def design_for(cfg: TrainConfig, labels: pd.DataFrame) -> str:
    """The configured design, or by size: up to `design.small_cohort_up_to` labelled people a
    fixed held-out split is too small to decide anything, so the small-cohort design runs."""
    if cfg.design.kind != "auto":
        return cfg.design.kind
    labelled = int((labels["status"] == "labelled").sum())
    return "small_cohort" if labelled <= cfg.design.small_cohort_up_to else "split"


def run_training(
    data: TrainingData, cfg: TrainConfig, step: Callable[[str], None] = lambda _: None
) -> TrainingResult:
    """Label, choose the design, fit, calibrate, threshold and evaluate; no I/O but logging."""
    step("labelling with censoring weights")
    labels = labels_for(data, cfg)
    # A field the municipality does not record cannot be a feature: the version is trained,
    # registered and served without it (and its request schema does not ask for it).
    spec = model_fields(cfg, data)
    if design_for(cfg, labels) == "small_cohort":
        return _small_cohort(data, cfg, labels, spec, step)
    return _split(data, cfg, labels, spec, step)


def _split(
    data: TrainingData,
    cfg: TrainConfig,
    labels: pd.DataFrame,
    spec: FeatureSpec,
    step: Callable[[str], None],
) -> TrainingResult:
    """Large cohorts: train, calibrate, validate and test on consecutive intake years; serve the
    chosen capacity refitted on every one of those years (`refit`)."""
    frame, split = _split_frame(data, labels, cfg)
    parts = {}
    for name in ("train", "calibration", "validation", "test"):
        part = frame[frame["split"] == name]
        parts[name] = (encode_frame(part, spec), part["y"].to_numpy(), part["weight"].to_numpy())
    step(f"fitting {len(cfg.model.candidates)} candidate tree ensembles")
    held_out, candidates, chosen = fit_bundle(
        parts, spec, cfg.model, cfg.capacity, cfg.elevated_share
    )
    step("evaluating on the test cohort")
    test = frame[frame["split"] == "test"].copy()
    x_test = parts["test"][0]
    test["probability"] = 1.0 / (1.0 + np.exp(-held_out.log_odds(x_test, num_threads=0)))
    logreg = fit_logistic_baseline(*parts["train"], spec)
    test["logreg"] = logreg.predict_proba(x_test)[:, 1]  # type: ignore[attr-defined]
    step("refitting the chosen capacity on every eligible year")
    bundle = refit_on_every_year(parts, spec, cfg.model, cfg.model.candidates[chosen], held_out)
    _, contrib = bundle.contributions(x_test, num_threads=0)
    extra = {
        "train_years": sorted(int(y) for y in frame["intake_date"].dt.year.unique()),
        "test_years": list(split.test),
        "evaluated_train_years": list(split.train),
    }
    return evaluated(
        data,
        cfg,
        labels,
        spec,
        bundle,
        test,
        contrib,
        np.concatenate([parts[name][0] for name in parts]),
        extra,
        candidates=candidates,
        chosen=chosen,
        split=split,
        split_sizes={k: len(v[1]) for k, v in parts.items()},
    )


def _small_cohort(
    data: TrainingData,
    cfg: TrainConfig,
    labels: pd.DataFrame,
    spec: FeatureSpec,
    step: Callable[[str], None],
) -> TrainingResult:
    """Small cohorts: choose, calibrate and evaluate on forward-chaining out-of-fold
    predictions over intake years; serve the chosen family refitted on every eligible year."""
    frame = complete_years_frame(data, labels)
    folds = cfg.design.folds
    step(f"small-cohort design: {', '.join(folds.candidates)} on {folds.test_years} year folds")
    fit = small_design_fit(frame, spec, cfg)
    step(f"chosen: {fit.reason}")
    x_all = encode_frame(frame, spec)
    rows = fit.oof["row"].to_numpy()
    test = frame.iloc[rows].copy()
    test["probability"] = fit.oof["probability"].to_numpy()
    years = frame["intake_date"].dt.year.to_numpy()
    year_folds = forward_folds(
        years,
        test_years=folds.test_years,
        min_per_year=folds.min_per_year,
        min_train=folds.min_train,
    )
    test["logreg"] = logistic_baseline_oof(frame, x_all, spec, year_folds).loc[rows].to_numpy()
    _, contrib = fit.bundle.contributions(x_all[rows], num_threads=0)
    oof_years = sorted(int(y) for y in fit.oof["year"].unique())
    all_years = sorted(int(y) for y in np.unique(years))
    extra = {
        "train_years": all_years,
        "test_years": oof_years,
        "design": "small_cohort",
        "family": fit.family,
        "family_reason": fit.reason,
    }
    split = YearSplit(tuple(all_years), (), (), tuple(oof_years))
    return evaluated(
        data,
        cfg,
        labels,
        spec,
        fit.bundle,
        test,
        contrib,
        x_all,
        extra,
        candidates=[],
        chosen=0,
        split=split,
        split_sizes={"train": len(frame), "test": len(rows)},
        families=fit.candidates,
        family_reason=fit.reason,
    )


def evaluated(
    data: TrainingData,
    cfg: TrainConfig,
    labels: pd.DataFrame,
    spec: FeatureSpec,
    bundle: ModelBundle,
    test: pd.DataFrame,
    contrib: np.ndarray,
    x_train: np.ndarray,
    extra: dict[str, Any],
    **result: Any,
) -> TrainingResult:
    """Metrics, gates and provenance on the people the decision rests on (`test`: held-out
    years, or the out-of-fold years of the small-cohort design)."""
    if data.oracle is not None:
        test["oracle"] = (
            test[["case_ref"]]
            .merge(data.oracle, on="case_ref", how="left")["p_long_settlement"]
            .to_numpy()
        )
    y_test, w_test = test["y"].to_numpy(), test["weight"].to_numpy()
    checklist = checklist_factors(test, cfg.checklist)
    oracle_p = test["oracle"].to_numpy() if "oracle" in test else None
    evaluation = evaluate_test(
        y_test,
        test["probability"].to_numpy(),
        w_test,
        bundle.thresholds.flag,
        checklist=checklist,
        logreg_p=test["logreg"].to_numpy(),
        oracle_p=oracle_p,
        sensitive_features=sensitive_frame(test),
        fairness=cfg.fairness,
    )
    gate_outcomes = decide_gates(
        y_test,
        test["probability"].to_numpy(),
        w_test,
        threshold=bundle.thresholds.flag,
        checklist=checklist,
        sensitive_features=sensitive_frame(test),
        oracle_p=oracle_p,
        settings=cfg.gates.model_copy(
            update={"min_group_size": cfg.fairness.min_group_size, "seed": cfg.fairness.seed}
        ),
    )
    importance = pd.Series(np.abs(contrib).mean(axis=0), index=list(spec.fields)).sort_values(
        ascending=False
    )
    provenance = {
        "data_kind": data.data_kind,
        "unknown_fields": [
            f
            for i, f in enumerate(spec.fields)
            if FIELDS_BY_NAME[f].may_be_unknown and bool(np.isnan(x_train[:, i]).any())
        ],
        "data_sha256": data.fingerprint(),
        "schema_sha256": schema_hash(),
        "horizon_months": cfg.horizon_months,
        "support_handling": cfg.support_handling,
        **extra,
    }
    bundle.provenance.update(provenance)
    return TrainingResult(
        bundle=bundle,
        evaluation=evaluation,
        label_counts=label_counts(labels),
        gate_outcomes=gate_outcomes,
        verdict=champion_allowed(gate_outcomes),
        importance=importance,
        test_frame=test,
        test_contributions=contrib,
        provenance=provenance,
        coverage=data.coverage,
        **result,
    )
