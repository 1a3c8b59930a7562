"""Scoring one record or a whole table with the same arithmetic, so the API and batch agree.

`Scorer.score` is the request path: a validated mapping is encoded straight into a numpy row
(no pandas), the bundle's model (any family) is explained once, exactly, and the served log-odds
are taken as base + Σ contributions, so additivity holds by construction; that they also match
the model's own log-odds is checked, not hoped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscreen.contract.features import RecordEncoder, encode_frame
from riskscreen.explain.reasons import GroupReason, Lang, field_label, reason_sentence, top_reasons
from riskscreen.model.bundle import Band, ModelBundle

# The explanation must reproduce the score; a larger gap means a broken model, not rounding.
ADDITIVITY_TOLERANCE = 1e-6


class ExplanationError(RuntimeError):
    """The explanation does not add up to the score: the score must not be served."""


@dataclass(frozen=True)
class FieldContribution:
    field: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class ScoreResult:
    """A score with its exact explanation; thresholds and banding come from the bundle."""

    probability: float
    log_odds: float
    base_log_odds: float
    band: Band
    flagged: bool
    threshold: float
    contributions: tuple[FieldContribution, ...]
    # Which exact explainer made the contributions (one of the bundle's `explainers`); None
    # when not known, e.g. for a result read back from a record that does not name it.
    explainer: str | None = None

    def reasons(self, lang: Lang) -> list[str]:
        values = {c.field: c.value for c in self.contributions}
        drivers: list[GroupReason] = top_reasons(
            {c.field: c.contribution for c in self.contributions}
        )
        return [reason_sentence(r, values, lang) for r in drivers]

    def labelled_contributions(self, lang: Lang) -> list[dict[str, Any]]:
        return [
            {
                "field": c.field,
                "label": field_label(c.field, lang),
                "value": c.value,
                "contribution": c.contribution,
            }
            for c in self.contributions
        ]


def _score_matrix(
    x: np.ndarray, bundle: ModelBundle, num_threads: int = 1, explainer: str | None = None
) -> tuple[np.ndarray, ...]:
    """Base, contributions, log-odds and probabilities: the one arithmetic of every score."""
    base, contrib = bundle.contributions(x, num_threads, explainer=explainer)
    log_odds = base + contrib.sum(axis=1)
    gap = np.abs(log_odds - bundle.log_odds(x, num_threads))
    if len(gap) and not float(gap.max()) <= ADDITIVITY_TOLERANCE:
        raise ExplanationError(f"contributions miss the model's log-odds by up to {gap.max()!r}")
    return base, contrib, log_odds, 1.0 / (1.0 + np.exp(-log_odds))


class Scorer:
    """Binds a bundle to its record encoder; one per loaded model, shared by requests."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self._encoder = RecordEncoder(bundle.spec)
        self.explainer = bundle.explainer  # builds and compiles it now, not in the first request

    def score(self, record: Mapping[str, Any], explainer: str | None = None) -> ScoreResult:
        """Score and explain one validated intake record (field name -> value).

        `explainer` names the one to use (a replay passes the one its record names); by
        default the bundle's.
        """
        explainer = self.explainer if explainer is None else explainer
        base, contrib, log_odds, prob = _score_matrix(
            self._encoder.encode(record), self.bundle, explainer=explainer
        )
        contributions = contrib[0].tolist()  # Python floats, read once each below
        probability = float(prob[0])
        fields = self.bundle.spec.fields
        order = np.argsort(-np.abs(contrib[0]), kind="stable").tolist()
        thresholds = self.bundle.thresholds
        return ScoreResult(
            probability=probability,
            log_odds=float(log_odds[0]),
            base_log_odds=float(base[0]),
            band=thresholds.band(probability),
            flagged=probability >= thresholds.flag,
            threshold=thresholds.flag,
            contributions=tuple(
                FieldContribution(fields[i], record[fields[i]], contributions[i]) for i in order
            ),
            explainer=explainer,
        )


def score_frame(
    frame: pd.DataFrame, bundle: ModelBundle, num_threads: int = 0, explainer: str | None = None
) -> pd.DataFrame:
    """Score and explain every row of a canonical intake frame (batch scoring and reports).

    Columns: probability, log_odds, base_log_odds, band, flagged, and `contribution_<field>`;
    each row as `Scorer.score` gives it, with the same `explainer` (default: the bundle's).
    """
    base, contrib, log_odds, probability = _score_matrix(
        encode_frame(frame, bundle.spec), bundle, num_threads, explainer
    )
    t = bundle.thresholds
    band = np.where(
        probability >= t.flag, "high", np.where(probability >= t.elevated, "elevated", "low")
    )
    out = pd.DataFrame(
        {
            "probability": probability,
            "log_odds": log_odds,
            "base_log_odds": base,
            "band": pd.Categorical(band, categories=["low", "elevated", "high"], ordered=True),
            "flagged": probability >= t.flag,
        },
        index=frame.index,
    )
    for i, name in enumerate(bundle.spec.fields):
        out[f"contribution_{name}"] = contrib[:, i]
    return out
