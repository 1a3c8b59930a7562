"""Batch explained scoring: riskscreen's library path against the naive path, same model.

- **riskscreen**: `riskscreen.model.scoring.score_frame(frame, bundle, num_threads=T)`, the function
  behind `riskscreen score` (probability, log-odds, band, flag, one exact contribution per
  intake field, additivity checked), explained by the leaf tables (`riskscreen.explain.treeshap`).
- **pred_contrib**: the same call with `explainer="lightgbm-pred-contrib"`: riskscreen as it was
  before the leaf tables (LightGBM's own TreeSHAP), and what it still does for a model the tables
  refuse.
- **naive**: what a user of plain MLflow + shap writes: `mlflow.pyfunc.load_model` of the same
  registered version, `model.predict(frame)` for the probability, the model's own encoding into
  a pandas frame, `shap.TreeExplainer(booster).shap_values(X)`, scaling by the calibration
  slope, and a pandas `groupby` of columns into intake fields; band and flag with pandas.

Timing runs in one worker process per thread count (OMP_NUM_THREADS set before LightGBM is
imported, which is what shap's call into LightGBM obeys), the three paths alternating within
each round, so drift hits them alike. Peak memory runs each (path, size, threads) once in a
fresh process: peak RSS (ru_maxrss) and its rise over the RSS just before the run.

    python -m bench.batch --worker timing|memory ...   (started by `python -m bench`)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

PATHS = ("riskscreen", "naive", "pred_contrib")


def write_inputs(workdir: Path, sizes: list[int], seed: int = 4242) -> dict[int, Path]:
    """One canonical intake Parquet file per size (the first n people of one cohort)."""
    from riskscreen.synth.generate import generate_cohort

    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    intake = None
    for n in sizes:
        path = workdir / f"intake-{n}-{seed}.parquet"
        if not path.exists():
            if intake is None:
                intake = generate_cohort(max(sizes), seed).intake
            intake.head(n).to_parquet(path, index=False)
        out[n] = path
    return out


# --- the paths ------------------------------------------------------------------------------


class Paths:
    """Loaded once per worker: the verified bundle and the MLflow pyfunc model."""

    def __init__(
        self, settings: Any, version: str, threads: int, which: tuple[str, ...] = PATHS
    ) -> None:
        self.threads = threads
        if "riskscreen" in which or "pred_contrib" in which:
            from riskscreen.registry import load_verified

            self.bundle = load_verified(settings, version).bundle  # before MLflow's own load
            self.bundle.explainer  # noqa: B018 - builds the tables and compiles their kernel
        if "naive" in which:
            import mlflow

            mlflow.set_tracking_uri(settings.resolved_tracking_uri)
            mlflow.set_registry_uri(settings.resolved_tracking_uri)
            self.pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")

    def riskscreen(self, frame: Any) -> Any:
        from riskscreen.model.scoring import score_frame

        return score_frame(frame, self.bundle, num_threads=self.threads)

    def pred_contrib(self, frame: Any) -> Any:
        from riskscreen.model.bundle import PRED_CONTRIB
        from riskscreen.model.scoring import score_frame

        return score_frame(frame, self.bundle, num_threads=self.threads, explainer=PRED_CONTRIB)

    def naive(self, frame: Any) -> Any:
        import numpy as np
        import pandas as pd
        import shap

        from riskscreen.contract.features import encode_frame

        model = self.pyfunc.unwrap_python_model()
        bundle = model.bundle
        features = list(bundle.spec.fields)
        x = frame[features]
        # MLflow's schema enforcement refuses pandas categoricals ("string" in the signature).
        x = x.astype({c: object for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)})
        probability = np.asarray(self.pyfunc.predict(x))
        encoded = pd.DataFrame(encode_frame(x, bundle.spec), columns=features, index=frame.index)
        explainer = shap.TreeExplainer(bundle.booster)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shap's notice about LightGBM binary output
            raw = explainer.shap_values(encoded)
        slope, intercept = bundle.calibration.slope, bundle.calibration.intercept
        contrib = pd.DataFrame(raw * slope, columns=features, index=frame.index)
        field_of = {c: c for c in features}  # columns -> intake fields (one-hot would map many)
        grouped = contrib.T.groupby(field_of).sum().T[features]
        t = bundle.thresholds
        out = pd.DataFrame(
            {
                "probability": probability,
                "log_odds": np.log(probability / (1 - probability)),
                "base_log_odds": float(np.ravel(explainer.expected_value)[0]) * slope + intercept,
                "band": pd.Categorical(
                    np.where(
                        probability >= t.flag,
                        "high",
                        np.where(probability >= t.elevated, "elevated", "low"),
                    ),
                    categories=["low", "elevated", "high"],
                    ordered=True,
                ),
                "flagged": probability >= t.flag,
            },
            index=frame.index,
        )
        return pd.concat([out, grouped.add_prefix("contribution_")], axis=1)


def _max_gap(a: Any, b: Any) -> float:
    import numpy as np

    cols = [c for c in a.columns if c.startswith("contribution_") or c == "probability"]
    return float(np.abs(a[cols].to_numpy(float) - b[cols].to_numpy(float)).max())


def _settings(data_dir: str) -> Any:
    from riskscreen.settings import Settings

    return Settings(data_dir=Path(data_dir))


def worker_timing(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from bench.stats import alternate

    which = tuple(args.paths.split(","))
    paths = Paths(_settings(args.data_dir), args.version, args.threads, which)
    frames = {int(n): pd.read_parquet(p) for n, p in json.loads(args.inputs).items()}
    times: dict[str, list[float]] = {f"{p}/{n}": [] for p in which for n in frames}
    gaps: dict[str, float] = {}
    for n, frame in frames.items():  # warm every path once (imports, JIT, caches)
        outs = {p: getattr(paths, p)(frame.head(2000)) for p in which}
        for p in which:
            if p != "riskscreen":
                gaps[f"{p}-riskscreen/{n}"] = _max_gap(outs[p], outs["riskscreen"])
    rise: dict[str, list[float]] = {k: [] for k in times}
    for r in range(args.rounds):
        for n, frame in frames.items():
            for p in alternate(which, r):
                before = _status_kib("VmRSS")
                reset = _reset_peak()
                t0 = time.perf_counter()
                getattr(paths, p)(frame)
                times[f"{p}/{n}"].append(time.perf_counter() - t0)
                if reset:
                    rise[f"{p}/{n}"].append((_status_kib("VmHWM") - before) / 1024)
    return {"threads": args.threads, "seconds": times, "rise_mib": rise, "max_abs_gap": gaps}


def worker_memory(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    paths = Paths(_settings(args.data_dir), args.version, args.threads, (args.path,))
    frame = pd.read_parquet(json.loads(args.inputs)[str(args.size)])
    getattr(paths, args.path)(frame.head(200))  # imports and JIT before the baseline
    before = _status_kib("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    getattr(paths, args.path)(frame)
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "path": args.path,
        "size": args.size,
        "threads": args.threads,
        "seconds": seconds,
        "rss_before_mib": before / 1024,
        "peak_rss_mib": peak / 1024,
        "rise_mib": (peak - before) / 1024,
        "peak_kind": "VmHWM reset before the run" if reset else "ru_maxrss (process life)",
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# --- the parent side ------------------------------------------------------------------------


def _run_worker(argv: list[str], threads: int, timeout: float) -> dict[str, Any]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        # What the riskscreen CLI sets for every command (a1c8782): waiting OpenMP threads sleep
        # instead of spinning, for every path alike. An explicit setting in the caller's
        # environment wins.
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"batch worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(line))


def run(
    data_dir: Path,
    version: str,
    workdir: Path,
    sizes: list[int],
    threads: list[int],
    rounds: int,
    memory_cases: list[tuple[str, int, int]],
    timeout: float = 1800,
    paths: tuple[str, ...] = PATHS,
) -> dict[str, Any]:
    """Timing per thread count (alternating paths), then one memory run per listed case."""
    inputs = {str(n): str(p) for n, p in write_inputs(workdir, sizes).items()}
    common = ["--data-dir", str(data_dir), "--version", version, "--inputs", json.dumps(inputs)]
    timing, memory = {}, []
    for t in threads:
        timing[str(t)] = _run_worker(
            [
                "--worker",
                "timing",
                "--threads",
                str(t),
                "--rounds",
                str(rounds),
                "--paths",
                ",".join(paths),
                *common,
            ],
            t,
            timeout,
        )
    for path, size, t in memory_cases:
        memory.append(
            _run_worker(
                [
                    "--worker",
                    "memory",
                    "--threads",
                    str(t),
                    "--path",
                    path,
                    "--size",
                    str(size),
                    *common,
                ],
                t,
                timeout,
            )
        )
    return {
        "sizes": sizes,
        "threads": threads,
        "rounds": rounds,
        "timing": timing,
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("timing", "memory"), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--inputs", required=True, help="JSON {size: parquet path}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--path", choices=PATHS)
    parser.add_argument("--paths", default=",".join(PATHS), help="timing: paths to alternate")
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    result = worker_timing(args) if args.worker == "timing" else worker_memory(args)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
