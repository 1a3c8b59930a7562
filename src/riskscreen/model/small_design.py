"""The small-cohort design (DESIGN.md, "Small cohorts"): 500-50,000 labelled people.

A fixed held-out split of a municipality's own data is too small to choose a model, calibrate it
or decide a gate. Instead each of the newest `test_years` intake years is predicted by models
trained on the years before it (`folds.forward_folds`), and everything is decided on those
out-of-fold predictions, pooled:

1. every candidate family (penalized logistic regression, main-effects EBM, small trees) gets its
   out-of-fold log-odds;
2. the family with the best weighted ROC AUC wins, unless a simpler family is within the noise of
   the comparison (a paired bootstrap over people): then the simplest such family does, since a
   difference the data cannot show is no reason to serve the harder model;
3. the out-of-fold probabilities the gates and the backtest judge are calibrated year by year on
   the other predicted years (`folds.cross_calibrated`): calibration judged on the people it was
   fitted on would always look perfect. The capacity thresholds are set on them;
4. the chosen family is refitted on every eligible year and served with the slope of Platt
   scaling on all its out-of-fold log-odds and an intercept re-solved on every labelled person
   (`folds.with_intercept_on`), and those thresholds. Its own in-sample scores would judge it too
   kindly; the out-of-fold ones are what a model trained on the past does on next year's intake.

Every family gives exact additive contributions, so the explanation contract holds whatever wins.
Callers pass the labelled rows of fully followed-up intake years only (see `folds`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from riskscreen.contract.cross import INTAKE_DATE
from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.model.bundle import Calibration, ModelBundle
from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.ebm import MainEffectsEBM
from riskscreen.model.families import EBM, LINEAR, TREES, FittedModel
from riskscreen.model.folds import (
    OutOfFold,
    YearFold,
    calibrate,
    cross_calibrated,
    forward_folds,
    with_intercept_on,
)
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.small_trees import fit_small_trees
from riskscreen.model.train import capacity_thresholds

log = logging.getLogger(__name__)

# Simplest first: the order in which a family is preferred when the data cannot tell them apart.
SIMPLICITY: tuple[str, ...] = (LINEAR, EBM, TREES)


@dataclass(frozen=True)
class SmallFit:
    """What the small-cohort design produced, for the pipeline, the report and the gates.

    `candidates` has one row per candidate, in the order configured: `family`, `oof_auc`
    (weighted), `oof_log_loss` (weighted, after Platt scaling on the same predictions),
    `auc_se_vs_best` (bootstrap SE of its AUC difference to the best), `fit_seconds` (its k fold
    fits) and `chosen`. `oof` has one row per predicted person: `row` (position in the frame
    given), `year`, `y`, `weight` and `probability`, the chosen family's out-of-fold probability,
    each year calibrated on the other years; the gates and the backtest are decided on it.
    """

    bundle: ModelBundle
    family: str
    candidates: pd.DataFrame
    reason: str
    oof: pd.DataFrame


def fit_small_design(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    cfg: SmallDesignConfig,
    *,
    capacity: float,
    elevated_share: float,
    num_threads: int = 2,
) -> SmallFit:
    """Choose, calibrate and threshold on out-of-fold predictions; serve the refit on all rows.

    Args:
        frame: labelled rows of fully followed-up intake years: intake columns (`intake_date`
            and the fields of `spec`), `y` (0/1) and `weight` (censoring weight).
        spec: the model's fields.
        cfg: folds, candidates and the rule between them.
        capacity: the weighted share flagged `high`.
        elevated_share: the next share, `elevated`.
        num_threads: for LightGBM (the other families fit on one thread: faster at this size).

    Raises:
        TooFewPeople: a predicted year or the first training window is short (the message says
            which and what to change).
    """
    years = frame[INTAKE_DATE].dt.year.to_numpy(dtype=np.int64)
    folds = forward_folds(
        years, test_years=cfg.test_years, min_per_year=cfg.min_per_year, min_train=cfg.min_train
    )
    x, y, w = _arrays(frame, spec)
    oofs: dict[str, OutOfFold] = {}
    seconds = []
    for name in cfg.candidates:
        start = time.perf_counter()
        oofs[name] = _out_of_fold(_fitter(name, spec, cfg, num_threads), x, y, w, years, folds)
        seconds.append(time.perf_counter() - start)
    table, family, reason = choose_family(oofs, y, w, cfg)
    table.insert(table.columns.get_loc("chosen"), "fit_seconds", seconds)
    log.info("small-cohort candidates:\n%s\n%s", table.to_string(index=False), reason)
    oof = oofs[family]
    calibration = calibrate(oof, y, w)
    probability = cross_calibrated(oof, y, w)
    thresholds = capacity_thresholds(probability, w[oof.rows], capacity, elevated_share)
    model = _fitter(family, spec, cfg, num_threads)(x, y, w, years)
    raw = ModelBundle(model, spec, Calibration(1.0, 0.0), thresholds).log_odds(x, num_threads)
    served = with_intercept_on(calibration, raw, y, w)
    evaluation = pd.DataFrame(
        {
            "row": oof.rows,
            "year": oof.year,
            "y": y[oof.rows],
            "weight": w[oof.rows],
            "probability": probability,
        }
    )
    bundle = ModelBundle(model, spec, served, thresholds)
    return SmallFit(bundle, family, table, reason, evaluation)


def _arrays(frame: pd.DataFrame, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = frame["y"].to_numpy(dtype=np.float64, na_value=np.nan)
    w = frame["weight"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isin(y, (0.0, 1.0)).all() or not (np.isfinite(w) & (w > 0)).all():
        raise ValueError("pass labelled rows only: y 0 or 1 and a positive finite weight")
    return encode_frame(frame, spec), y, w


def choose_family(
    oofs: dict[str, OutOfFold], y: np.ndarray, w: np.ndarray, cfg: SmallDesignConfig
) -> tuple[pd.DataFrame, str, str]:
    """The candidates table (without timings), the chosen family and why, as a sentence.

    The best pooled out-of-fold AUC wins unless a simpler family's AUC is below it by no more
    than `noise_z` standard errors of the paired bootstrap difference; then the simplest such
    family does. Every candidate must have predicted the same rows (the same folds).
    """
    names = list(oofs)
    rows = oofs[names[0]].rows
    yo, wo = y[rows], w[rows]
    aucs = {n: float(weighted_auc(yo, oofs[n].log_odds, wo[np.newaxis])[0]) for n in names}
    best = max(names, key=lambda n: (aucs[n], -SIMPLICITY.index(n)))
    se = paired_auc_se(yo, wo, {n: oofs[n].log_odds for n in names}, best, cfg)
    gap = {n: aucs[best] - aucs[n] for n in names}
    chosen = min((n for n in names if gap[n] <= cfg.noise_z * se[n]), key=SIMPLICITY.index)
    table = pd.DataFrame(
        {
            "family": names,
            "oof_auc": [aucs[n] for n in names],
            "oof_log_loss": [_calibrated_log_loss(oofs[n], y, w) for n in names],
            "auc_se_vs_best": [se[n] for n in names],
            "chosen": [n == chosen for n in names],
        }
    )
    return table, chosen, _reason(chosen, best, aucs, gap, se, cfg.noise_z)


def _reason(
    chosen: str,
    best: str,
    aucs: dict[str, float],
    gap: dict[str, float],
    se: dict[str, float],
    noise_z: float,
) -> str:
    def delta(n: str) -> str:
        return f"ΔAUC {gap[n]:.4f} ± {se[n]:.4f}"

    if len(aucs) == 1:
        return f"{chosen} chosen: the only candidate (out-of-fold AUC {aucs[chosen]:.3f})"
    if chosen != best:
        return f"{chosen} chosen: within noise of {best} ({delta(chosen)})"
    head = f"{best} chosen: best out-of-fold AUC ({aucs[best]:.3f})"
    simpler = [n for n in aucs if SIMPLICITY.index(n) < SIMPLICITY.index(best)]
    if not simpler:
        return f"{head}, and the simplest candidate"
    below = ", ".join(f"{n} ({delta(n)})" for n in simpler)
    return f"{head}; simpler families below it by more than {noise_z:g} SE: {below}"


def weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of `score` under each row of `weights` (r, n) at once, ties counted half.

    Equal to sklearn's `roc_auc_score(y, score, sample_weight=row)` for every row; sorting once
    and summing per tied score makes a bootstrap of hundreds of replicates cost one sort.
    """
    order = np.argsort(score, kind="stable")
    ties = np.flatnonzero(np.r_[True, np.diff(score[order]) != 0])
    positive = np.add.reduceat(weights[:, order] * y[order], ties, axis=1)
    negative = np.add.reduceat(weights[:, order] * (1.0 - y[order]), ties, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    wins = (positive * (below + 0.5 * negative)).sum(axis=1)
    return wins / (positive.sum(axis=1) * negative.sum(axis=1))


def paired_auc_se(
    y: np.ndarray,
    w: np.ndarray,
    scores: dict[str, np.ndarray],
    best: str,
    cfg: SmallDesignConfig,
) -> dict[str, float]:
    """Bootstrap SE of AUC(best) - AUC(n) per candidate: the same resampled people for all."""
    rng = np.random.default_rng(cfg.seed)
    draws = rng.integers(0, len(y), (cfg.bootstrap, len(y)))
    weights = np.stack([np.bincount(d, minlength=len(y)) for d in draws]) * w
    aucs = {n: weighted_auc(y, s, weights) for n, s in scores.items()}
    return {n: float(np.std(aucs[best] - a, ddof=1)) for n, a in aucs.items()}


def _calibrated_log_loss(oof: OutOfFold, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted log loss after Platt scaling on the same out-of-fold predictions (in-sample for
    two parameters: it compares the families' probabilities, it does not estimate their loss)."""
    p = _probability(oof, calibrate(oof, y, w))
    return float(log_loss(y[oof.rows], p, sample_weight=w[oof.rows], labels=[0.0, 1.0]))


def _probability(oof: OutOfFold, calibration: Calibration) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(calibration.slope * oof.log_odds + calibration.intercept)))


# fit(x, y, w, years) -> a fitted model of the family; the years are the trees' early stopping.
FamilyFit = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], FittedModel]


def _out_of_fold(
    fit: FamilyFit,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    years: np.ndarray,
    folds: list[YearFold],
) -> OutOfFold:
    """`folds.out_of_fold`, with each training window's years passed to the fit (its `Fit`
    takes none, and the trees stop early on the newest of them)."""
    predictions = [
        _raw_log_odds(fit(x[f.train], y[f.train], w[f.train], years[f.train]), x[f.test])
        for f in folds
    ]
    return OutOfFold(
        rows=np.concatenate([f.test for f in folds]),
        year=np.concatenate([np.full(len(f.test), f.year) for f in folds]),
        log_odds=np.concatenate(predictions),
    )


def _raw_log_odds(model: FittedModel, x: np.ndarray) -> np.ndarray:
    if isinstance(model, lgb.Booster):
        return np.asarray(model.predict(x, raw_score=True))
    return model.log_odds(x)


def _fitter(name: str, spec: FeatureSpec, cfg: SmallDesignConfig, num_threads: int) -> FamilyFit:
    if name == LINEAR:
        return lambda x, y, w, _: (
            PenalizedLogistic(spec=spec, random_state=cfg.seed).fit(x, y, w).model_
        )
    if name == EBM:
        return lambda x, y, w, _: (
            MainEffectsEBM(spec=spec, random_state=cfg.seed).fit(x, y, w).model_
        )
    return lambda x, y, w, years: fit_small_trees(
        x, y, w, years, spec, cfg.trees, seed=cfg.seed, num_threads=num_threads
    )
