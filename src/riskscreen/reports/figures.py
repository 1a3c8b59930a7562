"""The report's figures, each returned as a PNG data URI ready to embed.

Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot, so writing a
report neither switches the caller's backend nor leaves figures open in a notebook. The
explanation plots show the exact per-field contributions that the service serves
(`TrainingResult.test_contributions`), not a re-run of some other explainer, so what an auditor
sees here is what a case manager is told.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from riskscreen.contract.schema import FIELDS_BY_NAME, GROUPS, GROUPS_BY_NAME, IntakeField
from riskscreen.model.config import TrainConfig
from riskscreen.reports.comparison import COMPARATORS, TestScores, capacity_curve

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.axes import Axes

    from riskscreen.model.pipeline import TrainingResult

DPI = 90
# Dependence and beeswarm plots draw one point per person; beyond a few thousand the PNG
# grows without showing anything new.
MAX_POINTS = 5_000
_SEED = 20240601  # fixed so that the same model always yields the same report
# One colour per explanation group; the feature and group tables in `sections` reuse them, so
# a group has the same colour in every table and figure.
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
