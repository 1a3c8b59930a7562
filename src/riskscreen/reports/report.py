"""The auditor's HTML model report: one self-contained file per trained model version.

Auditors read the report offline and archive it beside the model version, so everything is
embedded: figures as base64 PNG data URIs, CSS inline, no scripts, fonts or links to fetch.
Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot, so writing a
report neither switches the caller's backend nor leaves figures open in a notebook. The
explanation plots show the exact per-field contributions that the service serves
(`TrainingResult.test_contributions`), not a re-run of some other explainer, so what an auditor
sees here is what a case manager is told.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from riskscreen.contract.features import encode_frame
from riskscreen.contract.schema import FIELDS_BY_NAME, GROUPS, GROUPS_BY_NAME, IntakeField
from riskscreen.explain.reasons import group_contributions
from riskscreen.model.config import GateConfig, TrainConfig
from riskscreen.model.evaluate import checklist_factors, expected_calibration_error

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.axes import Axes

    from riskscreen.model.pipeline import TrainingResult

TEMPLATE = "report.html.j2"
DPI = 90
# Dependence and beeswarm plots draw one point per person; beyond a few thousand the PNG
# grows without showing anything new.
MAX_POINTS = 5_000
_SEED = 20240601  # fixed so that the same model always yields the same report
GROUP_COLOURS: dict[str, str] = {
    g.name: c
    for g, c in zip(
        GROUPS,
        (
            "#1f77b4",
            "#ff7f0e",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#8c564b",
            "#e377c2",
            "#7f7f7f",
            "#bcbd22",
            "#17becf",
        ),
        strict=True,
    )
}
COMPARATORS: dict[str, tuple[str, str]] = {  # key -> (column title, logged-metric prefix)
    "model": ("Model", "test_"),
    "checklist": ("Checklist baseline", "test_checklist_"),
    "logreg": ("Logistic regression", "test_logreg_"),
    "oracle": ("Oracle (true probability)", "test_oracle_"),
}
METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("brier", "Brier score (lower is better)"),
    ("ece", "Expected calibration error (lower is better)"),
    ("recall_at_capacity", "Recall at capacity"),
    ("precision_at_capacity", "Precision at capacity"),
    ("share_flagged", "Share flagged"),
)
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


# --- formatting -------------------------------------------------------------------------------


def format_metric(name: str, value: float) -> str:
    """The one way a logged metric is printed, so tests and readers can find it verbatim."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not assessable"
    if name == "test_n":
        return f"{value:,.0f}"
    return f"{value:.4f}"


def _rate(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def figure_to_data_uri(fig: Figure) -> str:
    """PNG bytes of a figure as a data URI; the figure is not kept anywhere afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """shap's beeswarm jitters with numpy's global RNG: seed it for a reproducible picture and
    restore the caller's state afterwards, so writing a report changes no one else's draws."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


# --- the test cohort's scores ----------------------------------------------------------------


@dataclass(frozen=True)
class TestScores:
    """Everything the curves need, taken from the test rows the evaluation used."""

    y: np.ndarray
    w: np.ndarray
    scores: dict[str, np.ndarray]  # comparator key -> score (higher = riskier)
    probabilistic: frozenset[str]  # comparators whose score is a probability

    @classmethod
    def from_result(cls, result: TrainingResult, cfg: TrainConfig) -> TestScores:
        """Model and checklist always; the oracle and the logistic regression only when the
        test frame carries their probabilities (columns `oracle`, `logreg`)."""
        frame = result.test_frame
        scores = {
            "model": frame["probability"].to_numpy(dtype=float),
            "checklist": checklist_factors(frame, cfg.checklist),
        }
        for key in ("logreg", "oracle"):
            if key in frame.columns:
                scores[key] = frame[key].to_numpy(dtype=float)
        return cls(
            frame["y"].to_numpy(dtype=float),
            frame["weight"].to_numpy(dtype=float),
            scores,
            frozenset(k for k in scores if k != "checklist"),
        )


def capacity_curve(
    score: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted share flagged and recall when flagging from the highest score down.

    Tied scores enter together; the straight line between two points is the expectation of a
    random tie-break, the same convention `evaluate.checklist_flags` uses.
    """
    order = np.argsort(-score, kind="stable")
    s, ww, yw = score[order], w[order], (w * y)[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    share = np.r_[0.0, np.cumsum(ww)[last_of_tie]] / ww.sum()
    recall = np.r_[0.0, np.cumsum(yw)[last_of_tie]] / yw.sum()
    return share, recall


def _at_share(key: str, metric: str, scores: TestScores, share: float) -> float:
    share_grid, recall_grid = capacity_curve(scores.scores[key], scores.y, scores.w)
    recall = float(np.interp(share, share_grid, recall_grid))
    if metric == "recall_at_capacity":
        return recall
    prevalence = float(np.average(scores.y, weights=scores.w))
    return recall * prevalence / share if share > 0 else float("nan")


def _not_computable(key: str, metric: str, scores: TestScores) -> str | None:
    """Why a comparison cell stays empty: '–' without scores, 'n/a' where it means nothing."""
    if key not in scores.scores:
        return "–"
    if metric in ("brier", "ece") and key not in scores.probabilistic:
        return "n/a"
    return None


def _computed_metric(key: str, metric: str, scores: TestScores, share: float) -> float:
    """A comparison cell the evaluation did not log, computed from the same rows and weights."""
    y, w, s = scores.y, scores.w, scores.scores[key]
    if metric == "roc_auc":
        return float(roc_auc_score(y, s, sample_weight=w))
    if metric == "pr_auc":
        return float(average_precision_score(y, s, sample_weight=w))
    if metric == "brier":
        return float(brier_score_loss(y, s, sample_weight=w))
    if metric == "ece":
        return expected_calibration_error(y, s, w)
    if metric == "share_flagged":
        return share
    return _at_share(key, metric, scores, share)


def has_oracle(result: TrainingResult) -> bool:
    """Synthetic runs know the true probabilities; real data never do."""
    return "oracle" in result.test_frame.columns or any(
        k.startswith("test_oracle_") for k in result.evaluation.metrics
    )


# --- sections ---------------------------------------------------------------------------------


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
        (
            "Fitted trees (SHA-256 of the LightGBM text model)",
            _sha256(result.bundle.booster.model_to_string()),
        ),
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


def metrics_section(result: TrainingResult, cfg: TrainConfig, scores: TestScores) -> dict[str, Any]:
    """Model against the baselines; logged `test_*` metrics first, report-computed cells marked."""
    metrics = result.evaluation.metrics
    share = metrics["test_share_flagged"]
    keys = [k for k in COMPARATORS if k != "oracle" or has_oracle(result)]
    rows = []
    for metric, title in METRIC_ROWS:
        cells: list[dict[str, Any]] = []
        for key in keys:
            name = COMPARATORS[key][1] + metric
            if name in metrics:
                cells.append({"value": format_metric(name, metrics[name]), "name": name})
                continue
            reason = _not_computable(key, metric, scores)
            value = reason or format_metric("", _computed_metric(key, metric, scores, share))
            cells.append({"value": value, "name": None, "computed": reason is None})
        rows.append({"title": title, "cells": cells})
    all_metrics = [
        {"name": k, "value": format_metric(k, v)}
        for k, v in sorted(metrics.items())
        if k.startswith("test_")
    ]
    return {
        "columns": [COMPARATORS[k][0] for k in keys],
        "rows": rows,
        "all": all_metrics,
        "capacity": cfg.capacity,
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


def _benchmark(metrics: Mapping[str, float]) -> str:
    """The ranking a TPR ratio is judged against: the oracle's on synthetic data, else the
    checklist's (the status quo), as in `evaluate.check_gates`."""
    return "oracle" if "test_oracle_roc_auc" in metrics else "checklist"


def _gate_rule(name: str, m: Mapping[str, float], g: GateConfig) -> tuple[str, str]:
    """(rule, observed) for one gate; a gate this report does not know still gets a row."""
    if name == "auc_gain_over_checklist":
        return (
            f"test_roc_auc ≥ test_checklist_roc_auc + {g.min_auc_gain_over_checklist}",
            f"{m['test_roc_auc']:.4f} vs {m['test_checklist_roc_auc']:.4f}",
        )
    if name == "ece":
        return f"test_ece ≤ {g.max_ece}", format_metric("test_ece", m["test_ece"])
    if name.startswith("tpr_ratio_"):
        attr, bench = name.removeprefix("tpr_ratio_"), _benchmark(m)
        ratio, ref = f"test_tpr_ratio_{attr}", f"test_{bench}_tpr_ratio_{attr}"
        return (
            f"{ratio} ≥ {g.min_tpr_ratio}, or ≥ {g.tpr_ratio_tolerance} × {ref} "
            f"({bench} benchmark); holds when not assessable",
            f"{format_metric(ratio, m.get(ratio, math.nan))} vs "
            f"{format_metric(ref, m.get(ref, math.nan))}",
        )
    if name.startswith("calibration_gap_"):
        gap = f"test_{name}"
        return (
            f"{gap} ≤ {g.max_group_calibration_gap} (largest |mean predicted − observed| "
            "among reportable groups); holds when not assessable",
            format_metric(gap, m.get(gap, math.nan)),
        )
    return "see evaluate.check_gates", "–"


def gates_section(result: TrainingResult, cfg: TrainConfig) -> dict[str, Any]:
    """Each registration gate with its rule and the observed value, then the overall outcome."""
    m = result.evaluation.metrics
    rows = []
    for name, ok in result.gates.items():
        rule, observed = _gate_rule(name, m, cfg.gates)
        rows.append({"name": name, "rule": rule, "observed": observed, "passed": ok})
    return {"rows": rows, "passed": all(result.gates.values())}


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
        "train_years": ", ".join(str(y) for y in result.split.train),
        "test_years": ", ".join(str(y) for y in result.split.test),
        "support_handling": cfg.support_handling,
    }


# --- plots ------------------------------------------------------------------------------------


def calibration_plot(result: TrainingResult) -> str:
    """Predicted against observed risk per equal-weight bin, with the diagonal of perfection."""
    curve = result.evaluation.calibration_curve
    fig, ax = _figure(4.6, 4.0)
    top = float(max(curve["mean_predicted"].max(), curve["observed_rate"].max(), 0.05)) * 1.05
    ax.plot([0, top], [0, top], color="#999999", ls="--", lw=1, label="perfect calibration")
    ax.plot(
        curve["mean_predicted"],
        curve["observed_rate"],
        marker="o",
        color="#1f77b4",
        label="model (10 equal-weight bins)",
    )
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="mean predicted probability",
        ylabel="observed rate (weighted)",
        title="Calibration on the test cohort",
    )
    ax.legend(loc="upper left", fontsize=8)
    return figure_to_data_uri(fig)


_CURVE_STYLE = {
    "model": ("#1f77b4", "-"),
    "checklist": ("#d62728", "-"),
    "logreg": ("#2ca02c", ":"),
    "oracle": ("#555555", "--"),
}


def roc_plot(scores: TestScores) -> str:
    """ROC curves of the model and the comparators whose scores we have."""
    fig, ax = _figure(4.6, 4.0)
    for key, s in scores.scores.items():
        fpr, tpr, _ = roc_curve(scores.y, s, sample_weight=scores.w)
        auc = roc_auc_score(scores.y, s, sample_weight=scores.w)
        colour, ls = _CURVE_STYLE[key]
        ax.plot(fpr, tpr, color=colour, ls=ls, label=f"{COMPARATORS[key][0]} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=1)
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate (recall)",
        title="ROC curve (test cohort)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", fontsize=8)
    return figure_to_data_uri(fig)


def pr_plot(scores: TestScores) -> str:
    """Precision against recall; the dotted line is the prevalence (a random ranking)."""
    fig, ax = _figure(4.6, 4.0)
    for key, s in scores.scores.items():
        precision, recall, _ = precision_recall_curve(scores.y, s, sample_weight=scores.w)
        ap = average_precision_score(scores.y, s, sample_weight=scores.w)
        colour, ls = _CURVE_STYLE[key]
        ax.plot(
            recall,
            precision,
            color=colour,
            ls=ls,
            drawstyle="steps-post",
            label=f"{COMPARATORS[key][0]} (AP {ap:.3f})",
        )
    prevalence = float(np.average(scores.y, weights=scores.w))
    ax.axhline(prevalence, color="#bbbbbb", ls=":", lw=1, label=f"prevalence {prevalence:.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall (test cohort)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper right", fontsize=8)
    return figure_to_data_uri(fig)


def capacity_plot(result: TrainingResult, cfg: TrainConfig, scores: TestScores) -> str:
    """Recall against the share flagged: what each extra support place buys."""
    fig, ax = _figure(6.0, 4.0)
    for key, s in scores.scores.items():
        share, recall = capacity_curve(s, scores.y, scores.w)
        colour, ls = _CURVE_STYLE[key]
        ax.plot(share, recall, color=colour, ls=ls, label=COMPARATORS[key][0])
    m = result.evaluation.metrics
    ax.axvline(
        cfg.capacity, color="#ff7f0e", lw=1.2, label=f"configured capacity {cfg.capacity:.0%}"
    )
    ax.plot(
        [m["test_share_flagged"]],
        [m["test_recall_at_capacity"]],
        "o",
        color="#1f77b4",
        label=f"model at its threshold: share {m['test_share_flagged']:.3f}, "
        f"recall {m['test_recall_at_capacity']:.3f}",
    )
    ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=1, label="random")
    ax.set(
        xlabel="share of the intake flagged (weighted)",
        ylabel="recall of long settlement",
        title="Capacity curve (test cohort)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", fontsize=8)
    return figure_to_data_uri(fig)


def candidates_plot(result: TrainingResult) -> str:
    """Validation AUC against the cost of one exact explanation; the chosen capacity ringed."""
    fig, ax = _figure(5.0, 3.6)
    for i, c in enumerate(result.candidates):
        chosen = i == result.chosen
        ax.plot(
            c.explain_us_per_row,
            c.validation_auc,
            "o",
            ms=9 if chosen else 6,
            color="#d62728" if chosen else "#1f77b4",
            mfc="none" if chosen else None,
        )
        ax.annotate(
            f"{c.num_trees}×{c.num_leaves}" + (" (chosen)" if chosen else ""),
            (c.explain_us_per_row, c.validation_auc),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.set(
        xlabel="exact TreeSHAP cost (µs per row, one thread)",
        ylabel="validation ROC AUC",
        title="Model capacity: trees × leaves",
    )
    ax.margins(x=0.25, y=0.25)
    return figure_to_data_uri(fig)


def importance_plot(result: TrainingResult) -> str:
    """Mean |contribution| per intake field, coloured by the explanation group it sums into."""
    imp = result.importance.reindex(list(result.bundle.spec.fields)).sort_values()
    decls = [FIELDS_BY_NAME[n] for n in imp.index]
    fig, ax = _figure(7.0, 0.28 * len(imp) + 1.2)
    ax.barh(
        [f.label_en for f in decls], imp.to_numpy(), color=[GROUP_COLOURS[f.group] for f in decls]
    )
    used = dict.fromkeys(f.group for f in reversed(decls))
    handles = [Patch(color=GROUP_COLOURS[g], label=GROUPS_BY_NAME[g].label_en) for g in used]
    ax.legend(handles=handles, loc="lower right", fontsize=8, title="explanation group")
    ax.set(
        xlabel="mean |contribution| (calibrated log-odds)",
        title="Global importance per intake field (test cohort)",
    )
    ax.tick_params(axis="y", labelsize=8)
    return figure_to_data_uri(fig)


def _import_shap() -> ModuleType:
    """shap, imported lazily (it is slow to import and only the report plots with it).

    shap 0.51 calls `Colormap.set_bad/set_over/set_under` at import (shap/plots/colors/
    _colors.py), which matplotlib 3.11 marks as pending deprecation. Those warnings are theirs,
    not ours, so exactly they are silenced, at this one spot.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"The set_(bad|over|under) function",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap


def _subsample(n: int) -> np.ndarray:
    """The same ≤ MAX_POINTS rows for every point plot, in their original order."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(_SEED).choice(n, MAX_POINTS, replace=False))


def beeswarm_plot(result: TrainingResult, encoded: np.ndarray, base: float) -> str:
    """shap's beeswarm over the served contributions; unordered categories are drawn grey
    because a colour scale over their codes would suggest an order that does not exist."""
    shap = _import_shap()
    rows = _subsample(len(encoded))
    decls = result.bundle.spec.declarations
    data = pd.DataFrame(
        {
            # "category" dtype is what shap recognises as unordered (pandas 3 strings are not).
            f.name: (
                pd.Categorical(result.test_frame[f.name].iloc[rows].astype(object))
                if f.kind == "category" and not f.ordered
                else encoded[rows, i]
            )
            for i, f in enumerate(decls)
        }
    )
    explanation = shap.Explanation(
        values=result.test_contributions[rows],
        base_values=np.full(len(rows), base),
        data=data,
        feature_names=[f.label_en for f in decls],
    )
    fig = Figure(figsize=(8.0, 0.32 * len(decls) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    with _seeded_global_rng(_SEED):
        shap.plots.beeswarm(
            explanation,
            max_display=len(decls),
            ax=ax,
            show=False,
            plot_size=None,
            s=6,
            color_bar_label="intake value (coded)",
        )
    ax.set_xlabel("contribution to the calibrated log-odds", fontsize=10)
    ax.tick_params(axis="y", labelsize=9)
    return figure_to_data_uri(fig)


def _positions(values: pd.Series, field: IntakeField) -> tuple[np.ndarray, list[str] | None]:
    """x positions for one field: numbers as they are, categories and booleans on an axis in
    their declared order (with 'missing' last when present)."""
    if field.kind == "boolean":
        return values.astype(float).to_numpy(), ["no", "yes"]
    if field.kind != "category":
        return values.to_numpy(dtype=float, na_value=np.nan), None
    codes = pd.Categorical(values, categories=list(field.categories)).codes.astype(float)
    names = list(field.categories)
    if (codes < 0).any():
        codes[codes < 0] = len(names)
        names.append("missing")
    return codes, names


def dependence_plot(field: IntakeField, values: pd.Series, contribution: np.ndarray) -> str:
    """One field's contribution against its value, with the mean per category where discrete."""
    x, ticks = _positions(values, field)
    discrete = ticks is not None or field.kind == "integer"
    jitter = np.random.default_rng(_SEED).uniform(-0.2, 0.2, len(x)) if discrete else 0.0
    # Fixed margins: all these small plots share one layout, and solving a constrained layout
    # for each would double the report's plotting time.
    fig = Figure(figsize=(4.0, 2.8))
    fig.subplots_adjust(left=0.19, right=0.97, top=0.83, bottom=0.2)
    ax = fig.add_subplot()
    ax.scatter(
        x + jitter,
        contribution,
        s=3,
        alpha=0.35,
        lw=0,
        color=GROUP_COLOURS[field.group],
        rasterized=True,
    )
    if ticks is not None:
        means = pd.Series(contribution).groupby(x).mean()
        ax.plot(means.index, means.to_numpy(), "_", color="black", ms=14, mew=2, label="mean")
        crowded = len(ticks) > 3 or max(len(t) for t in ticks) > 12
        ax.set_xticks(
            range(len(ticks)),
            ticks,
            rotation=30 if crowded else 0,
            ha="right" if crowded else "center",
            fontsize=7,
        )
    ax.axhline(0, color="#999999", lw=0.8)
    ax.set_title(f"{field.label_en}\n{field.label_sv}", fontsize=9)
    ax.set_ylabel("contribution (log-odds)", fontsize=8)
    ax.tick_params(labelsize=7)
    return figure_to_data_uri(fig)


def unused_fields(result: TrainingResult) -> list[str]:
    """Model fields whose contribution is zero for every test row: the trees never split on
    them, so a dependence plot would be a flat line."""
    silent = ~np.any(np.abs(result.test_contributions) > 0, axis=0)
    return [f for f, s in zip(result.bundle.spec.fields, silent, strict=True) if s]


def dependence_plots(result: TrainingResult) -> list[dict[str, str]]:
    """A dependence plot per field the model uses, on the same subsample of test rows."""
    rows = _subsample(len(result.test_frame))
    skip = set(unused_fields(result))
    out = []
    for i, f in enumerate(result.bundle.spec.declarations):
        if f.name in skip:
            continue
        values = result.test_frame[f.name].iloc[rows].reset_index(drop=True)
        out.append(
            {
                "name": f.name,
                "label": f.label_en,
                "uri": dependence_plot(f, values, result.test_contributions[rows, i]),
            }
        )
    return out


# --- assembly ---------------------------------------------------------------------------------


def build_context(
    result: TrainingResult,
    cfg: TrainConfig,
    *,
    model_name: str,
    version: str | None = None,
    data_card: str | None = None,
) -> dict[str, Any]:
    """Every value the template shows, computed here so the template stays layout only."""
    scores = TestScores.from_result(result, cfg)
    encoded = encode_frame(result.test_frame, result.bundle.spec)
    additivity = additivity_check(result, encoded)
    figures: Mapping[str, str] = {
        "calibration": calibration_plot(result),
        "roc": roc_plot(scores),
        "pr": pr_plot(scores),
        "capacity": capacity_plot(result, cfg, scores),
        "candidates": candidates_plot(result),
        "importance": importance_plot(result),
        "beeswarm": beeswarm_plot(result, encoded, additivity["base"]),
    }
    return {
        "header": header_section(result, cfg, model_name, version),
        "data_card": data_card,
        "label": label_section(result, cfg),
        "metrics": metrics_section(result, cfg, scores),
        "candidates": [
            {
                "trees": c.num_trees,
                "leaves": c.num_leaves,
                "auc": f"{c.validation_auc:.4f}",
                "us": f"{c.explain_us_per_row:.1f}",
                "explainer": c.explainer,
                "chosen": i == result.chosen,
            }
            for i, c in enumerate(result.candidates)
        ],
        "features": features_section(result),
        "groups": group_importance(result),
        "additivity": additivity,
        "fairness": fairness_section(result, cfg),
        "min_group_size": cfg.fairness.min_group_size,
        "bootstrap": cfg.fairness.bootstrap,
        "gates": gates_section(result, cfg),
        "limitations": limitations_section(result, cfg),
        "figures": figures,
        "dependence": dependence_plots(result),
        "unused": [FIELDS_BY_NAME[f].label_en for f in unused_fields(result)],
        "max_points": MAX_POINTS,
    }


def _environment() -> Environment:
    # autoescape=True explicitly: select_autoescape() would not match the ".j2" suffix.
    return Environment(
        loader=PackageLoader("riskscreen.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    result: TrainingResult,
    cfg: TrainConfig,
    *,
    model_name: str,
    version: str | None = None,
    data_card: str | None = None,
) -> str:
    """The report as an HTML string (for callers that store it elsewhere than a file)."""
    context = build_context(
        result, cfg, model_name=model_name, version=version, data_card=data_card
    )
    return _environment().get_template(TEMPLATE).render(**context)


def write_report(
    result: TrainingResult,
    cfg: TrainConfig,
    path: Path,
    *,
    model_name: str,
    version: str | None = None,
    data_card: str | None = None,
) -> Path:
    """Write the self-contained HTML report for one model version and return its path."""
    html = render_report(result, cfg, model_name=model_name, version=version, data_card=data_card)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
