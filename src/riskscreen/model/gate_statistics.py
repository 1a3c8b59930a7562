"""Interval estimates behind the registration gates; `model/gates.py` decides on them.

Every interval treats the people as a random sample of the eligible cohort and their censoring
weights as known sampling weights (inverse-probability weights), so variances come from the
spread of each person's weighted contribution, not from a count of Σw "people": a model-based
(Fisher information) interval that read the weights as frequencies would claim more precision
than the data hold. Smooth statistics (calibration intercept and slope, the AUC gain, group
mean gaps) get a normal interval from their influence functions: the sandwich variance of a
weighted logistic fit, weighted DeLong placements for the AUC, Taylor linearisation of a ratio
of sums. These equal a weighted bootstrap over people to first order (a unit test holds them
close) and cost nothing. The TPR ratio, a minimum over a maximum of group recalls, is not
smooth; it gets a percentile interval from a Poisson bootstrap over people.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm, poisson

_EPS = 1e-9
# Poisson(1) by inverse CDF on float32 uniforms, three times faster than Generator.poisson;
# counts above 9 (probability 1e-7) are lost to float32 resolution, which no interval notices.
_POISSON_CDF = poisson.cdf(np.arange(13), 1.0).astype(np.float32)
IMPLIED_DRAWS = 200  # label draws for the TPR ratio a model's own probabilities imply
_DRAW_CELLS = 4_000_000  # replicates × people per block of bootstrap draws (16 MB as float32)


@dataclass(frozen=True)
class Interval:
    """A point estimate and a two-sided interval around it."""

    estimate: float
    low: float
    high: float


def log_odds(p: np.ndarray) -> np.ndarray:
    """logit(p), clipped so that a probability of exactly 0 or 1 stays finite."""
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(q) - np.log1p(-q))


def normal_interval(estimate: float, se: float, level: float) -> Interval:
    """estimate ± z·se; NaN bounds when the standard error is not finite."""
    half = float(norm.ppf(0.5 + level / 2)) * se
    return Interval(float(estimate), float(estimate - half), float(estimate + half))


def _weighted_logistic(
    design: np.ndarray, offset: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Newton fit of a weighted logistic regression; coefficients and their sandwich covariance.

    The sandwich (bread⁻¹ · Σ w²(y−μ)² x xᵀ · bread⁻¹, times n/(n−k)) is the variance for
    sampling weights, the one survey statistics uses. NaN when the fit cannot be made: scores
    that do not vary, or labels a score separates perfectly.
    """
    nan = np.full(design.shape[1], np.nan)
    beta = np.zeros(design.shape[1])
    try:
        for _ in range(50):
            mu = expit(offset + design @ beta)
            bread = design.T @ (design * (w * mu * (1 - mu))[:, None])
            step = np.linalg.solve(bread, design.T @ (w * (y - mu)))
            beta += step
            if np.max(np.abs(step)) < 1e-10:
                break
        else:
            return nan, np.outer(nan, nan)
    except np.linalg.LinAlgError:
        return nan, np.outer(nan, nan)
    mu = expit(offset + design @ beta)
    bread_inv = np.linalg.inv(design.T @ (design * (w * mu * (1 - mu))[:, None]))
    meat = design.T @ (design * ((w * (y - mu)) ** 2)[:, None])
    n, k = design.shape
    return beta, bread_inv @ meat @ bread_inv * n / (n - k)


def calibration_intercept(y: np.ndarray, p: np.ndarray, w: np.ndarray, level: float) -> Interval:
    """Calibration in the large: the a of logit P(y) = a + logit(p), the slope held at 1.

    a > 0: the model predicts too low on average; a < 0: too high. It is 0 in expectation for
    the true probabilities at every sample size, unlike a binned ECE against labels.
    """
    ones = np.ones((len(y), 1))
    beta, cov = _weighted_logistic(ones, log_odds(p), y, w)
    return normal_interval(beta[0], np.sqrt(cov[0, 0]), level)


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray, level: float) -> Interval:
    """The b of logit P(y) = a + b·logit(p): below 1 the scores are too extreme, above too timid."""
    design = np.column_stack([np.ones(len(y)), log_odds(p)])
    beta, cov = _weighted_logistic(design, np.zeros(len(y)), y, w)
    return normal_interval(beta[1], np.sqrt(cov[1, 1]), level)


def _placements(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each person's DeLong placement: for a positive, the weighted share of negatives it
    outranks; for a negative, the share of positives that outrank it (ties count half)."""
    out = np.empty(len(y))
    for label in (1.0, 0.0):
        others = y != label
        order = np.argsort(s[others], kind="stable")
        sorted_s, cum = s[others][order], np.concatenate([[0.0], np.cumsum(w[others][order])])
        mine = s[y == label]
        below = cum[np.searchsorted(sorted_s, mine, side="left")]
        upto = cum[np.searchsorted(sorted_s, mine, side="right")]
        share = (below + upto) / 2 / cum[-1]  # below + half the ties
        out[y == label] = share if label == 1.0 else 1 - share
    return out


def auc_gain(
    y: np.ndarray, score: np.ndarray, baseline: np.ndarray, w: np.ndarray, level: float
) -> Interval:
    """Weighted ROC AUC of `score` minus that of `baseline` on the same people (paired DeLong)."""
    diff = _placements(y, score, w) - _placements(y, baseline, w)
    pos = y == 1
    gain = float(np.average(diff[pos], weights=w[pos]))
    var = sum(
        float(np.sum((w[m] * (diff[m] - gain)) ** 2)) / float(np.sum(w[m])) ** 2
        for m in (pos, ~pos)
    )
    return normal_interval(gain, np.sqrt(var), level)


@dataclass(frozen=True)
class LargeGroups:
    """An attribute's groups large enough to judge: a code 0..G−1 per person, −1 if left out."""

    names: tuple[str, ...]
    codes: np.ndarray
    small: tuple[str, ...]  # groups left out

    @property
    def n(self) -> int:
        """People in the groups judged."""
        return int((self.codes >= 0).sum())


def large_groups(values: pd.Series, y: np.ndarray, w: np.ndarray, min_size: int) -> LargeGroups:
    """Groups with at least `min_size` people and some positives (a recall needs them)."""
    groups = pd.Categorical(values.astype(str).to_numpy())
    names = [str(c) for c in groups.categories]
    large = np.bincount(groups.codes, minlength=len(names)) >= min_size
    large &= np.bincount(groups.codes, weights=w * y, minlength=len(names)) > 0
    codes = np.where(large[groups.codes], np.cumsum(large)[groups.codes] - 1, -1)
    kept = tuple(n for n, k in zip(names, large, strict=True) if k)
    return LargeGroups(kept, codes, tuple(n for n in names if n not in kept))


def group_mean_gaps(
    p: np.ndarray, reference: np.ndarray, w: np.ndarray, codes: np.ndarray, level: float
) -> list[Interval]:
    """Per group code 0..G−1: weighted mean of p − reference, with a linearised interval.

    `reference` is the label (the group's observed rate) or, on synthetic data, the true
    probability: then the label noise that both the model's and the truth's gaps carry cancels.
    """
    out = []
    for g in range(int(codes.max()) + 1):
        m = codes == g
        e, wg = p[m] - reference[m], w[m]
        gap = float(np.average(e, weights=wg))
        var = float(np.sum((wg * (e - gap)) ** 2)) / float(wg.sum()) ** 2
        var *= m.sum() / max(m.sum() - 1, 1)  # the small-sample factor of a ratio estimator
        out.append(normal_interval(gap, np.sqrt(var), level))
    return out


def top_share_flags(score: np.ndarray, w: np.ndarray, share: float) -> np.ndarray:
    """Flag exactly a weighted `share`, highest scores first, the person at the edge in part.

    A benchmark ranking must flag the same share as the model; a cut on its scores would be off
    by a person, which moves a recall by a percentage point in a group of a few hundred.
    """
    order = np.argsort(-score, kind="stable")
    before = np.concatenate([[0.0], np.cumsum(w[order])[:-1]])
    flags = np.empty(len(score))
    flags[order] = np.clip((share * w.sum() - before) / w[order], 0.0, 1.0)
    return flags


def poisson_replicate_sums(
    columns: np.ndarray, replicates: int, seed: int, weights: np.ndarray
) -> np.ndarray:
    """Σ_i draw_bi · weights_i · columns_ik for Poisson(1) draws: replicates × columns.

    Drawn in blocks so memory stays bounded whatever the number of people; the same seed
    gives the same draws for every statistic, so their intervals are comparable. Only the 8%
    of draws above 2 are compared with the rest of the CDF, which halves its cost.
    """
    rng = np.random.default_rng(seed)
    weighted = (columns * weights[:, None]).astype(np.float32)
    block = max(1, _DRAW_CELLS // len(weights))
    sums = []
    for start in range(0, replicates, block):
        u = rng.random((min(block, replicates - start), len(weights)), dtype=np.float32)
        draws = (u > _POISSON_CDF[0]).astype(np.float32) + (u > _POISSON_CDF[1])
        tail = np.flatnonzero(u > _POISSON_CDF[2])
        draws.ravel()[tail] += 1 + np.sum(u.ravel()[tail, None] > _POISSON_CDF[3:], axis=1)
        sums.append(draws @ weighted)
    return np.concatenate(sums).astype(np.float64)


@dataclass(frozen=True)
class RecallRatios:
    """The TPR-ratio margin with the model's and the benchmark's group recalls beside it."""

    margin: Interval
    model_ratio: float
    benchmark_ratio: float  # NaN without a benchmark
    required_ratio: float
    model_tpr: np.ndarray  # one per group code
    benchmark_tpr: np.ndarray


def recall_ratio_margins(
    y: np.ndarray,
    w: np.ndarray,
    flags: np.ndarray,
    benchmark_flags: np.ndarray | None,
    groupings: Sequence[np.ndarray],
    *,
    min_ratio: float,
    tolerance: float,
    replicates: int,
    seed: int,
    level: float,
    implied_by: np.ndarray | None = None,
) -> list[RecallRatios]:
    """Per grouping: the model's TPR ratio (lowest over highest group recall) minus the ratio
    it must reach, min(min_ratio, tolerance × the benchmark's ratio on the same people), or
    min_ratio without a benchmark.

    The benchmark is another ranking's flags (`benchmark_flags`: the truth's, on synthetic
    data), or what the model's own probabilities imply (`implied_by`, real data): see
    `implied_recalls`. A grouping gives each person a code 0..G−1, or −1 to leave them out (a
    group too small). Against another ranking, model and benchmark recalls come from the same
    bootstrap draws, so the interval is paired: noise that moves both alike does not widen it.
    """
    if not groupings:
        return []
    bench_flags = benchmark_flags if benchmark_flags is not None else flags
    blocks = []
    for codes in groupings:
        positives = (codes[:, None] == np.arange(codes.max() + 1)) * y[:, None]
        blocks.append(
            np.hstack([positives, positives * flags[:, None], positives * bench_flags[:, None]])
        )
    columns = np.hstack(blocks)
    full, replicate = columns.T @ w, poisson_replicate_sums(columns, replicates, seed, w)
    out, start = [], 0
    for codes, block in zip(groupings, blocks, strict=True):
        cols = slice(start, start + block.shape[1])
        start = cols.stop
        model, required, model_tpr, bench_tpr = _recall_parts(full[cols], min_ratio, tolerance)
        boot_model, boot_required, *_ = _recall_parts(replicate[:, cols], min_ratio, tolerance)
        implied_ratio = float("nan")
        if implied_by is not None:
            implied_ratio, bench_tpr = implied_recalls(implied_by, w, flags, codes, seed=seed)
            required = np.asarray(min(min_ratio, tolerance * implied_ratio))
            boot_required = required
        elif benchmark_flags is None:  # the plain criterion, and no benchmark to report
            required, boot_required = np.asarray(min_ratio), np.asarray(min_ratio)
            bench_tpr = np.full_like(model_tpr, np.nan)
        quantiles = [(1 - level) / 2, (1 + level) / 2]
        low, high = np.nanquantile(boot_model - boot_required, quantiles)
        out.append(
            RecallRatios(
                margin=Interval(float(model - required), float(low), float(high)),
                model_ratio=float(model),
                benchmark_ratio=implied_ratio
                if implied_by is not None
                else float(_ratio(bench_tpr)),
                required_ratio=float(required),
                model_tpr=model_tpr,
                benchmark_tpr=bench_tpr,
            )
        )
    return out


def _recall_parts(
    sums: np.ndarray, min_ratio: float, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model ratio, required ratio and both group recalls from positives and hits by group."""
    positives, hits, bench_hits = np.split(sums, 3, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a replicate without positives
        model_tpr, bench_tpr = hits / positives, bench_hits / positives
        required = np.minimum(min_ratio, tolerance * _ratio(bench_tpr))
        return _ratio(model_tpr), required, model_tpr, bench_tpr


def implied_recalls(
    p: np.ndarray,
    w: np.ndarray,
    flags: np.ndarray,
    codes: np.ndarray,
    *,
    seed: int,
    draws: int = IMPLIED_DRAWS,
) -> tuple[float, np.ndarray]:
    """The TPR ratio, and each group's recall, that the model's flags would show if its
    probabilities `p` were the truth: labels drawn from p for the same people, averaged over
    `draws` draws.

    Drawn rather than computed as Σ p·flag / Σ p per group: the model's own ratio is the
    lowest over the highest of noisy group recalls, which sits below the ratio of their means;
    drawn labels carry the same noise and the same selection, so a model that is right meets
    its benchmark in expectation. The benchmark is then a fixed number and the interval is the
    model's own (not paired): wider, so a small group's shortfall is not assessable rather
    than failed.
    """
    rng = np.random.default_rng(seed)
    member = codes[:, None] == np.arange(codes.max() + 1)
    columns = (np.hstack([member, member * flags[:, None]]) * w[:, None]).astype(np.float32)
    block = max(1, _DRAW_CELLS // len(p))
    ratios, recalls = [], []
    for start in range(0, draws, block):
        labels = (rng.random((min(block, draws - start), len(p))) < p).astype(np.float32)
        positives, hits = np.split((labels @ columns).astype(np.float64), 2, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = hits / positives
        ratios.append(_ratio(tpr))
        recalls.append(tpr)
    return float(np.nanmean(np.concatenate(ratios))), np.nanmean(np.vstack(recalls), axis=0)


def _ratio(tpr: np.ndarray) -> np.ndarray:
    return np.asarray(tpr.min(axis=-1) / tpr.max(axis=-1))
