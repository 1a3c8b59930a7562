"""Training stages: split by intake year, fit trees, calibrate, choose capacity and threshold.

Pure functions on frames and arrays; reading files and talking to MLflow happen in
`riskscreen.model.pipeline` and the CLI. Every stage weights people by their censoring weight, so
the fitted risk is the risk of the whole eligible cohort under usual care.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from riskscreen.contract.features import FeatureSpec
from riskscreen.explain import treeshap
from riskscreen.model.bundle import LEAF_TABLES, PRED_CONTRIB, Calibration, ModelBundle, Thresholds
from riskscreen.model.config import ModelConfig, SplitConfig, TreeCandidate

log = logging.getLogger(__name__)
SPLITS = ("train", "calibration", "validation", "test")


@dataclass(frozen=True)
class YearSplit:
    """Which intake years feed which stage; the newest complete years are held out."""

    train: tuple[int, ...]
    calibration: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]

    def assign(self, years: pd.Series) -> pd.Series:
        """The split name per row ('' for rows of no split, e.g. a partly followed-up year)."""
        out = pd.Series("", index=years.index, dtype=object)
        for name in SPLITS:
            out[years.isin(getattr(self, name))] = name
        return out


def temporal_split(labels: pd.DataFrame, cfg: SplitConfig) -> YearSplit:
    """Newest complete intake years -> test, validation, calibration; older ones -> train.

    A year is complete when none of its intakes is still inside the horizon at extraction;
    a partly followed-up year is used by no stage, since its labelled people are a biased
    (early-intake) subset and it is newer than the test years.
    """
    by_year = labels.groupby("intake_year", observed=True)["status"]
    complete = sorted(int(y) for y, s in by_year if not (s == "recent").any())
    needed = cfg.test_years + cfg.validation_years + cfg.calibration_years + 1
    if len(complete) < needed:
        raise ValueError(f"need at least {needed} fully followed-up intake years, found {complete}")
    test = complete[-cfg.test_years :]
    rest = complete[: -cfg.test_years]
    validation = rest[-cfg.validation_years :]
    rest = rest[: -cfg.validation_years]
    calibration = rest[-cfg.calibration_years :]
    train = rest[: -cfg.calibration_years]
    return YearSplit(tuple(train), tuple(calibration), tuple(validation), tuple(test))


def fit_trees(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    spec: FeatureSpec,
    cfg: ModelConfig,
    candidate: TreeCandidate,
) -> lgb.Booster:
    """Gradient-boosted trees with the declared monotone directions, deterministic per seed."""
    params = {
        "objective": "binary",
        "num_leaves": candidate.num_leaves,
        "learning_rate": cfg.learning_rate,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "lambda_l2": cfg.lambda_l2,
        "seed": cfg.seed,
        "deterministic": True,
        "force_col_wise": True,  # 21 low-cardinality columns: LightGBM's faster layout here
        "num_threads": cfg.num_threads,
        "verbosity": -1,
    }
    if cfg.monotone_constraints:
        params["monotone_constraints"] = spec.monotone_constraints()
    data = lgb.Dataset(
        x,
        label=y,
        weight=w,
        feature_name=list(spec.fields),
        categorical_feature=spec.categorical_indices(),
        free_raw_data=True,
    )
    return lgb.train(params, data, num_boost_round=candidate.num_trees)


def explain_cost_us(booster: lgb.Booster, x: np.ndarray, rows: int = 500) -> tuple[float, str]:
    """Microseconds per row, on one thread, of the exact TreeSHAP that would serve `booster`
    (the leaf tables, or `pred_contrib` for a model they refuse), and that explainer's name."""
    sample = np.ascontiguousarray(x[:rows], dtype=np.float64)
    try:
        tables = treeshap.build(booster)  # built and checked now, so not timed below
    except treeshap.UnsupportedModel:
        start = time.perf_counter()
        booster.predict(sample, pred_contrib=True, num_threads=1)
        name = PRED_CONTRIB
    else:
        start = time.perf_counter()
        tables.contributions(sample, num_threads=1)
        name = LEAF_TABLES
    return (time.perf_counter() - start) / max(len(sample), 1) * 1e6, name


@dataclass(frozen=True)
class CandidateResult:
    num_trees: int
    num_leaves: int
    validation_auc: float
    explain_us_per_row: float
    explainer: str


def choose_capacity(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    spec: FeatureSpec,
    cfg: ModelConfig,
) -> tuple[lgb.Booster, list[CandidateResult], int]:
    """Fit every candidate; keep the cheapest to explain within `auc_tolerance` of the best.

    Returns the chosen booster, the table of candidates (for the report) and its index.
    """
    boosters, results = [], []
    for cand in cfg.candidates:
        booster = fit_trees(*train, spec, cfg, cand)
        raw = booster.predict(validation[0], raw_score=True)
        auc = float(roc_auc_score(validation[1], raw, sample_weight=validation[2]))
        cost, explainer = explain_cost_us(booster, validation[0])
        log.info(
            "candidate %d trees x %d leaves: validation AUC %.4f, explain %.0f us/row (%s)",
            cand.num_trees,
            cand.num_leaves,
            auc,
            cost,
            explainer,
        )
        boosters.append(booster)
        results.append(CandidateResult(cand.num_trees, cand.num_leaves, auc, cost, explainer))
    best = max(r.validation_auc for r in results)
    eligible = [i for i, r in enumerate(results) if r.validation_auc >= best - cfg.auc_tolerance]
    chosen = min(eligible, key=lambda i: results[i].explain_us_per_row)
    return boosters[chosen], results, chosen


def fit_calibration(raw: np.ndarray, y: np.ndarray, w: np.ndarray) -> Calibration:
    """Platt scaling of the trees' log-odds on the calibration cohort (weighted, unpenalised)."""
    lr = LogisticRegression(C=np.inf)
    lr.fit(raw.reshape(-1, 1), y, sample_weight=w)
    return Calibration(slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The value below which a weighted share `q` of the population lies."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, len(values) - 1)])


def capacity_thresholds(
    probability: np.ndarray, w: np.ndarray, capacity: float, elevated_share: float
) -> Thresholds:
    """Flag the top `capacity` share of the (weighted) validation cohort; 'elevated' the next."""
    flag = weighted_quantile(probability, w, 1.0 - capacity)
    elevated = weighted_quantile(probability, w, 1.0 - capacity - elevated_share)
    return Thresholds(flag=flag, elevated=min(elevated, flag))


def fit_bundle(
    frames: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    spec: FeatureSpec,
    cfg: ModelConfig,
    capacity: float,
    elevated_share: float,
) -> tuple[ModelBundle, list[CandidateResult], int]:
    """Trees on train, calibration on the calibration cohort, thresholds on validation."""
    booster, candidates, chosen = choose_capacity(frames["train"], frames["validation"], spec, cfg)
    x_cal, y_cal, w_cal = frames["calibration"]
    calibration = fit_calibration(np.asarray(booster.predict(x_cal, raw_score=True)), y_cal, w_cal)
    bundle = ModelBundle(booster, spec, calibration, Thresholds(flag=1.0, elevated=1.0))
    x_val, _, w_val = frames["validation"]
    p_val = 1.0 / (1.0 + np.exp(-bundle.log_odds(x_val)))
    bundle.thresholds = capacity_thresholds(p_val, w_val, capacity, elevated_share)
    return bundle, candidates, chosen


def fit_logistic_baseline(x: np.ndarray, y: np.ndarray, w: np.ndarray, spec: FeatureSpec) -> object:
    """A one-hot logistic regression on the same features: the simple model to beat."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = spec.categorical_indices()
    nums = [i for i in range(len(spec.fields)) if i not in cats]
    pre = ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cats,
            ),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), nums),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=2000))
    model.fit(x, y, logisticregression__sample_weight=w)
    return model
