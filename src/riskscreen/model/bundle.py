"""The model bundle: a fitted model of any family, calibration, thresholds and provenance.

Stored without pickle: the model as its family's own text file (LightGBM's text model, a linear
model's coefficients and encodings or an EBM's term tables as JSON; see `families`) beside
`bundle.json`, so loading a bundle never runs code from the artifact (DESIGN.md, "Models are
code"). Calibration is an affine map of the model's raw log-odds, so exact contributions scale
with it and stay additive in the served log-odds, whatever the family.

bundle.json: format 1 is a tree bundle (`model.txt`), the only kind before families, and is
still what a tree bundle is written as, so a release that knows only trees can load the tree
versions this one registers. Format 2 names its family (`"family": "linear"` or `"ebm"`, the
model in `linear.json` or `ebm.json`); a release that knows only format 1 refuses it by name.
Both carry `features`, `calibration`, `thresholds` and `provenance`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

from riskscreen.contract.features import FeatureSpec
from riskscreen.explain.single_row import SingleRowPredictor
from riskscreen.model.families import TREES, Family, FittedModel, family_of, read_model
from riskscreen.model.trees import EXPLAINERS, LEAF_TABLES, PRED_CONTRIB, TreeFamily

__all__ = [
    # The tree family's explainers, imported from here by training, replay and tests; a bundle
    # of any family lists its own in `ModelBundle.explainers`.
    "EXPLAINERS",
    "LEAF_TABLES",
    "META_FILE",
    "PRED_CONTRIB",
    "Band",
    "Calibration",
    "ModelBundle",
    "Thresholds",
    "load_bundle",
    "save_bundle",
]

META_FILE = "bundle.json"
Band = Literal["low", "elevated", "high"]


@dataclass(frozen=True)
class Calibration:
    """Platt scaling on the model's raw log-odds: served log-odds = slope * raw + intercept."""

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
    """Everything needed to score and explain, loaded once and shared read-only.

    `model` is the fitted model of any family (a LightGBM booster, `linear.LinearModel`,
    `ebm.EBMModel`); `family` serves it, prepared from it here and checked against `spec`.
    """

    model: FittedModel
    spec: FeatureSpec
    calibration: Calibration
    thresholds: Thresholds
    provenance: dict[str, Any] = field(default_factory=dict)
    family: Family = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.family = family_of(self.model, self.spec)

    @property
    def horizon_months(self) -> int:
        """The follow-up horizon the label was made for: every score answers "within H months",
        so responses, the notice and `GET /v1/model` state it (recorded by the pipeline)."""
        return int(self.provenance["horizon_months"])

    @property
    def unknown_fields(self) -> tuple[str, ...]:
        """Fields this version saw unknown (null) in training, and so learned from: only these
        may be unknown in a record it scores (none for versions that predate the notion)."""
        return tuple(self.provenance.get("unknown_fields", ()))

    @property
    def booster(self) -> lgb.Booster:
        """The trees of a tree bundle (benchmarks and tree-specific tests read them)."""
        if not isinstance(self.model, lgb.Booster):
            raise AttributeError(f"a {self.family.name} bundle has no trees")
        return self.model

    @property
    def explainers(self) -> tuple[str, ...]:
        """Every explainer `contributions` accepts for this bundle's family."""
        return self.family.explainers

    @property
    def explainer(self) -> str:
        """The explainer `contributions` uses unless told otherwise: for trees the leaf tables,
        or `pred_contrib` for a model they cannot represent; the family's own otherwise.

        For trees the first access builds the tables and compiles their kernel, so a server asks
        once at start-up (`Scorer` does) and loading a bundle stays cheap for commands that
        never explain.
        """
        return self.family.explainer

    # The tree family's single-row predictor, read by the single-row tests
    # (tests/unit/explain/test_treeshap_exact.py); None for other families.
    @property
    def _single_row(self) -> SingleRowPredictor | None:
        return self.family._single_row if isinstance(self.family, TreeFamily) else None

    @property
    def _single_row_refusal(self) -> str | None:
        return self.family._single_row_refusal if isinstance(self.family, TreeFamily) else None

    def log_odds(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Calibrated log-odds for an encoded matrix.

        One thread by default: for a single row, starting a thread pool costs more than the
        work; batch callers pass 0 (all cores), which gives the same numbers row by row. A single
        row (every request) takes the family's one-row path: LightGBM's single-row API for
        trees (the same bits), per-field tables for the additive families (see `additive_row`).
        """
        raw = self.family.log_odds(x, num_threads)
        return self.calibration.slope * raw + self.calibration.intercept

    def contributions(
        self, x: np.ndarray, num_threads: int = 1, explainer: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact contributions in calibrated log-odds: (base per row, (n, k) per field).

        base + contributions.sum(axis=1) equals `log_odds(x)` up to float rounding. Each row's
        numbers depend only on the row and the explainer, not on the batch or thread count.

        Args:
            x: the (n, k) encoded rows.
            num_threads: LightGBM's convention, <= 0 for every core.
            explainer: one of `explainers`, to reproduce numbers made by it; None for
                `self.explainer`.

        Raises:
            ValueError: an explainer not of this family, or the leaf tables asked of a model
                they refuse (treeshap.UnsupportedModel).
        """
        name = self.explainer if explainer is None else explainer
        base, raw = self.family.contributions(x, num_threads, name)
        slope, intercept = self.calibration.slope, self.calibration.intercept
        return slope * base + intercept, slope * raw

    def model_text(self) -> str:
        """The fitted model as its family stores it: the content of its model file."""
        return self.family.text()

    def model_sha256(self) -> str:
        """SHA-256 of `model_text()`, i.e. of the model file (the report's model fingerprint)."""
        return hashlib.sha256(self.model_text().encode()).hexdigest()


def save_bundle(bundle: ModelBundle, directory: Path) -> None:
    """Write the bundle as two text files (deterministic for the same fitted model)."""
    directory.mkdir(parents=True, exist_ok=True)
    family = bundle.family
    (directory / family.model_file).write_text(bundle.model_text(), encoding="utf-8")
    meta: dict[str, Any] = (
        {"format": 1} if family.name == TREES else {"format": 2, "family": family.name}
    )
    meta |= {
        "features": list(bundle.spec.fields),
        "calibration": asdict(bundle.calibration),
        "thresholds": asdict(bundle.thresholds),
        "provenance": bundle.provenance,
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_bundle(directory: Path) -> ModelBundle:
    """Read a bundle written by `save_bundle`; verify hashes before calling this on a download."""
    meta = json.loads((directory / META_FILE).read_text())
    if meta.get("format") not in (1, 2):
        raise ValueError(f"unsupported bundle format {meta.get('format')!r}")
    family = TREES if meta["format"] == 1 else meta["family"]
    return ModelBundle(
        model=read_model(family, directory),
        spec=FeatureSpec(tuple(meta["features"])),
        calibration=Calibration(**meta["calibration"]),
        thresholds=Thresholds(**meta["thresholds"]),
        provenance=meta["provenance"],
    )
