"""The model families a bundle can hold, each scored and explained exactly by riskscreen.

A family is what the bundle needs of a fitted model: its raw log-odds for an encoded matrix, its
exact additive contributions by a named explainer (base + Σ contributions = raw log-odds), and
its own text file, so that no family is ever stored as a pickle (DESIGN.md, "Models are code"):

| family   | fitted model                 | file          | explainers                           |
|----------|------------------------------|---------------|--------------------------------------|
| `trees`  | `lightgbm.Booster`           | `model.txt`   | leaf-tables/1, lightgbm-pred-contrib |
| `linear` | `linear.LinearModel`         | `linear.json` | linear-terms/1                       |
| `ebm`    | `ebm.EBMModel`               | `ebm.json`    | ebm-terms/1                          |

The linear model and the EBM are sums of one term per field, so their contributions are exact
by arithmetic: the regression's against the training mean of each column, the EBM's term
scores themselves. One row (every request) goes through `additive_row`, much cheaper than the
vectorised code and equal to it (see there). The bundle applies the calibration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np

from riskscreen.contract.features import FeatureSpec
from riskscreen.model import trees
from riskscreen.model.additive_row import AdditiveRow, ebm_row, linear_row
from riskscreen.model.ebm import EBMModel
from riskscreen.model.linear import LinearModel
from riskscreen.model.trees import TreeFamily

TREES, LINEAR, EBM = trees.NAME, "linear", "ebm"
FAMILIES = (TREES, LINEAR, EBM)
# Name the arithmetic, as treeshap.EXPLAINER_ID does: bump one whenever a change could alter an
# output bit of that family's contributions, so a replay can tell which code made a record.
LINEAR_TERMS = "linear-terms/1"
EBM_TERMS = "ebm-terms/1"
_FILES = {LINEAR: "linear.json", EBM: "ebm.json"}

FittedModel = lgb.Booster | LinearModel | EBMModel


class Family(Protocol):
    """What a bundle asks of its model; every number in the model's raw log-odds."""

    @property
    def name(self) -> str:
        """The family's name in bundle.json."""

    @property
    def model_file(self) -> str:
        """The file in the bundle directory that holds `text()`."""

    @property
    def explainers(self) -> tuple[str, ...]:
        """Every explainer `contributions` accepts."""

    @property
    def explainer(self) -> str:
        """The explainer used when none is named."""

    def log_odds(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """The raw log-odds of each row of an (n, k) encoded matrix."""

    def contributions(
        self, x: np.ndarray, num_threads: int, explainer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(base per row, (n, k) per field), adding up to `log_odds`."""

    def text(self) -> str:
        """The fitted model as stored, deterministic for the same fitted model."""


@dataclass(frozen=True, eq=False)
class AdditiveFamily:
    """A linear model or a main-effects EBM: intercept + one term per field."""

    name: str
    explainer: str
    model: LinearModel | EBMModel
    row: AdditiveRow

    @property
    def model_file(self) -> str:
        return _FILES[self.name]

    @property
    def explainers(self) -> tuple[str, ...]:
        return (self.explainer,)

    def log_odds(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Vectorised numpy for a batch (no thread pool of its own), tables for one row."""
        if x.shape[0] == 1:
            return np.array([self.row.log_odds(x[0])])
        return self.model.log_odds(x)

    def contributions(
        self, x: np.ndarray, num_threads: int, explainer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        if explainer != self.explainer:
            raise ValueError(f"unknown explainer {explainer!r}; known: {self.explainer}")
        if x.shape[0] == 1:
            return np.array([self.row.base]), self.row.contributions(x[0])[np.newaxis]
        return self.model.contributions(x)

    def text(self) -> str:
        return json.dumps(self.model.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def family_of(model: FittedModel, spec: FeatureSpec) -> Family:
    """The family that serves `model`, checked against the bundle's feature list.

    Raises:
        ValueError: the model reads other fields (or, for trees, another number of them).
        TypeError: not a model of any family.
    """
    if isinstance(model, lgb.Booster):
        if model.num_feature() != len(spec.fields):
            raise ValueError("the trees and the feature list disagree on the number of features")
        return TreeFamily(model)
    if not isinstance(model, LinearModel | EBMModel):
        raise TypeError(f"not a model of any family ({', '.join(FAMILIES)}): {type(model)}")
    if model.fields != spec.fields:
        raise ValueError("the model's fields are not the feature list's")
    if isinstance(model, LinearModel):
        return AdditiveFamily(LINEAR, LINEAR_TERMS, model, linear_row(model))
    return AdditiveFamily(EBM, EBM_TERMS, model, ebm_row(model))


def read_model(name: str, directory: Path) -> FittedModel:
    """The fitted model of family `name` from a bundle directory; no code runs from the files."""
    if name == TREES:
        return trees.read(directory)
    if name not in _FILES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    data = json.loads((directory / _FILES[name]).read_text(encoding="utf-8"))
    return LinearModel.from_json(data) if name == LINEAR else EBMModel.from_json(data)
