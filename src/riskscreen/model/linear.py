"""A penalized (L2) logistic regression on the model's fields, explained exactly and stored as JSON.

At 10^3-10^4 labelled people a linear model often ranks as well as trees (DESIGN.md, "Small
cohorts"), and its explanation is exact by arithmetic. It reads the same matrix the trees do
(`contract.features.encode_frame`), so a bundle can swap one family for the other. Per field:

- integer and number: (value - mean) / sd, with the training mean and sd;
- boolean: value - mean (scale 1, so the coefficient is the log-odds gap between yes and no);
- category, ordered or not: one 0/1 column per declared level.

Every field also has a last 0/1 column for "missing"; a missing number or boolean is put at the
training mean, so only the indicator speaks for it. A level or a missing value never seen in
training has an all-zero column, which an L2 fit leaves at a coefficient of exactly 0.

Contributions are taken against the training mean of every column (means weighted like the fit):
contribution_field = Σ_{columns j of field} coef_j (x_j - mean_j) and base = intercept +
Σ_j coef_j mean_j, so base + Σ contributions is the model's log-odds, and each field's
contribution averages to zero over the (weighted) training cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from riskscreen.contract.features import FeatureSpec
from riskscreen.contract.schema import FIELDS_BY_NAME, IntakeField

FORMAT = 1
KIND = "penalized-logistic"
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 1, 13))


@dataclass(frozen=True)
class FieldEncoding:
    """How one field's column of `encode_frame` becomes its design columns."""

    field: str
    encoding: Literal["numeric", "one_hot"]
    center: float = 0.0
    scale: float = 1.0
    levels: tuple[str, ...] = ()  # one_hot: the level of each column before "missing"

    @property
    def width(self) -> int:
        return len(self.levels) + 1 if self.encoding == "one_hot" else 2

    @cached_property
    def _column_of_code(self) -> np.ndarray:
        # Codes index the schema's declared categories; levels are matched by name, so a model
        # stays right if the declaration is reordered, and a level it never knew gets no column.
        declared = FIELDS_BY_NAME[self.field].categories
        return np.array([self.levels.index(c) if c in self.levels else -1 for c in declared])

    def columns(self, values: np.ndarray) -> np.ndarray:
        """The (n, width) design columns for the field's encoded values."""
        missing = np.isnan(values)
        out = np.zeros((len(values), self.width))
        out[missing, -1] = 1.0
        if self.encoding == "one_hot":
            rows = np.flatnonzero(~missing)
            column = self._column_of_code[values[rows].astype(np.int64)]
            known = column >= 0
            out[rows[known], column[known]] = 1.0
        else:
            out[:, 0] = np.where(missing, 0.0, (values - self.center) / self.scale)
        return out


def design_matrix(x: np.ndarray, encodings: Sequence[FieldEncoding]) -> np.ndarray:
    """The regression's (n, p) input: each field's columns, fields in the spec's order."""
    if x.ndim != 2 or x.shape[1] != len(encodings):
        raise ValueError(f"expected an (n, {len(encodings)}) encoded matrix, got {x.shape}")
    return np.hstack([e.columns(x[:, i]) for i, e in enumerate(encodings)])


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A fitted penalized logistic regression: scores and exact contributions, from JSON alone."""

    encodings: tuple[FieldEncoding, ...]
    coef: np.ndarray  # (p,), one per design column
    intercept: float
    means: np.ndarray  # (p,), weighted training mean of each design column
    penalty_c: float  # the chosen inverse L2 strength, for the report

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(e.field for e in self.encodings)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """The model's log-odds for `encode_frame` rows (what sklearn's decision_function gives)."""
        return design_matrix(x, self.encodings) @ self.coef + self.intercept

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base per row, (n, k) contribution per field) against the training mean."""
        centred = (design_matrix(x, self.encodings) - self.means) * self.coef
        starts = np.cumsum([0] + [e.width for e in self.encodings[:-1]])
        per_field = np.add.reduceat(centred, starts, axis=1)
        base = self.intercept + float(self.means @ self.coef)
        return np.full(len(x), base), per_field

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; `from_json` of it scores bit for bit the same.

        {"format": 1, "kind": "penalized-logistic", "intercept": b, "penalty_c": C, "fields": [
            {"field": "age", "encoding": "numeric", "center": 38.1, "scale": 10.2,
             "coef": [value, missing], "mean": [value, missing]},
            {"field": "permit_type", "encoding": "one_hot", "levels": ["quota_refugee", ...],
             "coef": [one per level..., missing], "mean": [...]}, ...]}
        """
        fields, start = [], 0
        for e in self.encodings:
            part = slice(start, start + e.width)
            entry: dict[str, Any] = {"field": e.field, "encoding": e.encoding}
            if e.encoding == "one_hot":
                entry["levels"] = list(e.levels)
            else:
                entry.update(center=e.center, scale=e.scale)
            entry.update(coef=self.coef[part].tolist(), mean=self.means[part].tolist())
            fields.append(entry)
            start += e.width
        return {
            "format": FORMAT,
            "kind": KIND,
            "intercept": self.intercept,
            "penalty_c": self.penalty_c,
            "fields": fields,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        """Rebuild a model written by `to_json`; no code is run from the data."""
        if data.get("format") != FORMAT or data.get("kind") != KIND:
            raise ValueError(f"not a {KIND} model of format {FORMAT}")
        encodings, coef, means = [], [], []
        for entry in data["fields"]:
            if entry["field"] not in FIELDS_BY_NAME:
                raise ValueError(f"unknown intake field {entry['field']!r}")
            if entry["encoding"] == "one_hot":
                e = FieldEncoding(entry["field"], "one_hot", levels=tuple(entry["levels"]))
            else:
                e = FieldEncoding(entry["field"], "numeric", entry["center"], entry["scale"])
            if not len(entry["coef"]) == len(entry["mean"]) == e.width:
                raise ValueError(f"{e.field}: expected {e.width} coefficients and means")
            encodings.append(e)
            coef.extend(entry["coef"])
            means.extend(entry["mean"])
        return cls(
            tuple(encodings),
            np.array(coef, dtype=np.float64),
            float(data["intercept"]),
            np.array(means, dtype=np.float64),
            float(data["penalty_c"]),
        )


def _fit_encoding(field: IntakeField, values: np.ndarray, w: np.ndarray) -> FieldEncoding:
    if field.kind == "category":
        return FieldEncoding(field.name, "one_hot", levels=field.categories)
    seen = ~np.isnan(values)
    if not seen.any() or w[seen].sum() <= 0:
        return FieldEncoding(field.name, "numeric")
    center = float(np.average(values[seen], weights=w[seen]))
    if field.kind == "boolean":
        return FieldEncoding(field.name, "numeric", center)
    sd = float(np.sqrt(np.average((values[seen] - center) ** 2, weights=w[seen])))
    return FieldEncoding(field.name, "numeric", center, sd if sd > 0 else 1.0)


class PenalizedLogistic(BaseEstimator):
    """L2 logistic regression with C chosen by weighted cross-validated log loss.

    Folds are stratified and shuffled (the rows may come in intake order); the weights are the
    censoring weights, used in the fit and in the fold scores alike. `model_` is what a bundle
    stores; `estimator_` is sklearn's fitted object, kept for inspection and tests.
    """

    def __init__(
        self,
        *,
        spec: FeatureSpec,
        cs: Sequence[float] = DEFAULT_CS,
        cv: int = 5,
        tol: float = 1e-6,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.spec = spec
        self.cs = cs
        self.cv = cv
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Self:
        """Fit on `encode_frame` rows of `spec`, labels 0/1 and optional weights."""
        w = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if not len(x) == len(y) == len(w):
            raise ValueError("x, y and sample_weight must have the same number of rows")
        encodings = tuple(
            _fit_encoding(f, x[:, i], w) for i, f in enumerate(self.spec.declarations)
        )
        design = design_matrix(x, encodings)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        self.estimator_ = LogisticRegressionCV(
            Cs=list(self.cs),
            l1_ratios=(0.0,),
            cv=folds,
            scoring="neg_log_loss",
            tol=self.tol,
            max_iter=self.max_iter,
            use_legacy_attributes=False,
        )
        # A design of ~80 columns is too small for threaded BLAS: on a busy 2-core machine the
        # threads made the fit 25 times slower (8 s against 0.3 s for 2,200 people).
        with threadpool_limits(limits=1, user_api="blas"):
            self.estimator_.fit(design, y, sample_weight=w)
        self.model_ = LinearModel(
            encodings,
            self.estimator_.coef_[0].copy(),
            float(self.estimator_.intercept_[0]),
            np.average(design, axis=0, weights=w),
            float(self.estimator_.C_),
        )
        return self
