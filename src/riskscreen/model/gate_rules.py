"""The vocabulary of the registration gates: their settings, criteria and outcomes.

Apart from the gates themselves (`gates`) so that the training configuration can hold the
settings without importing the statistics, and so that each gate is built the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from riskscreen.model.gate_statistics import Interval

Outcome = Literal["pass", "fail", "not_assessable"]
Verdict = Literal["yes", "needs_approval", "no"]
SEVERITY: dict[str, int] = {"pass": 0, "not_assessable": 1, "fail": 2}


class GateSettings(BaseModel):
    """The gates' criteria (proposed as keys of `GateConfig` in configs/train.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Two-sided level of every interval; 0.90 makes each pass and each fail a one-sided 5% test.
    level: float = Field(0.90, gt=0.5, lt=1)
    # Fewer labelled people than this: the calibration and AUC gates are not assessable.
    min_people: int = Field(200, ge=10)
    # |calibration intercept| ≤ 0.12 on the log-odds: 3 percentage points at a risk of 50%,
    # an average error of about 0.025 on the default cohort, so a model at the old bar
    # (true ECE 0.02, an intercept of about 0.10) is inside and a shift of 0.5 is far outside.
    max_calibration_intercept: float = Field(0.12, gt=0)
    # |slope − 1| ≤ 0.2: at a slope of 0.8 the log-odds must shrink by a fifth to be right
    # (too extreme, the mark of overfitting), at 1.2 grow by a fifth (too timid).
    max_calibration_slope_deviation: float = Field(0.2, gt=0, lt=1)
    min_auc_gain_over_checklist: float = 0.05
    # TPR ratio ≥ min_tpr_ratio, or ≥ tolerance × the benchmark ranking's ratio (README).
    min_tpr_ratio: float = Field(0.8, ge=0, le=1)
    tpr_ratio_tolerance: float = Field(0.9, ge=0, le=1)
    # No large group's mean predicted risk off its reference by more than this.
    max_group_calibration_gap: float = Field(0.05, gt=0, le=1)
    fairness_attributes: tuple[str, ...] = ("sex", "region_of_origin")
    min_group_size: int = Field(200, ge=1)
    bootstrap: int = Field(400, ge=50)
    seed: int = 7


@dataclass(frozen=True)
class Criterion:
    """The statistic must lie in [at_least, at_most]; an open end is infinite."""

    at_least: float = -np.inf
    at_most: float = np.inf

    def decide(self, interval: Interval) -> Outcome:
        """Pass, fail or not assessable for an interval of the statistic."""
        if np.isnan(interval.low) or np.isnan(interval.high):
            return "not_assessable"
        if interval.high < self.at_least or interval.low > self.at_most:
            return "fail"
        if interval.low >= self.at_least and interval.high <= self.at_most:
            return "pass"
        return "not_assessable"

    def __str__(self) -> str:
        if np.isinf(self.at_most):
            return f">= {self.at_least:g}"
        if np.isinf(self.at_least):
            return f"<= {self.at_most:g}"
        return f"in [{self.at_least:g}, {self.at_most:g}]"


@dataclass(frozen=True)
class GateOutcome:
    """One gate's decision with the interval it was decided on, for the registry and report."""

    name: str
    outcome: Outcome
    statistic: str
    estimate: float
    low: float
    high: float
    criterion: str
    n: int
    level: float
    note: str = ""
    details: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (not computed) becomes None, which strict JSON can carry."""
        out = asdict(self)
        out["details"] = {k: float(v) for k, v in self.details.items()}
        for target in (out, out["details"]):
            for key, value in target.items():
                if isinstance(value, float) and np.isnan(value):
                    target[key] = None
        return out


def decided(
    name: str,
    statistic: str,
    interval: Interval,
    criterion: Criterion,
    n: int,
    cfg: GateSettings,
    note: str = "",
    details: Mapping[str, float] | None = None,
) -> GateOutcome:
    if not note and np.isnan(interval.low):
        note = "the statistic could not be estimated on these people"
    return GateOutcome(
        name=name,
        outcome=criterion.decide(interval),
        statistic=statistic,
        estimate=interval.estimate,
        low=interval.low,
        high=interval.high,
        criterion=str(criterion),
        n=n,
        level=cfg.level,
        note=note,
        details=details or {},
    )


UNKNOWN = Interval(float("nan"), float("nan"), float("nan"))


def joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
