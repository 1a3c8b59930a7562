"""The large-cohort design's served model: the chosen capacity refitted on every eligible year.

The held-out split answers two questions: which capacity to fit, and how good a model trained on
the past is on the next years' intake (the test years, on which the gates are decided). Once
answered, the held-out years are the newest and most relevant people the project has; a model
that never saw them gives away ranking (measured on the default cohort against a fresh 100,000
of the truth: a share of the achievable ranking of 0.981 without them, 0.984 with them). So the
served model is refitted on every fully followed-up year, with the capacity chosen, the slope of
the held-out model's Platt scaling (how far boosted log-odds of this capacity are to be trusted
on years not fitted) and an intercept re-solved on every labelled person, as the small-cohort
design serves its refit (`folds.with_intercept_on`). Thresholds stay those set on held-out
predictions: the shares they flag are a property of next year's scores, not of in-sample ones.
"""

from __future__ import annotations

import numpy as np

from riskscreen.contract.features import FeatureSpec
from riskscreen.model.bundle import ModelBundle
from riskscreen.model.config import ModelConfig, TreeCandidate
from riskscreen.model.folds import with_intercept_on
from riskscreen.model.train import SPLITS, fit_trees


def refit_on_every_year(
    frames: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    spec: FeatureSpec,
    cfg: ModelConfig,
    chosen: TreeCandidate,
    held_out: ModelBundle,
) -> ModelBundle:
    """The bundle to serve: `chosen` fitted on the rows of every split in `frames`.

    Args:
        frames: (x, y, weight) per split name, as `train.fit_bundle` takes them.
        spec: the model's fields.
        cfg: the tree settings (seed, learning rate, leaf size, threads).
        chosen: the capacity the held-out validation chose.
        held_out: the evaluated bundle, fitted on the train years only: its slope and
            thresholds are served with the refit.
    """
    x = np.concatenate([frames[name][0] for name in SPLITS])
    y = np.concatenate([frames[name][1] for name in SPLITS])
    w = np.concatenate([frames[name][2] for name in SPLITS])
    booster = fit_trees(x, y, w, spec, cfg, chosen)
    raw = np.asarray(booster.predict(x, raw_score=True, num_threads=cfg.num_threads))
    calibration = with_intercept_on(held_out.calibration, raw, y, w)
    return ModelBundle(booster, spec, calibration, held_out.thresholds)
