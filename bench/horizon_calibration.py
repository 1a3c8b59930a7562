"""Calibration against the truth at another horizon: the default training at H months.

`python -m bench.horizon_calibration [--months 12] [--n 400000]` trains the default
configuration at the given horizon on the default synthetic cohort and prints the ECE of the
served probabilities against the generator's true probabilities at that horizon (10 equal-count
bins of the model's probability, share-weighted |mean predicted − mean true|) on the test years.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from riskscreen.model.config import load_train_config
from riskscreen.model.pipeline import run_training
from riskscreen.model.training_data import load_training_data

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train.yaml"


def ece_against_truth(p: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    order = np.argsort(p, kind="stable")
    return float(
        sum(
            len(b) / len(p) * abs(p[b].mean() - truth[b].mean())
            for b in np.array_split(order, bins)
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--n", type=int, default=400_000)
    args = parser.parse_args()
    cfg = load_train_config(CONFIG)
    cfg = cfg.model_copy(
        update={
            "horizon_months": args.months,
            "data": cfg.data.model_copy(
                update={"synthetic": cfg.data.synthetic.model_copy(update={"n": args.n})}
            ),
        }
    )
    result = run_training(load_training_data(cfg), cfg)
    test = result.test_frame
    ece = ece_against_truth(test["probability"].to_numpy(), test["oracle"].to_numpy())
    print(
        f"horizon {result.bundle.horizon_months} months, {args.n:,} people, "
        f"{len(test):,} test people: ECE against the truth {ece:.4f}; verdict {result.verdict}"
    )


if __name__ == "__main__":
    main()
