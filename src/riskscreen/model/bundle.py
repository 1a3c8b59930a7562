"""The model bundle: fitted trees, calibration, thresholds and provenance, stored without pickle.

The trees are LightGBM's text format and everything else is JSON, so loading a bundle never runs
code from the artifact (DESIGN.md, "Models are code"). Calibration is an affine map of the trees'
log-odds, so exact TreeSHAP contributions scale with it and stay additive in the served log-odds.

Two exact explainers give the same Shapley values up to float rounding: the leaf tables of
`riskscreen.explain.treeshap` (the default, several times faster) and LightGBM's own
`pred_contrib` (for models the tables refuse). They differ in the last bits, so each result
names its explainer and a replay, which compares floats with ==, can ask for the one that
produced the record.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

from riskscreen.contract.features import FeatureSpec
from riskscreen.explain import treeshap
from riskscreen.explain.single_row import SingleRowPredictor, SingleRowUnavailable

log = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
META_FILE = "bundle.json"
Band = Literal["low", "elevated", "high"]
LEAF_TABLES = treeshap.EXPLAINER_ID
PRED_CONTRIB = "lightgbm-pred-contrib"
EXPLAINERS = (LEAF_TABLES, PRED_CONTRIB)
_BUILD_LOCK = threading.Lock()  # the tables of a bundle are built once, by the first caller


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
    _tables: treeshap.LeafTables | None = field(default=None, init=False, repr=False, compare=False)
    _refusal: str | None = field(default=None, init=False, repr=False, compare=False)
    _single_row: SingleRowPredictor | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _single_row_refusal: str | None = field(default=None, init=False, repr=False, compare=False)

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
    def explainer(self) -> str:
        """The explainer `contributions` uses unless told otherwise: the leaf tables, or
        `pred_contrib` for a model they cannot represent.

        The first access builds the tables and compiles their kernel (a fraction of a second
        with numba's on-disk cache, a few seconds without), so a server asks once at start-up
        (`Scorer` does) and loading a bundle stays cheap for commands that never explain.
        """
        return LEAF_TABLES if self._leaf_tables() is not None else PRED_CONTRIB

    def _leaf_tables(self) -> treeshap.LeafTables | None:
        if self._tables is None and self._refusal is None:
            with _BUILD_LOCK:
                if self._tables is None and self._refusal is None:
                    try:
                        self._tables = treeshap.build(self.booster)
                    except treeshap.UnsupportedModel as exc:
                        log.warning("explaining with LightGBM's pred_contrib: %s", exc)
                        self._refusal = str(exc)
        return self._tables

    def __getstate__(self) -> dict[str, Any]:
        # A copy or an unpickled bundle prepares its own single-row predictor: the ctypes handle
        # cannot be pickled, and a copied one would point at the original booster.
        return {**self.__dict__, "_single_row": None, "_single_row_refusal": None}

    def _single_row_predictor(self) -> SingleRowPredictor | None:
        if self._single_row is None and self._single_row_refusal is None:
            with _BUILD_LOCK:
                if self._single_row is None and self._single_row_refusal is None:
                    try:
                        self._single_row = SingleRowPredictor.create(self.booster)
                    except SingleRowUnavailable as exc:
                        log.warning("predicting single rows with Booster.predict: %s", exc)
                        self._single_row_refusal = str(exc)
        return self._single_row

    def log_odds(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Calibrated log-odds for an encoded matrix.

        One thread by default: for a single row, starting a thread pool costs more than the
        walk; batch callers pass 0 (all cores), which gives the same numbers row by row. A single
        row (every request) takes LightGBM's single-row API, which gives the same bits faster.
        """
        single = self._single_row_predictor() if x.shape[0] == 1 else None
        if single is not None:
            raw = np.array([single.raw_score(np.ascontiguousarray(x, np.float64))])
        else:
            raw = np.asarray(self.booster.predict(x, raw_score=True, num_threads=num_threads))
        return self.calibration.slope * raw + self.calibration.intercept

    def contributions(
        self, x: np.ndarray, num_threads: int = 1, explainer: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP in calibrated log-odds: (base per row, (n, k) per field).

        base + contributions.sum(axis=1) equals `log_odds(x)` up to float rounding. Each row's
        numbers depend only on the row and the explainer, not on the batch or thread count.

        Args:
            x: the (n, k) encoded rows.
            num_threads: LightGBM's convention, <= 0 for every core.
            explainer: one of `EXPLAINERS`, to reproduce numbers made by it; None for
                `self.explainer`.

        Raises:
            ValueError: an unknown explainer, or the leaf tables asked of a model they refuse
                (treeshap.UnsupportedModel).
        """
        name = self.explainer if explainer is None else explainer
        if name == LEAF_TABLES:
            tables = self._leaf_tables()
            if tables is None:
                raise treeshap.UnsupportedModel(f"no leaf tables for this model: {self._refusal}")
            raw = tables.contributions(x, num_threads)
        elif name == PRED_CONTRIB:
            raw = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=num_threads))
        else:
            raise ValueError(f"unknown explainer {name!r}; known: {', '.join(EXPLAINERS)}")
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
