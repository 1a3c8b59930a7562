"""The model bundle: fitted trees, calibration, thresholds and provenance, stored without pickle.

The trees are LightGBM's text format and everything else is JSON, so loading a bundle never runs
code from the artifact (DESIGN.md, "Models are code"). Calibration is an affine map of the trees'
log-odds, so exact TreeSHAP contributions scale with it and stay additive in the served log-odds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

from riskscreen.features import FeatureSpec

MODEL_FILE = "model.txt"
META_FILE = "bundle.json"
Band = Literal["low", "elevated", "high"]


@dataclass(frozen=True)
class Calibration:
    """Platt scaling on the trees' log-odds: served log-odds = slope * raw + intercept."""

    slope: float
    intercept: float


@dataclass(frozen=True)
class Thresholds:
    """Probability cut-offs: `flag` at the capacity share, `elevated` for the next band."""

    flag: float
    elevated: float

    def band(self, probability: float) -> Band:
        if probability >= self.flag:
            return "high"
        return "elevated" if probability >= self.elevated else "low"


@dataclass
class ModelBundle:
    """Everything needed to score and explain, loaded once and shared read-only."""

    booster: lgb.Booster
    spec: FeatureSpec
    calibration: Calibration
    thresholds: Thresholds
    provenance: dict[str, Any] = field(default_factory=dict)

    def log_odds(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Calibrated log-odds for an encoded matrix.

        One thread by default: for a single row, starting a thread pool costs more than the
        walk; batch callers pass 0 (all cores), which gives the same numbers row by row.
        """
        raw = self.booster.predict(x, raw_score=True, num_threads=num_threads)
        return self.calibration.slope * np.asarray(raw) + self.calibration.intercept

    def contributions(self, x: np.ndarray, num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP in calibrated log-odds: (base per row, (n, k) per field).

        base + contributions.sum(axis=1) equals `log_odds(x)` up to float rounding.
        """
        raw = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=num_threads))
        slope, intercept = self.calibration.slope, self.calibration.intercept
        return slope * raw[:, -1] + intercept, slope * raw[:, :-1]


def save_bundle(bundle: ModelBundle, directory: Path) -> None:
    """Write the bundle as two text files (deterministic for the same fitted model)."""
    directory.mkdir(parents=True, exist_ok=True)
    bundle.booster.save_model(str(directory / MODEL_FILE))
    meta = {
        "format": 1,
        "features": list(bundle.spec.fields),
        "calibration": asdict(bundle.calibration),
        "thresholds": asdict(bundle.thresholds),
        "provenance": bundle.provenance,
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_bundle(directory: Path) -> ModelBundle:
    """Read a bundle written by `save_bundle`; verify hashes before calling this on a download."""
    meta = json.loads((directory / META_FILE).read_text())
    if meta.get("format") != 1:
        raise ValueError(f"unsupported bundle format {meta.get('format')!r}")
    booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
    spec = FeatureSpec(tuple(meta["features"]))
    if booster.num_feature() != len(spec.fields):
        raise ValueError("the trees and the feature list disagree on the number of features")
    return ModelBundle(
        booster=booster,
        spec=spec,
        calibration=Calibration(**meta["calibration"]),
        thresholds=Thresholds(**meta["thresholds"]),
        provenance=meta["provenance"],
    )
