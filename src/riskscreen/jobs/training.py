"""`riskscreen train` end to end: config, data, training, report, registration, gates.

The I/O edge around the pure pipeline: it reads files, writes the report under `models/` and
talks to MLflow. `echo` is the terminal (or a notebook) so progress stays visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from riskscreen.model.config import TrainConfig, load_train_config
from riskscreen.model.pipeline import TrainingResult, run_training
from riskscreen.model.training_data import load_training_data
from riskscreen.registry import Registration, client, register
from riskscreen.settings import Settings

HEADLINE_METRICS = (
    "test_roc_auc",
    "test_oracle_roc_auc",
    "test_oracle_gap",
    "test_checklist_roc_auc",
    "test_logreg_roc_auc",
    "test_ece",
    "test_recall_at_capacity",
    "test_checklist_recall_at_capacity",
    "test_precision_at_capacity",
)


def train_and_register(
    config_path: Path | None,
    settings: Settings,
    echo: Callable[[str], object] = lambda _: None,
    report_dir: Path = Path("models"),
) -> Registration:
    """Run the whole training flow once and return what was registered."""
    start = time.perf_counter()
    cfg = load_train_config(config_path)
    echo(f"[{time.perf_counter() - start:5.1f}s] loading data ({cfg.data.source})")
    data = load_training_data(cfg, progress=True)

    def step(message: str) -> None:
        echo(f"[{time.perf_counter() - start:5.1f}s] {message}")

    result = run_training(data, cfg, step=step)
    for name in HEADLINE_METRICS:
        if name in result.evaluation.metrics:
            echo(f"    {name:40s} {result.evaluation.metrics[name]:.4f}")
    registration, _ = register_with_report(result, cfg, settings, data.data_card, report_dir, step)
    return registration


def register_with_report(
    result: TrainingResult,
    cfg: TrainConfig,
    settings: Settings,
    data_card: str | None,
    report_dir: Path,
    step: Callable[[str], None],
) -> tuple[Registration, Path]:
    """Register an evaluated result, write its report under `report_dir` and log it with the
    run: every version a person can find in MLflow has its report beside it."""
    step("registering in MLflow")
    registration = register(result, cfg, settings)
    step("writing the report")
    from riskscreen.reports.report import write_report

    report_dir.mkdir(parents=True, exist_ok=True)
    report = write_report(
        result,
        cfg,
        report_dir / f"{cfg.model_name}-v{registration.version}.html",
        model_name=cfg.model_name,
        version=registration.version,
        data_card=data_card,
    )
    client(settings).log_artifact(registration.run_id, str(report))
    gates = ", ".join(f"{o.name}={o.outcome}" for o in result.gate_outcomes)
    step(
        f"version {registration.version} registered; gates: {gates}; "
        f"champion: {registration.verdict.replace('_', ' ')}; report: {report}"
    )
    return registration, report
