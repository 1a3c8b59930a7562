"""An explainable boosting machine (InterpretML) of main effects only, served from its tables.

At 10^3-10^4 labelled people an EBM is a candidate beside penalized logistic regression
(DESIGN.md, "Small cohorts"). With `interactions=0` the model is intercept + one score per field,
looked up in that field's bins, so each field's score *is* its contribution and base + Σ
contributions is the log-odds exactly; a pair term would break one contribution per field.

The fitted model is exported as plain tables (JSON) and scored by riskscreen from them alone,
exactly as interpret-core 0.7.8 scores (`_ebm/_bin.py::eval_terms`, `ebm_predict_scores`):

- a continuous field has lower-inclusive cut points: bin = 1 + #(cuts <= value), NaN -> bin 0;
- a nominal field maps category names to bins 1..m; NaN -> bin 0, and a category absent from
  the map (declared but not seen in training) -> the last bin;
- scores run [missing, bin 1, ..., unseen]; interpret leaves missing at 0 when training saw
  none, and unseen at 0, so such values add nothing to the base.

The input is `encode_frame`'s matrix, the trees' input: unordered categories go to the library
as nominal (their declared names), ordered categories as their codes, booleans as 0/1, numbers as
they are, all three continuous, so the order of ordered categories is kept.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Self

import numpy as np
import pandas as pd
from interpret.glassbox import ExplainableBoostingClassifier
from sklearn.base import BaseEstimator

from riskscreen.contract.features import FeatureSpec
from riskscreen.contract.schema import FIELDS_BY_NAME, IntakeField

FORMAT = 1
KIND = "ebm-main-effects"


def _nominal(field: IntakeField) -> bool:
    return field.kind == "category" and not field.ordered


def library_frame(x: np.ndarray, spec: FeatureSpec) -> pd.DataFrame:
    """`encode_frame` rows as interpret is fitted on them: declared names for nominal fields.

    Only the categories present are passed: interpret gives every category it is told of a bin,
    and a bin no training row fell in gets an arbitrary score, where a category it was not told
    of goes to the unseen bin, scored 0. Scoring maps by name, so the list does not matter there.
    """
    columns: dict[str, Any] = {}
    for i, field in enumerate(spec.declarations):
        values = x[:, i]
        if _nominal(field):
            codes = np.where(np.isnan(values), -1, values).astype(np.int64)
            categorical = pd.Categorical.from_codes(codes, list(field.categories))
            columns[field.name] = categorical.remove_unused_categories()
        else:
            columns[field.name] = values
    return pd.DataFrame(columns)


@dataclass(frozen=True, eq=False)
class Term:
    """One field's bins and scores; exactly one of `cuts` and `categories` is set."""

    field: str
    scores: np.ndarray  # [missing, bin 1, ..., unseen]
    cuts: np.ndarray | None = None
    categories: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.cuts is not None and self.categories is None:
            expected = len(self.cuts) + 3
        elif self.categories is not None and self.cuts is None:
            expected = max(self.categories.values(), default=0) + 2
        else:
            raise ValueError(f"{self.field}: a term has either cuts or categories")
        if self.scores.shape != (expected,):
            raise ValueError(f"{self.field}: expected {expected} scores, got {self.scores.shape}")

    @cached_property
    def _bin_of_code(self) -> np.ndarray:
        # Codes index the schema's declared categories; the map is by name, and a category the
        # model never saw gets -1, which indexes the last (unseen) score as in interpret.
        assert self.categories is not None
        declared = FIELDS_BY_NAME[self.field].categories
        return np.array([self.categories.get(c, -1) for c in declared], dtype=np.int64)

    def bins(self, values: np.ndarray) -> np.ndarray:
        """The bin of each encoded value: 0 missing, -1 unseen, else 1.. ."""
        missing = np.isnan(values)
        if self.cuts is not None:
            found = np.searchsorted(self.cuts, values, side="right") + 1
            return np.where(missing, 0, found)
        out = np.zeros(len(values), dtype=np.int64)
        out[~missing] = self._bin_of_code[values[~missing].astype(np.int64)]
        return out

    def to_json(self) -> dict[str, Any]:
        binning = (
            {"cuts": self.cuts.tolist()}
            if self.cuts is not None
            else {"categories": dict(self.categories or {})}
        )
        return {"field": self.field, **binning, "scores": self.scores.tolist()}


@dataclass(frozen=True, eq=False)
class EBMModel:
    """Intercept and one term per field, in the spec's order: scores and exact contributions."""

    intercept: float
    terms: tuple[Term, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(t.field for t in self.terms)

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != len(self.terms):
            raise ValueError(f"expected an (n, {len(self.terms)}) encoded matrix, got {x.shape}")

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """Intercept plus each term's score, added in term order as interpret adds them."""
        self._check(x)
        out = np.full(len(x), self.intercept)
        for i, term in enumerate(self.terms):
            out += term.scores[term.bins(x[:, i])]
        return out

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base per row = the intercept, (n, k) term score per field)."""
        self._check(x)
        per_field = np.column_stack([t.scores[t.bins(x[:, i])] for i, t in enumerate(self.terms)])
        return np.full(len(x), self.intercept), per_field

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; `from_json` of it scores bit for bit the same.

        {"format": 1, "kind": "ebm-main-effects", "intercept": b, "terms": [
            {"field": "age", "cuts": [18.5, ...], "scores": [missing, bin 1, ..., unseen]},
            {"field": "permit_type", "categories": {"asylum": 2, ...}, "scores": [...]}, ...]}
        """
        return {
            "format": FORMAT,
            "kind": KIND,
            "intercept": self.intercept,
            "terms": [t.to_json() for t in self.terms],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EBMModel:
        """Rebuild a model written by `to_json`; no code is run from the data."""
        if data.get("format") != FORMAT or data.get("kind") != KIND:
            raise ValueError(f"not an {KIND} model of format {FORMAT}")
        terms = []
        for entry in data["terms"]:
            if entry["field"] not in FIELDS_BY_NAME:
                raise ValueError(f"unknown intake field {entry['field']!r}")
            cuts = entry.get("cuts")
            terms.append(
                Term(
                    entry["field"],
                    np.array(entry["scores"], dtype=np.float64),
                    None if cuts is None else np.array(cuts, dtype=np.float64),
                    entry.get("categories"),
                )
            )
        return cls(float(data["intercept"]), tuple(terms))


def _tables(ebm: ExplainableBoostingClassifier, spec: FeatureSpec) -> EBMModel:
    """Read the fitted library model into terms, checking it has the shape we score."""
    if ebm.link_ != "logit" or ebm.intercept_.shape != (1,):
        raise RuntimeError(f"expected a binary logit EBM, got link {ebm.link_!r}")
    if [tuple(t) for t in ebm.term_features_] != [(i,) for i in range(len(spec.fields))]:
        raise RuntimeError(f"expected one main-effect term per field, got {ebm.term_features_}")
    terms = []
    for i, name in enumerate(spec.fields):
        binning, scores = ebm.bins_[i][0], np.asarray(ebm.term_scores_[i], dtype=np.float64)
        if isinstance(binning, dict):
            categories = {str(k): int(v) for k, v in binning.items()}
            terms.append(Term(name, scores.copy(), categories=categories))
        else:
            terms.append(Term(name, scores.copy(), cuts=np.asarray(binning, np.float64).copy()))
    return EBMModel(float(ebm.intercept_[0]), tuple(terms))


class MainEffectsEBM(BaseEstimator):
    """InterpretML's ExplainableBoostingClassifier with `interactions=0`, weighted.

    `model_` is what a bundle stores; `ebm_` is the library's fitted object, kept for inspection
    and for the tests that hold `model_` to the library's own predictions.
    """

    def __init__(
        self,
        *,
        spec: FeatureSpec,
        outer_bags: int = 8,
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.spec = spec
        self.outer_bags = outer_bags
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Self:
        """Fit on `encode_frame` rows of `spec`, labels 0/1 and optional weights."""
        if not len(x) == len(y) or (sample_weight is not None and len(sample_weight) != len(x)):
            raise ValueError("x, y and sample_weight must have the same number of rows")
        self.ebm_ = ExplainableBoostingClassifier(
            feature_types=[
                "nominal" if _nominal(f) else "continuous" for f in self.spec.declarations
            ],
            interactions=0,
            outer_bags=self.outer_bags,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # interpret's note that its plots do not show missing values; we score the missing
            # bin ourselves (term scores[0]), so there is nothing to act on.
            warnings.filterwarnings(
                "ignore", message="Missing values detected", category=UserWarning
            )
            self.ebm_.fit(library_frame(x, self.spec), y, sample_weight=sample_weight)
        self.model_ = _tables(self.ebm_, self.spec)
        return self
