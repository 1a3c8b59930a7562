"""Small cohorts (issue 15): how much of the achievable ranking the small-cohort models reach.

For each training size n and seed: generate n people, label them (`make_labels`, 24 months,
people with intensified support left out), fit the penalized logistic regression and the
main-effects EBM on every labelled person with the censoring weights, and score a fresh
100,000-person cohort of another seed, restricted to its two newest intake years (as a model is
used: on the next intakes). Against the generator's truth (`oracle.p_long_settlement`):

    soft AUC = P(score_i > score_j) over pairs weighted by p_i (1 - p_j)
    share of the achievable ranking = (soft AUC - 0.5) / (oracle soft AUC - 0.5)

The soft AUC is a weighted ROC AUC in which every person appears once as a positive with weight p
and once as a negative with weight 1 - p, so it needs no sampled labels and has no label noise.
Targets (medians over seeds): >= 0.925 at 2,000 people and >= 0.96 at 10,000.

`--design` runs the whole small-cohort design instead (`model.small_design.fit_small_design`:
folds, choice of family, calibration on the out-of-fold predictions, refit) on the labelled
people of the fully followed-up years, and scores the served bundle: its share, the family it
chose, and the ECE of its calibrated probability against the truth (equal-frequency bins, each
bin's mean probability against its mean true probability; targets <= 0.03 at 2,000 and <= 0.02
at 10,000).

    .venv/bin/python -m bench.small_cohorts_probe [--sizes 2000 10000] [--seeds 11 ...] [--design]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.ebm import MainEffectsEBM
from riskscreen.model.evaluate import expected_calibration_error
from riskscreen.model.folds import Fit
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.small_design import fit_small_design
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)
EVAL_N = 100_000
EVAL_SEED = 2024
TARGETS = {2_000: 0.925, 10_000: 0.96}
ECE_TARGETS = {2_000: 0.03, 10_000: 0.02}

MODELS: dict[str, Fit] = {
    "L2 logistic": lambda x, y, w: PenalizedLogistic(spec=SPEC).fit(x, y, w).model_.log_odds,
    "EBM": lambda x, y, w: MainEffectsEBM(spec=SPEC).fit(x, y, w).model_.log_odds,
}


def soft_auc(score: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC against true probabilities: each person a positive (weight p) and a negative."""
    labels = np.r_[np.ones(len(p)), np.zeros(len(p))]
    return float(roc_auc_score(labels, np.r_[score, score], sample_weight=np.r_[p, 1 - p]))


def evaluation_cohort() -> tuple[np.ndarray, np.ndarray]:
    """Encoded rows and true probabilities of the fresh cohort's two newest intake years."""
    cohort = generate_cohort(EVAL_N, EVAL_SEED)
    years = cohort.intake["intake_date"].dt.year
    newest = (years >= sorted(years.unique())[-2]).to_numpy()
    truth = cohort.intake[["case_ref"]].merge(cohort.oracle, on="case_ref", how="left")
    return encode_frame(cohort.intake[newest], SPEC), truth["p_long_settlement"].to_numpy()[newest]


def training_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every labelled person of an n-person cohort, with censoring weights."""
    cohort = generate_cohort(n, seed)
    labels = make_labels(cohort.intake, cohort.outcomes)
    keep = (labels["status"] == "labelled").to_numpy()
    return (
        encode_frame(cohort.intake[keep], SPEC),
        labels["long_settlement"][keep].to_numpy(dtype=float),
        labels["ipcw_weight"][keep].to_numpy(),
    )


def labelled_frame(n: int, seed: int) -> pd.DataFrame:
    """The labelled people of the fully followed-up years, as the pipeline gives them to
    `fit_small_design`: intake columns, `y` and `weight`."""
    cohort = generate_cohort(n, seed)
    labels = make_labels(cohort.intake, cohort.outcomes)
    frame = cohort.intake.assign(
        y=labels["long_settlement"].to_numpy(dtype=float, na_value=np.nan),
        weight=labels["ipcw_weight"].to_numpy(),
    )
    partial = labels.loc[labels["status"] == "recent", "intake_year"].unique()
    keep = (labels["status"] == "labelled") & ~labels["intake_year"].isin(partial)
    return frame[keep.to_numpy()]


def run_design(
    args: argparse.Namespace, x_eval: np.ndarray, p_eval: np.ndarray, oracle: float
) -> None:
    """The served bundle of the small-cohort design at each size and seed, against the truth."""
    print("| n | seed | labelled | chosen | soft AUC | share | ECE vs truth | fit s |")
    print("|---|---|---|---|---|---|---|---|")
    results: dict[int, list[tuple[float, float, float]]] = {}
    for n in args.sizes:
        for seed in args.seeds:
            frame = labelled_frame(n, seed)
            start = time.perf_counter()
            fit = fit_small_design(
                frame, SPEC, SmallDesignConfig(), capacity=0.25, elevated_share=0.25
            )
            seconds = time.perf_counter() - start
            p = 1.0 / (1.0 + np.exp(-fit.bundle.log_odds(x_eval, num_threads=0)))
            auc = soft_auc(p, p_eval)
            share = (auc - 0.5) / (oracle - 0.5)
            ece = expected_calibration_error(p_eval, p, np.ones(len(p)))
            results.setdefault(n, []).append((share, ece, seconds))
            print(
                f"| {n:,} | {seed} | {len(frame):,} | {fit.family} | {auc:.4f} | {share:.3f} | "
                f"{ece:.4f} | {seconds:.1f} |"
            )
            print(f"|  |  |  | {fit.reason} |  |  |  |  |")
    print("\n| n | median share | target | median ECE | target | max fit s |")
    print("|---|---|---|---|---|---|")
    for n, rows in results.items():
        share = statistics.median(r[0] for r in rows)
        ece = statistics.median(r[1] for r in rows)
        print(
            f"| {n:,} | {share:.3f} | {TARGETS.get(n, '-')} | {ece:.4f} | "
            f"{ECE_TARGETS.get(n, '-')} | {max(r[2] for r in rows):.1f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--design", action="store_true", help="the whole small-cohort design")
    args = parser.parse_args(argv)

    x_eval, p_eval = evaluation_cohort()
    oracle = soft_auc(p_eval, p_eval)
    print(
        f"evaluation: {len(p_eval):,} people (two newest years of seed {EVAL_SEED}); "
        f"oracle soft AUC {oracle:.4f}\n"
    )
    if args.design:
        run_design(args, x_eval, p_eval, oracle)
        return 0
    print("| n | seed | labelled | model | soft AUC | share | fit s |")
    print("|---|---|---|---|---|---|---|")
    shares: dict[tuple[int, str], list[float]] = {}
    for n in args.sizes:
        for seed in args.seeds:
            x, y, w = training_data(n, seed)
            for name, fit in MODELS.items():
                start = time.perf_counter()
                predict = fit(x, y, w)
                seconds = time.perf_counter() - start
                auc = soft_auc(predict(x_eval), p_eval)
                share = (auc - 0.5) / (oracle - 0.5)
                shares.setdefault((n, name), []).append(share)
                print(
                    f"| {n:,} | {seed} | {len(y):,} | {name} | {auc:.4f} | {share:.3f} | "
                    f"{seconds:.1f} |"
                )
    print("\n| n | model | median share | target |")
    print("|---|---|---|---|")
    for (n, name), values in shares.items():
        target = TARGETS.get(n)
        print(f"| {n:,} | {name} | {statistics.median(values):.3f} | {target or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
