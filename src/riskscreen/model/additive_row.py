"""One row of an additive model (linear or main-effects EBM), scored from per-field tables.

Why: every request scores one row twice over, its contributions and the model's own log-odds
they are checked against. The models' vectorised code spends a dozen numpy calls per field on
it: about 125 µs for the log-odds and 145 µs for the contributions of one linear row, 100 and
90 µs for an EBM row. Here each field is a lookup or one line of float arithmetic, prepared
once per model: about 10 µs for both.

Exactness. A field's contribution depends on its own value only. A field of finitely many values
(a category's code, or missing) is tabulated by running the model's own `contributions` on one
probe row per value, so its numbers are the model's to the bit. The others repeat the model's
elementwise float operations in the model's order, which IEEE-754 rounds to the same bits: a
linear number or boolean gives ((v - center) / scale - mean) · coef + (0 - mean_missing) ·
coef_missing, an EBM continuous field the score of its bin, found by bisection on the same cut
points. So one row's contributions equal its row of the batch's, and `Scorer.score` equals
`score_frame`. The log-odds: an EBM's is its intercept plus each term in term order, as the model
adds them, the same bits again; a linear model's is the intercept plus each field's coef ·
columns, where the model takes one BLAS dot product whose order of summation is its own, so
the two agree up to rounding (~1e-16; the model's own code differs as much between one row and a
batch). The served log-odds are base + Σ contributions, bit-identical either way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.model.ebm import EBMModel
from riskscreen.model.linear import LinearModel


class _Field(Protocol):
    def score(self, value: float) -> float: ...

    def contribution(self, value: float) -> float: ...


@dataclass(frozen=True, slots=True)
class _Tabulated:
    """A field of finitely many values: by category code, or missing (NaN)."""

    scores: tuple[float, ...]
    contributions: tuple[float, ...]
    missing_score: float
    missing_contribution: float

    def score(self, value: float) -> float:
        return self.missing_score if value != value else self.scores[int(value)]

    def contribution(self, value: float) -> float:
        return self.missing_contribution if value != value else self.contributions[int(value)]


@dataclass(frozen=True, slots=True)
class _Standardised:
    """A linear model's number or boolean: design columns [(v - center) / scale, missing]."""

    center: float
    scale: float
    coef: float
    mean: float
    present: float  # the missing column's term when the value is there: (0 - mean) * coef
    missing_score: float
    missing_contribution: float

    def score(self, value: float) -> float:
        if value != value:
            return self.missing_score
        return (value - self.center) / self.scale * self.coef

    def contribution(self, value: float) -> float:
        if value != value:
            return self.missing_contribution
        return ((value - self.center) / self.scale - self.mean) * self.coef + self.present


@dataclass(frozen=True, slots=True)
class _Binned:
    """An EBM continuous field: lower-inclusive cut points, scores [missing, bin 1, ...]."""

    cuts: tuple[float, ...]
    scores: tuple[float, ...]

    def score(self, value: float) -> float:
        return self.scores[0] if value != value else self.scores[bisect_right(self.cuts, value) + 1]

    def contribution(self, value: float) -> float:
        return self.score(value)


@dataclass(frozen=True)
class AdditiveRow:
    """Intercept + one term per field, for one encoded row (`encode_frame`'s columns)."""

    intercept: float
    base: float
    fields: tuple[_Field, ...]

    def log_odds(self, row: np.ndarray) -> float:
        """The model's log-odds of one row of k values, intercept first, fields in order."""
        total = self.intercept
        for field, value in zip(self.fields, row.tolist(), strict=True):
            total += field.score(value)
        return total

    def contributions(self, row: np.ndarray) -> np.ndarray:
        """The k contributions of one row, each the model's own to the bit."""
        values = row.tolist()
        return np.array([f.contribution(v) for f, v in zip(self.fields, values, strict=True)])


def _categories(field: str, tabulated: bool) -> int:
    return len(FIELDS_BY_NAME[field].categories) if tabulated else 0


def _probe(sizes: Sequence[int]) -> np.ndarray:
    """Rows covering each tabulated field's codes (size > 0), then missing; NaN elsewhere."""
    probe = np.full((max(sizes, default=0) + 1, len(sizes)), np.nan)
    for i, size in enumerate(sizes):
        probe[:size, i] = np.arange(size)
    return probe


def _tabulated(scores: np.ndarray, contributions: np.ndarray, size: int) -> _Tabulated:
    return _Tabulated(
        tuple(scores[:size].tolist()),
        tuple(contributions[:size].tolist()),
        float(scores[size]),
        float(contributions[size]),
    )


def linear_row(model: LinearModel) -> AdditiveRow:
    """The one-row scorer of a penalized logistic regression."""
    sizes = [_categories(e.field, e.encoding == "one_hot") for e in model.encodings]
    probe = _probe(sizes)
    base, contrib = model.contributions(probe)
    fields: list[_Field] = []
    start = 0
    for i, e in enumerate(model.encodings):
        part = slice(start, start + e.width)
        start += e.width
        coef, mean = model.coef[part].tolist(), model.means[part].tolist()
        scores = e.columns(probe[:, i]) @ model.coef[part]
        if sizes[i]:
            fields.append(_tabulated(scores, contrib[:, i], sizes[i]))
        else:  # the probe's column is missing throughout
            present = (0.0 - mean[1]) * coef[1]
            missing = float(scores[0]), float(contrib[0, i])
            scaling = float(e.center), float(e.scale)
            fields.append(_Standardised(*scaling, coef[0], mean[0], present, *missing))
    return AdditiveRow(model.intercept, float(base[0]), tuple(fields))


def ebm_row(model: EBMModel) -> AdditiveRow:
    """The one-row scorer of a main-effects EBM: each term's score is its contribution."""
    sizes = [_categories(t.field, t.categories is not None) for t in model.terms]
    probe = _probe(sizes)
    base, contrib = model.contributions(probe)
    fields: list[_Field] = []
    for i, t in enumerate(model.terms):
        if t.cuts is None:
            fields.append(_tabulated(contrib[:, i], contrib[:, i], sizes[i]))
        else:
            fields.append(_Binned(tuple(t.cuts.tolist()), tuple(t.scores.tolist())))
    return AdditiveRow(model.intercept, float(base[0]), tuple(fields))
