"""Gradient-boosted trees sized for a few thousand people: the small-cohort design's tree family.

At 10^3-10^4 labelled people deep trees fit noise, so these have few leaves, large leaves for
their data and a slow learning rate, and the number of trees is found by early stopping on the
newest intake year of the training rows (the year most like the one to be predicted); the model
is then refitted on every row with that many trees, so the newest year is learnt from too. The
directions declared in the schema are monotone constraints, as for the full-size trees.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from riskscreen.contract.features import FeatureSpec
from riskscreen.model.config import SmallTreesConfig
from riskscreen.model.folds import TooFewPeople


def fit_small_trees(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    years: np.ndarray,
    spec: FeatureSpec,
    cfg: SmallTreesConfig,
    *,
    seed: int,
    num_threads: int,
) -> lgb.Booster:
    """Trees with the declared monotone directions: stop early on the newest year, then refit
    every row with that many trees. Deterministic for the same inputs and seed.

    Raises:
        TooFewPeople: the rows hold a single intake year, so there is no year to stop on.
    """
    newest = years == years.max()
    if newest.all():
        raise TooFewPeople(
            f"the trees stop early on the newest intake year of their training rows, and all "
            f"{len(y)} are from {int(years.max())}; the first training window needs two years: "
            f"lower `folds.test_years` or use more years"
        )
    params = {
        "objective": "binary",
        "num_leaves": cfg.num_leaves,
        "learning_rate": cfg.learning_rate,
        "min_data_in_leaf": max(cfg.min_data_in_leaf, round(cfg.min_leaf_share * len(y))),
        "lambda_l2": cfg.lambda_l2,
        "monotone_constraints": spec.monotone_constraints(),
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": num_threads,
        "verbosity": -1,
    }

    def dataset(rows: np.ndarray) -> lgb.Dataset:
        return lgb.Dataset(
            x[rows],
            label=y[rows],
            weight=w[rows],
            feature_name=list(spec.fields),
            categorical_feature=spec.categorical_indices(),
            free_raw_data=True,
        )

    inner = dataset(~newest)
    holdout = lgb.Dataset(x[newest], label=y[newest], weight=w[newest], reference=inner)
    probe = lgb.train(
        params,
        inner,
        num_boost_round=cfg.max_trees,
        valid_sets=[holdout],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    num_trees = max(probe.best_iteration, 1)
    return lgb.train(params, dataset(np.ones(len(y), dtype=bool)), num_boost_round=num_trees)
