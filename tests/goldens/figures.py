"""Golden figures: what the default training computes for a fixed seed, recorded once.

`python tests/goldens/figures.py` (re)writes `tests/goldens/default_training.json` and the
normalised report beside it; `tests/model/test_goldens.py` recomputes them and compares. Every
recording is listed in tests/goldens/README.md with its reason. The capacity choice
is timed (the cheapest candidate to explain wins), so the timing is replaced by a deterministic
cost here: the figures are about the arithmetic, not about this machine's speed that day.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import lightgbm as lgb
import numpy as np

from riskscreen.model import train as train_module
from riskscreen.model.config import load_train_config
from riskscreen.model.pipeline import run_training
from riskscreen.model.scoring import score_frame
from riskscreen.model.training_data import load_training_data
from riskscreen.reports.report import render_report
from riskscreen.synth.generate import generate_cohort

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "default_training.json"
GOLDEN_REPORT = HERE / "default_training_report.html"
RECORDS_N, RECORDS_SEED, RECORDS_KEPT = 400, 2026, 40

_real_cost = train_module.explain_cost_us


def _fixed_cost(booster: lgb.Booster, x: np.ndarray, rows: int = 500) -> tuple[float, str]:
    """The real explainer's name, with the size of the ensemble standing in for its timing."""
    _, name = _real_cost(booster, x, rows=8)
    return float(booster.num_trees() * int(booster.params["num_leaves"])), name


_IMAGE = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def normalise_report(html: str) -> str:
    """The report without its generation time, each embedded image replaced by its SHA-256."""
    html = _IMAGE.sub(lambda m: "sha256:" + hashlib.sha256(m.group(1).encode()).hexdigest(), html)
    return _TIMESTAMP.sub("<time>", html)


def compute() -> tuple[dict[str, Any], str]:
    """Train on the default configuration and return the golden figures and the report."""
    cfg = load_train_config(ROOT / "configs" / "train.yaml")
    data = load_training_data(cfg)
    with mock.patch.object(train_module, "explain_cost_us", _fixed_cost):
        result = run_training(data, cfg)
    records = generate_cohort(RECORDS_N, RECORDS_SEED).intake.head(RECORDS_KEPT)
    scored = score_frame(records, result.bundle, num_threads=1)
    contribution_columns = [c for c in scored.columns if c.startswith("contribution_")]
    html = render_report(
        result, cfg, model_name=cfg.model_name, version="1", data_card=data.data_card
    )
    figures = {
        "metrics": {k: float(v) for k, v in sorted(result.evaluation.metrics.items())},
        "gates": dict(sorted(result.gates.items())),
        "chosen": result.chosen,
        "split_sizes": result.split_sizes,
        "label_counts": result.label_counts,
        "records": {
            "case_ref": records["case_ref"].tolist(),
            "probability": scored["probability"].tolist(),
            "base_log_odds": scored["base_log_odds"].tolist(),
            "contributions": {
                c.removeprefix("contribution_"): scored[c].tolist() for c in contribution_columns
            },
        },
    }
    return figures, normalise_report(html)


if __name__ == "__main__":
    figures, report = compute()
    GOLDEN.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    GOLDEN_REPORT.write_text(report, encoding="utf-8")
