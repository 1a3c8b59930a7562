"""A model trained elsewhere, made servable here or refused: the import's pure flow.

A municipality with few people may start from another's model (DESIGN.md, "Small cohorts").
Before anything is fitted, the import refuses what cannot be served here: a model that reads a
field the municipality does not record, one made for another horizon, one that never learned
from unknown answers the local data hold. Then, on the labelled people of fully followed-up
years (as the small-cohort design keeps them):

1. the imported model is recalibrated and judged out of fold (`recalibration`);
2. the local small-cohort design is run on the same people (`small_design.fit_small_design`),
   with the fields `riskscreen train` would use here, and the two are compared on the same
   predicted years (`paired_backtest`): which serves this municipality better;
3. the recalibrated model is evaluated and gated by `pipeline.evaluated`, with the metrics and
   gates of training, and its provenance names both sources: the archive and the imported
   bundle's own provenance (`source`), and the local data and map (`recalibration`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.schema import FIELDS_BY_NAME, schema_hash
from riskscreen.model.bundle import ModelBundle
from riskscreen.model.config import TrainConfig
from riskscreen.model.paired_backtest import Comparison, compare_backtests
from riskscreen.model.pipeline import (
    TrainingResult,
    complete_years_frame,
    evaluated,
    labels_for,
    logistic_baseline_oof,
    model_fields,
    small_design_fit,
)
from riskscreen.model.recalibration import RecalibratedFit, recalibrate
from riskscreen.model.small_design import SmallFit
from riskscreen.model.train import YearSplit
from riskscreen.model.training_data import TrainingData

log = logging.getLogger(__name__)
DESIGN = "imported_recalibrated"


class ImportRefused(ValueError):
    """The imported model cannot be served here; the message says why. Nothing was fitted."""


@dataclass(frozen=True)
class ImportedResult:
    """The recalibrated model's training result (to register and report) and the backtest."""

    result: TrainingResult
    comparison: Comparison
    local_reason: str  # why the local design chose its family


def check_servable(imported: ModelBundle, data: TrainingData, cfg: TrainConfig) -> None:
    """Refuse a model this municipality could not serve or judge, naming what is wrong.

    Raises:
        ImportRefused: a model field not recorded here, another horizon, or unknown answers in
            a field the model never saw unknown.
    """
    missing = [f for f in imported.spec.fields if f in data.not_recorded]
    if missing:
        raise ImportRefused(
            f"the model reads {', '.join(missing)}, which this municipality does not record "
            "(its mapping declares them not_recorded): it cannot be served here"
        )
    horizon = imported.provenance.get("horizon_months")
    if horizon != cfg.horizon_months:
        raise ImportRefused(
            f"the model answers within {horizon} months, the config asks for "
            f"{cfg.horizon_months} (horizon_months): a model for another question"
        )
    # A null that means "none" (a nullable field, e.g. no occupation) is a value; a null that
    # means "not known" is one only for a model that learned from it.
    x = encode_frame(data.intake, imported.spec)
    unknown = [
        f"{f} ({int(n):,} people)"
        for f, n in zip(imported.spec.fields, np.isnan(x).sum(axis=0), strict=True)
        if n and FIELDS_BY_NAME[f].may_be_unknown and f not in imported.unknown_fields
    ]
    if unknown:
        raise ImportRefused(
            f"the local intake has unknown answers the model never learned from: "
            f"{', '.join(unknown)}; it could not score these people"
        )


def evaluate_imported(
    imported: ModelBundle,
    data: TrainingData,
    cfg: TrainConfig,
    *,
    archive_sha256: str,
    step: Callable[[str], None] = lambda _: None,
) -> ImportedResult:
    """Recalibrate, compare with a local model, evaluate and gate; no I/O but logging.

    Raises:
        ImportRefused: see `check_servable`.
        TooFewPeople: the predicted years or the years before them are short.
    """
    check_servable(imported, data, cfg)
    labels = labels_for(data, cfg)
    frame = complete_years_frame(data, labels)
    folds = cfg.design.folds
    step(f"recalibrating on {len(frame):,} labelled people")
    fit = recalibrate(
        imported, frame, folds, capacity=cfg.capacity, elevated_share=cfg.elevated_share
    )
    step(f"the local small-cohort design on the same people: {', '.join(folds.candidates)}")
    local = small_design_fit(frame, model_fields(cfg, data), cfg)
    comparison = _compare(fit, local, cfg)
    step(comparison.sentence)
    bundle = fit.bundle
    bundle.provenance.update(_provenance(imported, fit, data, archive_sha256, comparison))
    test, x_all = _test_frame(frame, fit, imported.spec)
    _, contrib = bundle.contributions(encode_frame(test, bundle.spec), num_threads=0)
    rec = fit.recalibration
    extra = {
        "train_years": list(rec.years),
        "test_years": list(rec.test_years),
        "design": DESIGN,
        "family": bundle.family.name,
        "family_reason": comparison.sentence,
    }
    result = evaluated(
        data,
        cfg,
        labels,
        bundle.spec,
        bundle,
        test,
        contrib,
        x_all,
        extra,
        candidates=[],
        chosen=0,
        split=YearSplit(rec.years, (), (), rec.test_years),
        split_sizes={"train": len(frame), "test": len(test)},
        family_reason=comparison.sentence,
    )
    # The model learned unknown answers where its own training data had them; the local data
    # can only have fewer (check_servable), and a request may hold what the model learned.
    unknown = list(imported.unknown_fields)
    bundle.provenance["unknown_fields"] = result.provenance["unknown_fields"] = unknown
    return ImportedResult(result, comparison, local.reason)


def _compare(fit: RecalibratedFit, local: SmallFit, cfg: TrainConfig) -> Comparison:
    """The two backtests on the same people, aligned by their row in the frame."""
    ours = fit.oof.sort_values("row")
    theirs = local.oof.sort_values("row")
    if not np.array_equal(ours["row"].to_numpy(), theirs["row"].to_numpy()):
        raise RuntimeError("the imported and the local backtest predicted different people")
    return compare_backtests(
        ours["y"].to_numpy(),
        ours["weight"].to_numpy(),
        ours["year"].to_numpy(),
        ours["probability"].to_numpy(),
        theirs["probability"].to_numpy(),
        cfg.design.folds,
        local_family=local.family,
    )


def _test_frame(
    frame: pd.DataFrame, fit: RecalibratedFit, spec: FeatureSpec
) -> tuple[pd.DataFrame, np.ndarray]:
    """The predicted people with their out-of-fold probability and the logistic baseline's."""
    x_all = encode_frame(frame, spec)
    rows = fit.oof["row"].to_numpy()
    test = frame.iloc[rows].copy()
    test["probability"] = fit.oof["probability"].to_numpy()
    test["logreg"] = logistic_baseline_oof(frame, x_all, spec, fit.folds).loc[rows].to_numpy()
    return test, x_all


def _provenance(
    imported: ModelBundle,
    fit: RecalibratedFit,
    data: TrainingData,
    archive_sha256: str,
    comparison: Comparison,
) -> dict[str, Any]:
    """Both sources: where the model came from, and what it was recalibrated on here."""
    source_schema = imported.provenance.get("schema_sha256")
    if source_schema not in (None, schema_hash()):
        log.warning(
            "the imported model was trained under intake schema %s…, this installation's is "
            "%s…: check that the field codings agree",
            str(source_schema)[:12],
            schema_hash()[:12],
        )
    served = fit.bundle.calibration
    return {
        "source": {
            "archive_sha256": archive_sha256,
            "family": imported.family.name,
            "calibration": {
                "slope": imported.calibration.slope,
                "intercept": imported.calibration.intercept,
            },
            "provenance": imported.provenance,
        },
        "recalibration": {
            "data_sha256": data.fingerprint(),
            **fit.recalibration.to_dict(),
            "served_calibration": {"slope": served.slope, "intercept": served.intercept},
            "backtest": comparison.to_dict(),
        },
    }
