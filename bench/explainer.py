"""The explainer alone: riskscreen's leaf tables against LightGBM's pred_contrib, same model.

`ModelBundle.contributions` with each explainer (`leaf-tables/1`, the default, and
`lightgbm-pred-contrib`, what riskscreen used before and still uses for models the tables refuse):

- **start-up**: a fresh interpreter loads the bundle and asks for `bundle.explainer` (tables
  built, kernel compiled or loaded, checked against pred_contrib), first with an empty numba cache
  (cold: compiles), then with the cache that run filled (warm: loads).
- **single row**: `contributions(row)` on n different rows, the two explainers alternating row by
  row; median µs (and p90).
- **batch**: `contributions(x, num_threads=T)` on the same rows at each T, the explainers
  alternating within each round; rows/s, median (min–max) over the rounds.

    python -m bench.explainer [--data-dir bench/.data/store] [--rows 100000] [--rounds 5]

The model is the champion of the bench store (`python -m bench` trains it: 300 trees × 7 leaves).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXPLAINERS = ("leaf-tables/1", "lightgbm-pred-contrib")

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from riskscreen.model.bundle import load_bundle
t1 = time.perf_counter()
bundle = load_bundle(__import__("pathlib").Path(sys.argv[1]))
t2 = time.perf_counter()
name = bundle.explainer
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_bundle_s": t2 - t1, "explainer_s": t3 - t2,
                  "explainer": name}))
"""


def start_up(bundle_dir: Path) -> dict[str, Any]:
    """Seconds to the first explanation in a fresh process, numba cache empty and then filled."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for kind in ("cold", "warm"):
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(bundle_dir)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def single_rows(bundle: Any, x: np.ndarray, n: int) -> dict[str, dict[str, float]]:
    """µs per one-row call, the explainers alternating row by row (median and p90)."""
    times: dict[str, list[float]] = {e: [] for e in EXPLAINERS}
    clock = time.perf_counter_ns
    for i in range(n + 200):
        row = x[i % len(x)][None, :]
        for e in EXPLAINERS if i % 2 else EXPLAINERS[::-1]:
            t0 = clock()
            bundle.contributions(row, explainer=e)
            if i >= 200:  # warm-up
                times[e].append((clock() - t0) / 1000)
    return {
        e: {"median_us": statistics.median(t), "p90_us": float(np.percentile(t, 90))}
        for e, t in times.items()
    }


def batch(bundle: Any, x: np.ndarray, threads: list[int], rounds: int) -> dict[str, Any]:
    """rows/s per explainer and thread count, alternating within each round."""
    out: dict[str, Any] = {}
    for t in threads:
        secs: dict[str, list[float]] = {e: [] for e in EXPLAINERS}
        for r in range(rounds):
            for e in EXPLAINERS if r % 2 else EXPLAINERS[::-1]:
                t0 = time.perf_counter()
                bundle.contributions(x, num_threads=t, explainer=e)
                secs[e].append(time.perf_counter() - t0)
        out[str(t)] = {
            e: {
                "rows_per_s": len(x) / statistics.median(s),
                "min": len(x) / max(s),
                "max": len(x) / min(s),
            }
            for e, s in secs.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data" / "store")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=5_000, help="one-row calls per explainer")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from riskscreen.contract.features import encode_frame
    from riskscreen.model.bundle import save_bundle
    from riskscreen.registry import load_verified
    from riskscreen.settings import Settings
    from riskscreen.synth.generate import generate_cohort

    loaded = load_verified(Settings(data_dir=args.data_dir))
    bundle = loaded.bundle
    with tempfile.TemporaryDirectory() as tmp:
        save_bundle(bundle, Path(tmp))
        startup = start_up(Path(tmp))
    x = encode_frame(generate_cohort(args.rows, 4242).intake, bundle.spec)
    new = bundle.contributions(x[:2000], explainer=EXPLAINERS[0])
    old = bundle.contributions(x[:2000], explainer=EXPLAINERS[1])
    result = {
        "model": {
            "version": loaded.version,
            "trees": bundle.booster.num_trees(),
            "leaves": bundle.booster.dump_model()["tree_info"][0]["num_leaves"],
        },
        "explainer": bundle.explainer,
        "max_abs_gap": float(max(np.abs(a - b).max() for a, b in zip(new, old, strict=True))),
        "start_up": startup,
        "single_row": single_rows(bundle, x, args.single),
        "batch": batch(bundle, x, args.threads, args.rounds),
        "rows": args.rows,
        "load_average": os.getloadavg(),
    }
    sys.stdout.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
