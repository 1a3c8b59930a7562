"""The tree family of a bundle: a LightGBM booster, its exact TreeSHAP and its one-row score.

Two exact explainers give the same Shapley values up to float rounding: the leaf tables of
`riskscreen.explain.treeshap` (the default, several times faster) and LightGBM's own
`pred_contrib` (for models the tables refuse). They differ in the last bits, so each result
names its explainer and a replay, which compares floats with ==, can ask for the one that
produced the record. A single row (every request) is scored through LightGBM's single-row API
(`riskscreen.explain.single_row`), which gives `Booster.predict`'s bits faster.

Everything here is in the trees' raw log-odds; the bundle applies the calibration.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from riskscreen.explain import treeshap
from riskscreen.explain.single_row import SingleRowPredictor, SingleRowUnavailable

log = logging.getLogger(__name__)

NAME = "trees"
MODEL_FILE = "model.txt"
LEAF_TABLES = treeshap.EXPLAINER_ID
PRED_CONTRIB = "lightgbm-pred-contrib"
EXPLAINERS = (LEAF_TABLES, PRED_CONTRIB)
_BUILD_LOCK = threading.Lock()  # the tables of a model are built once, by the first caller


class TreeFamily:
    """A booster with its explainers, prepared on first use and shared read-only."""

    name = NAME
    model_file = MODEL_FILE
    explainers = EXPLAINERS

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self._tables: treeshap.LeafTables | None = None
        self._refusal: str | None = None
        self._single_row: SingleRowPredictor | None = None
        self._single_row_refusal: str | None = None

    @property
    def explainer(self) -> str:
        """The leaf tables, or `pred_contrib` for a model they cannot represent.

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
        # A copy or an unpickled model prepares its own single-row predictor: the ctypes handle
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
        """The trees' raw log-odds; a single row through the single-row API, same bits."""
        single = self._single_row_predictor() if x.shape[0] == 1 else None
        if single is not None:
            return np.array([single.raw_score(np.ascontiguousarray(x, np.float64))])
        return np.asarray(self.booster.predict(x, raw_score=True, num_threads=num_threads))

    def contributions(
        self, x: np.ndarray, num_threads: int, explainer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP in raw log-odds: (expected value per row, (n, k) per field).

        Raises:
            ValueError: an unknown explainer, or the leaf tables asked of a model they refuse
                (treeshap.UnsupportedModel).
        """
        if explainer == LEAF_TABLES:
            tables = self._leaf_tables()
            if tables is None:
                raise treeshap.UnsupportedModel(f"no leaf tables for this model: {self._refusal}")
            raw = tables.contributions(x, num_threads)
        elif explainer == PRED_CONTRIB:
            raw = np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=num_threads))
        else:
            raise ValueError(f"unknown explainer {explainer!r}; known: {', '.join(EXPLAINERS)}")
        return raw[:, -1], raw[:, :-1]

    def text(self) -> str:
        """LightGBM's text model, exactly what `Booster.save_model` writes to `model.txt`."""
        return str(self.booster.model_to_string())


def read(directory: Path) -> lgb.Booster:
    """The booster of a bundle directory, parsed by LightGBM from its text file."""
    return lgb.Booster(model_file=str(directory / MODEL_FILE))
