"""Small cohorts (issue 15), the quick variant: the models fitted in this process, no files.

The `small_cohorts` section of `python -m bench` (bench/small_cohorts.py) runs the real flow:
`riskscreen synth` files, a timed `riskscreen train` into a fresh registry, the registered
version scored. This probe uses the same yardstick (`bench.small_cohorts`: the fresh 100,000-
person cohort of seed 2024, its two newest intake years; the share of the achievable ranking,
(soft AUC - 0.5) / (oracle soft AUC - 0.5); the ECE against the true probabilities) on cohorts
made in memory (`generate_cohort(n, seed)`), in seconds rather than minutes:

- by default, each candidate family alone (`small_cohorts.CANDIDATES`: the penalized logistic
  regression and the main-effects EBM) fitted on every labelled person with the censoring
  weights (`make_labels`, 24 months, people with intensified support left out);
- `--design`: the whole small-cohort design (`model.small_design.fit_small_design`: folds, choice
  of family, calibration on the out-of-fold predictions, refit) on the labelled people of the
  fully followed-up years, and the served bundle: its share, the family it chose, and the ECE of
  its calibrated probability against the truth.

    .venv/bin/python -m bench.small_cohorts_probe [--sizes 2000 10000] [--seeds 11 ...] [--design]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from bench.small_cohorts import (
    SHARE_TARGETS,
    SPEC,
    EvaluationCohort,
    candidate_shares,
    ece_target,
    ece_vs_truth,
    evaluation_cohort,
    labelled_arrays,
)
from riskscreen.contract.labels import make_labels
from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.small_design import fit_small_design
from riskscreen.synth.generate import generate_cohort


def training_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every labelled person of an n-person cohort, with censoring weights."""
    cohort = generate_cohort(n, seed)
    return labelled_arrays(cohort.intake, cohort.outcomes)


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


def run_design(args: argparse.Namespace, cohort: EvaluationCohort) -> None:
    """The served bundle of the small-cohort design at each size and seed, against the truth."""
    print("| n | seed | labelled | chosen | share | ECE vs truth | fit s |")
    print("|---|---|---|---|---|---|---|")
    results: dict[int, list[tuple[float, float, float]]] = {}
    for n in args.sizes:
        for seed in args.seeds:
            frame = labelled_frame(n, seed)
            start = time.perf_counter()
            fit = fit_small_design(
                frame, SPEC, SmallDesignConfig(), capacity=0.25, elevated_share=0.25
            )
            seconds = time.perf_counter() - start
            log_odds = fit.bundle.log_odds(cohort.x, num_threads=0)
            share = cohort.share(log_odds)
            ece = ece_vs_truth(1.0 / (1.0 + np.exp(-log_odds)), cohort.truth)
            results.setdefault(n, []).append((share, ece, seconds))
            print(
                f"| {n:,} | {seed} | {len(frame):,} | {fit.family} | {share:.3f} | "
                f"{ece:.4f} | {seconds:.1f} |"
            )
            print(f"|  |  |  | {fit.reason} |  |  |  |")
    print("\n| n | median share | target | median ECE | target | max fit s |")
    print("|---|---|---|---|---|---|")
    for n, rows in results.items():
        share = statistics.median(r[0] for r in rows)
        ece = statistics.median(r[1] for r in rows)
        print(
            f"| {n:,} | {share:.3f} | {SHARE_TARGETS.get(n, '-')} | {ece:.4f} | "
            f"{ece_target(n) or '-'} | {max(r[2] for r in rows):.1f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--design", action="store_true", help="the whole small-cohort design")
    args = parser.parse_args(argv)

    cohort = evaluation_cohort()
    print(
        f"evaluation: {len(cohort.truth):,} people (two newest years of seed {cohort.seed}); "
        f"oracle soft AUC {cohort.oracle_soft_auc:.4f}\n"
    )
    if args.design:
        run_design(args, cohort)
        return 0
    print("| n | seed | labelled | model | share | fit s |")
    print("|---|---|---|---|---|---|")
    shares: dict[tuple[int, str], list[float]] = {}
    for n in args.sizes:
        for seed in args.seeds:
            x, y, w = training_data(n, seed)
            for name, got in candidate_shares(x, y, w, cohort).items():
                shares.setdefault((n, name), []).append(got["share"])
                print(
                    f"| {n:,} | {seed} | {len(y):,} | {name} | {got['share']:.3f} | "
                    f"{got['fit_seconds']:.1f} |"
                )
    print("\n| n | model | median share | target |")
    print("|---|---|---|---|")
    for (n, name), values in shares.items():
        target = SHARE_TARGETS.get(n)
        print(f"| {n:,} | {name} | {statistics.median(values):.3f} | {target or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
