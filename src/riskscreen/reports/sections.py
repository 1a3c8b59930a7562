"""The report's tables besides the comparison: provenance, label, fairness, gates, features.

Each builder turns one part of a `TrainingResult` into plain, already formatted values, so the
template only lays them out and every number is formatted in Python, through `format_metric`
where it is a logged metric, rather than in Jinja.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskscreen.contract.schema import FIELDS_BY_NAME, GROUPS_BY_NAME
from riskscreen.explain.reasons import group_contributions
from riskscreen.model.config import TrainConfig
from riskscreen.model.families import EBM, LINEAR, TREES
from riskscreen.reports.comparison import format_metric
from riskscreen.reports.figures import GROUP_COLOURS

if TYPE_CHECKING:
    from riskscreen.model.pipeline import TrainingResult

FAIRNESS_METRICS: tuple[tuple[str, str], ...] = (
    ("selection_rate", "Selection rate"),
    ("tpr", "TPR (recall)"),
    ("fpr", "FPR"),
    ("precision", "Precision"),
    ("mean_predicted", "Mean predicted"),
    ("observed_rate", "Observed rate"),
)
STATUS_TEXT: dict[str, str] = {  # the statuses of riskscreen.contract.labels, in its order
    "labelled": "eligible and labelled (0 or 1): these people are used, with censoring weights",
    "lost": "lost to follow-up before the horizon without settling: no label; represented "
    "through the censoring weights of the others",
    "support_excluded": "received intensified support: left out (support_handling: exclude)",
    "recent": "horizon not over at extraction: not eligible, left out whatever their outcome",
}


def _rate(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


# What the model fingerprint hashes, per family: the model file of the bundle.
_MODEL_HASH_LABELS = {
    TREES: "Fitted trees (SHA-256 of the LightGBM text model)",
    LINEAR: "Fitted logistic regression (SHA-256 of its coefficients and encodings, JSON)",
    EBM: "Fitted EBM (SHA-256 of its term tables, JSON)",
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def header_section(
    result: TrainingResult, cfg: TrainConfig, model_name: str, version: str | None
) -> dict[str, Any]:
    """Identity and provenance: which model, trained on what, under which schema and config."""
    prov = {**result.bundle.provenance, **result.provenance}
    data_kind = str(prov.get("data_kind", "unknown"))
    hashes = [
        ("Training data (SHA-256 of intake and outcome tables)", prov.get("data_sha256", "–")),
        ("Intake schema declaration (SHA-256)", prov.get("schema_sha256", "–")),
        (_MODEL_HASH_LABELS[result.bundle.family.name], result.bundle.model_sha256()),
        ("Training configuration (SHA-256 of its JSON)", _sha256(cfg.model_dump_json())),
    ]
    if "run_id" in prov:
        hashes.append(("MLflow run", prov["run_id"]))
    return {
        "model_name": model_name,
        "version": version or "not registered yet",
        "trained_at": prov.get("trained_at") or "not recorded yet (set at registration)",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_kind": data_kind,
        "synthetic": data_kind != "real",
        "horizon_months": cfg.horizon_months,
        "hashes": hashes,
        "calibration": result.bundle.calibration,
        "thresholds": result.bundle.thresholds,
        "capacity": cfg.capacity,
        "elevated_share": cfg.elevated_share,
    }


def label_section(result: TrainingResult, cfg: TrainConfig) -> dict[str, Any]:
    """How the label was made, and how many people each rule kept or left out."""
    counts = [
        {"status": k, "count": f"{v:,}", "meaning": STATUS_TEXT.get(k, "")}
        for k, v in result.label_counts.items()
    ]
    years = {
        name: getattr(result.split, name) for name in ("train", "calibration", "validation", "test")
    }
    splits = [
        {
            "name": name,
            "years": ", ".join(str(y) for y in ys) or "–",
            "size": f"{result.split_sizes.get(name, 0):,}",
        }
        for name, ys in years.items()
    ]
    if "evaluated_train_years" in result.provenance:  # the large design serves a refit
        splits.append(
            {
                "name": "served model (refit)",
                "years": ", ".join(str(y) for y in result.provenance["train_years"]),
                "size": f"{sum(result.split_sizes.values()):,}",
            }
        )
    support = (
        "People who received intensified support are left out of training, evaluation and "
        "calibration, so the model estimates the risk under usual care."
        if cfg.support_handling == "exclude"
        else "People who received intensified support are kept with their observed outcomes: the "
        "model then learns the risk under the support actually given, which understates the "
        "risk of those the support helped."
    )
    return {
        "counts": counts,
        "splits": splits,
        "support": support,
        "support_handling": cfg.support_handling,
    }


def _fairness_row(group: str, row: pd.Series, min_size: int) -> dict[str, Any]:
    if bool(row["too_small"]):
        return {
            "group": group,
            "reference": bool(row["reference"]),
            "too_small": True,
            "size": f"fewer than {min_size}",
            "cells": [],
        }
    cells = [
        {"value": _rate(row[m]), "lo": _rate(row[f"{m}_lo"]), "hi": _rate(row[f"{m}_hi"])}
        for m, _ in FAIRNESS_METRICS
    ]
    return {
        "group": group,
        "reference": bool(row["reference"]),
        "too_small": False,
        "size": f"{int(row['size']):,}",
        "cells": cells,
    }


def fairness_section(result: TrainingResult, cfg: TrainConfig) -> list[dict[str, Any]]:
    """One table per audited attribute, small groups suppressed rather than over-read, with the
    summary numbers the gates judge (TPR ratio against its benchmarks, calibration gap)."""
    out = []
    metrics = result.evaluation.metrics
    for attr, table in result.evaluation.fairness.items():
        summary = [
            (f"test_{prefix}{kind}_{attr}", title)
            for prefix, kind, title in (
                ("", "tpr_ratio", "TPR ratio, model"),
                ("checklist_", "tpr_ratio", "TPR ratio, checklist at the same share"),
                ("oracle_", "tpr_ratio", "TPR ratio, oracle at the same share"),
                ("", "calibration_gap", "calibration gap (largest |mean predicted − observed|)"),
            )
        ]
        out.append(
            {
                "attribute": attr,
                "reference": cfg.fairness.reference_groups.get(attr, "–"),
                "rows": [
                    _fairness_row(str(g), r, cfg.fairness.min_group_size)
                    for g, r in table.iterrows()
                ],
                "summary": [
                    {"name": n, "title": t, "value": format_metric(n, metrics[n])}
                    for n, t in summary
                    if n in metrics
                ],
                "gated": attr in cfg.gates.fairness_attributes,
            }
        )
    return out


def _interval(estimate: float, low: float, high: float) -> str:
    if math.isnan(estimate):
        return "–"
    if math.isnan(low):
        return f"{estimate:.4f}"
    return f"{estimate:.4f} [{low:.4f}, {high:.4f}]"


_VERDICTS = {
    "yes": "every gate passed: this version is registered and the alias champion moves to it",
    "needs_approval": (
        "no gate failed, but some could not be assessed on these people: the version is "
        "registered and becomes champion only after an auditor or admin records an approval "
        "(riskscreen model approve)"
    ),
    "no": "at least one gate failed: the version is registered for the record, not served",
}


def gates_section(result: TrainingResult, cfg: TrainConfig) -> dict[str, Any]:
    """Each gate with its statistic, interval, criterion and outcome, then the verdict."""
    rows = [
        {
            "name": o.name,
            "statistic": o.statistic,
            "criterion": o.criterion,
            "observed": _interval(o.estimate, o.low, o.high),
            "level": f"{o.level:.0%}",
            "n": f"{o.n:,}",
            "outcome": o.outcome,
            "note": o.note,
        }
        for o in result.gate_outcomes
    ]
    return {"rows": rows, "verdict": result.verdict, "verdict_text": _VERDICTS[result.verdict]}


def features_section(result: TrainingResult) -> list[dict[str, Any]]:
    """The feature set is configuration: document which fields the model uses and why it matters."""
    fields = result.bundle.spec.fields
    importance = result.importance
    rows = []
    for name in fields:
        f = FIELDS_BY_NAME[name]
        rows.append(
            {
                "name": name,
                "label_en": f.label_en,
                "label_sv": f.label_sv,
                "group": GROUPS_BY_NAME[f.group].label_en,
                "colour": GROUP_COLOURS[f.group],
                "special": f.special_category,
                "sensitive": f.sensitive,
                "monotone": {1: "risk rises", -1: "risk falls", 0: "free"}[f.monotone],
                "importance": f"{float(importance.get(name, float('nan'))):.4f}",
            }
        )
    return rows


def group_importance(result: TrainingResult) -> list[dict[str, str]]:
    """Mean |contribution| per explanation group: the units of the case manager's reasons."""
    names, grouped = group_contributions(result.test_contributions, result.bundle.spec.fields)
    means = np.abs(grouped).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return [
        {
            "group": GROUPS_BY_NAME[names[i]].label_en,
            "sv": GROUPS_BY_NAME[names[i]].label_sv,
            "colour": GROUP_COLOURS[names[i]],
            "value": f"{means[i]:.4f}",
        }
        for i in order
    ]


def additivity_check(result: TrainingResult, encoded: np.ndarray) -> dict[str, Any]:
    """Base + Σ contributions against the served log-odds, recomputed from the trees."""
    base, _ = result.bundle.contributions(encoded[:1])
    served = result.bundle.log_odds(encoded)
    error = np.abs(base[0] + result.test_contributions.sum(axis=1) - served)
    return {
        "rows": f"{len(served):,}",
        "max_error": f"{float(error.max()):.1e}",
        "base": float(base[0]),
    }


def limitations_section(result: TrainingResult, cfg: TrainConfig) -> dict[str, Any]:
    """What the figures cannot tell, with the model-specific lists filled in."""
    decls = [FIELDS_BY_NAME[f] for f in result.bundle.spec.fields]
    return {
        "special": [f.label_en for f in decls if f.special_category],
        "protected": [f.label_en for f in decls if f.sensitive],
        "train_years": ", ".join(str(y) for y in result.provenance["train_years"]),
        "test_years": ", ".join(str(y) for y in result.split.test),
        "support_handling": cfg.support_handling,
    }
