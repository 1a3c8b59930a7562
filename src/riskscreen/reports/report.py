"""The auditor's HTML model report: one self-contained file per trained model version.

Auditors read the report offline and archive it beside the model version, so everything is
embedded: figures as base64 PNG data URIs, CSS inline, no scripts, fonts or links to fetch.
This module only assembles: the tables come from `comparison` and `sections`, the figures from
`figures`, and the template lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from riskscreen.contract.features import encode_frame
from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.model.config import TrainConfig
from riskscreen.reports.backtest import backtest_section
from riskscreen.reports.comparison import TestScores, metrics_section
from riskscreen.reports.figures import (
    MAX_POINTS,
    beeswarm_plot,
    calibration_plot,
    candidates_plot,
    capacity_plot,
    dependence_plots,
    importance_plot,
    pr_plot,
    roc_plot,
    unused_fields,
)
from riskscreen.reports.imported import imported_section
from riskscreen.reports.sections import (
    additivity_check,
    fairness_section,
    features_section,
    gates_section,
    group_importance,
    header_section,
    label_section,
    limitations_section,
)

if TYPE_CHECKING:
    from riskscreen.model.pipeline import TrainingResult

TEMPLATE = "report.html.j2"


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
        "importance": importance_plot(result),
        "beeswarm": beeswarm_plot(result, encoded, additivity["base"]),
    }
    if result.candidates:
        figures = {**figures, "candidates": candidates_plot(result)}
    return {
        "header": header_section(result, cfg, model_name, version),
        "data_card": data_card,
        "coverage": result.coverage,
        "label": label_section(result, cfg),
        "metrics": metrics_section(result, cfg, scores),
        "backtest": backtest_section(result),
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
        "families": _families(result),
        "imported": imported_section(result),
        "family_reason": result.family_reason,
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


def _families(result: TrainingResult) -> list[dict[str, str]]:
    """The small-cohort design's candidate families as the report shows them (none otherwise)."""
    if result.families is None:
        return []
    return [
        {
            "family": str(row.family),
            "auc": f"{row.oof_auc:.4f}",
            "log_loss": f"{row.oof_log_loss:.4f}",
            "se": f"{row.auc_se_vs_best:.4f}",
            "seconds": f"{row.fit_seconds:.1f}",
            "chosen": "chosen" if row.chosen else "",
        }
        for row in result.families.itertuples()
    ]


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
