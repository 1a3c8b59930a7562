"""Training figures: the default `riskscreen train` run, the generator, and the AUC reference.

- **Default training**: `riskscreen train --config configs/train.yaml` in a fresh process
  against the bench data directory, data generation included; wall time, peak RSS (ru_maxrss
  of that process from wait4) and CPU time, plus the durations of its printed stages
  (`run_training`, which the small-cohorts section times too, with its own configs).
- **Generator**: `bench/synth_throughput.py` (a colleague's script, used as is): generation
  and writing of n people, each in a fresh interpreter.
- **AUC reference**: the test AUC of the served model next to the best model found without the
  speed constraint: larger LightGBM models (31 and 63 leaves, up to 1000 trees, learning rate
  0.05, the same features, monotone constraints and censoring weights), each stopped at its best
  validation AUC, on the very same temporal split. Expensive (minutes), so it is cached by the
  training data's fingerprint and the candidate list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_STAMP = re.compile(r"^\[\s*([0-9.]+)s\] (.*)$")
_VERSION = re.compile(r"version (\d+) registered")

REFERENCE_CANDIDATES = ((31, 1000), (63, 1000))  # (leaves, max trees), early-stopped
REFERENCE_LEARNING_RATE = 0.05


# `riskscreen train` exit codes: 0 champion, 3 registered but needs an approval (only
# not-assessable gates open), 2 registered but a gate failed. Anything else is a crash.
TRAIN_EXIT = {0: "champion", 3: "needs approval", 2: "gate failed"}


def run_default_training(data_dir: Path, workdir: Path, timeout: float = 1800) -> dict[str, Any]:
    """The default `riskscreen train` (configs/train.yaml) into `data_dir`."""
    return run_training(data_dir, workdir, REPO / "configs" / "train.yaml", timeout)


def run_training(
    data_dir: Path, workdir: Path, config: Path, timeout: float = 1800
) -> dict[str, Any]:
    """One `riskscreen train --config CONFIG` in a fresh process, timed from outside (wall,
    CPU and peak RSS of that process); its report goes under `workdir`, never into the repo.

    The data directory is the process's whole state (`RISKSCREEN_DATA_DIR`; URLs that would
    point elsewhere are removed from its environment). Raises unless it registered a version.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cli = Path(sys.executable).with_name("riskscreen")
    elsewhere = ("RISKSCREEN_TRACKING_URI", "RISKSCREEN_ARTIFACT_ROOT", "RISKSCREEN_AUDIT_URL")
    env = {
        **{k: v for k, v in os.environ.items() if k not in elsewhere},
        "RISKSCREEN_DATA_DIR": str(data_dir),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    argv = [str(cli), "train", "--config", str(config)]
    log_path = workdir / "train.log"
    t0 = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = _wait4(proc, timeout)
        finally:
            if proc.poll() is None and proc.returncode is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in TRAIN_EXIT:  # 2 and 3 registered a version: reported, not fatal here
        raise RuntimeError(f"riskscreen train failed ({code}):\n{text[-3000:]}")
    version = _VERSION.findall(text)
    return {
        "wall_seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "exit_code": code,
        "version": version[-1] if version else None,
        "stages": stages(text, wall),
        "log": str(log_path),
    }


def _wait4(proc: subprocess.Popen[Any], timeout: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"riskscreen train took more than {timeout:.0f} s")
        time.sleep(0.05)


def stages(text: str, wall: float) -> list[dict[str, Any]]:
    """Durations of the `[  t s] step` lines `riskscreen train` prints (last one to the end)."""
    marks = []
    for line in text.splitlines():
        m = _STAMP.match(line.strip())
        if m:
            marks.append((float(m.group(1)), m.group(2)))
    out = []
    for i, (t, what) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else t
        out.append({"stage": what[:80], "start_s": t, "seconds": end - t})
    if marks:
        out.insert(
            0,
            {
                "stage": "interpreter start and imports (before the first step)",
                "start_s": 0.0,
                "seconds": max(wall - marks[-1][0], 0.0),
            },
        )
    return out


def generator(n: int, repeats: int, seed: int = 7) -> dict[str, list[dict[str, float]]]:
    """bench/synth_throughput.py's measurement, `repeats` times per job (fresh process each)."""
    from bench import synth_throughput

    out: dict[str, list[dict[str, float]]] = {job: [] for job in synth_throughput.JOBS}
    for _ in range(repeats):
        for job in synth_throughput.JOBS:
            out[job].append(synth_throughput.measure(job, n, seed))
    return out


# --- the AUC reference ---------------------------------------------------------------------


def reference_key(fingerprint: str) -> str:
    material = json.dumps([fingerprint, REFERENCE_CANDIDATES, REFERENCE_LEARNING_RATE])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def auc_reference(
    data_dir: Path, version: str, cached: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Served model vs larger early-stopped models on the same split (runs in this process).

    The served model is always evaluated; the larger models only when `cached` is None.
    """
    import lightgbm as lgb
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from riskscreen.contract.features import FeatureSpec, encode_frame
    from riskscreen.model import pipeline
    from riskscreen.model.config import load_train_config
    from riskscreen.registry import load_verified
    from riskscreen.settings import Settings

    settings = Settings(data_dir=data_dir)
    bundle = load_verified(settings, version).bundle
    cfg = load_train_config(REPO / "configs" / "train.yaml")
    data = pipeline.load_training_data(cfg)
    frame, _, _ = pipeline._labelled(data, cfg)  # the split `riskscreen train` used
    spec = FeatureSpec(cfg.features)
    parts = {}
    for name in ("train", "validation", "test"):
        part = frame[frame["split"] == name]
        parts[name] = (encode_frame(part, spec), part["y"].to_numpy(), part["weight"].to_numpy())
    x_te, y_te, w_te = parts["test"]
    x_va, y_va, w_va = parts["validation"]

    def auc(y: Any, s: Any, w: Any) -> float:
        return float(roc_auc_score(y, s, sample_weight=w))

    served_raw = bundle.booster.predict(x_te, raw_score=True)
    out: dict[str, Any] = {
        "fingerprint": data.fingerprint(),
        "served": {
            "trees": bundle.booster.num_trees(),
            "leaves": _max_leaves(bundle.booster),
            "validation_auc": auc(y_va, bundle.booster.predict(x_va, raw_score=True), w_va),
            "test_auc": auc(y_te, served_raw, w_te),
        },
        "candidates": cached or [],
        "candidates_cached": cached is not None,
    }
    for leaves, max_trees in () if cached is not None else REFERENCE_CANDIDATES:
        t0 = time.perf_counter()
        params = {
            "objective": "binary",
            "num_leaves": leaves,
            "learning_rate": REFERENCE_LEARNING_RATE,
            "min_data_in_leaf": cfg.model.min_data_in_leaf,
            "lambda_l2": cfg.model.lambda_l2,
            "seed": cfg.model.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": cfg.model.num_threads,
            "verbosity": -1,
            "metric": "auc",
        }
        if cfg.model.monotone_constraints:
            params["monotone_constraints"] = spec.monotone_constraints()
        x_tr, y_tr, w_tr = parts["train"]
        cats = spec.categorical_indices()
        train = lgb.Dataset(
            x_tr,
            label=y_tr,
            weight=w_tr,
            categorical_feature=cats,
            feature_name=list(spec.fields),
            free_raw_data=False,
        )
        valid = lgb.Dataset(
            x_va,
            label=y_va,
            weight=w_va,
            reference=train,
            categorical_feature=cats,
            feature_name=list(spec.fields),
        )
        history: dict[str, Any] = {}
        booster = lgb.train(
            params,
            train,
            num_boost_round=max_trees,
            valid_sets=[valid],
            valid_names=["validation"],
            callbacks=[lgb.record_evaluation(history), lgb.early_stopping(100, verbose=False)],
        )
        best = int(booster.best_iteration or max_trees)
        raw = booster.predict(x_te, raw_score=True, num_iteration=best)
        sample = x_te[:2000]
        t1 = time.perf_counter()
        booster.predict(sample, pred_contrib=True, num_threads=1, num_iteration=best)
        us = (time.perf_counter() - t1) / len(sample) * 1e6
        out["candidates"].append(
            {
                "trees": best,
                "leaves": leaves,
                "learning_rate": REFERENCE_LEARNING_RATE,
                "validation_auc": float(np.max(history["validation"]["auc"])),
                "test_auc": auc(y_te, raw, w_te),
                "explain_us_per_row": us,
                "fit_seconds": t1 - t0,
            }
        )
    return out


def _max_leaves(booster: Any) -> int:
    return max(t["num_leaves"] for t in booster.dump_model()["tree_info"])


def training_candidates(data_dir: Path, version: str) -> dict[str, Any]:
    """The capacity table `riskscreen train` logged (validation AUC vs µs/row per candidate)."""
    from riskscreen.registry import client
    from riskscreen.settings import Settings

    settings = Settings(data_dir=data_dir)
    mlc = client(settings)
    mv = mlc.get_model_version(settings.model_name, version)
    run = mlc.get_run(mv.run_id)
    import mlflow

    path = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id,
        artifact_path="capacity_candidates.json",
        tracking_uri=settings.resolved_tracking_uri,
    )
    table = json.loads(Path(path).read_text())
    return {"logged_test_roc_auc": run.data.metrics.get("test_roc_auc"), **table}


def main() -> None:
    parser = argparse.ArgumentParser(description="AUC reference (run by `python -m bench`)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--cached", help="JSON file with the larger models' results")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    cached = json.loads(Path(args.cached).read_text()) if args.cached else None
    result = {
        "training_candidates": training_candidates(data_dir, args.version),
        "reference": auc_reference(data_dir, args.version, cached),
    }
    sys.stdout.write("\n" + json.dumps(result) + "\n")


def _quality_subprocess(data_dir: Path, version: str, timeout: float) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.training",
        "--data-dir",
        str(data_dir),
        "--version",
        version,
    ]
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO
    )
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"quality worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(line))


def quality(data_dir: Path, version: str, cache_dir: Path, timeout: float = 3600) -> dict[str, Any]:
    """Training candidates and the AUC reference; the larger models are cached by the training
    data's fingerprint (the version's `data_sha256` tag), the served model is always evaluated."""
    from riskscreen.registry import client
    from riskscreen.settings import Settings

    settings = Settings(data_dir=data_dir)
    tags = client(settings).get_model_version(settings.model_name, version).tags
    cache = cache_dir / f"auc-reference-{reference_key(tags.get('data_sha256', 'unknown'))}.json"
    if cache.exists():  # cheap: evaluate the served model here, reuse the larger models
        result = {
            "training_candidates": training_candidates(data_dir, version),
            "reference": auc_reference(data_dir, version, json.loads(cache.read_text())),
        }
    else:  # minutes of LightGBM fitting: in a process of its own
        result = _quality_subprocess(data_dir, version, timeout)
    ref = result["reference"]
    if not ref["candidates_cached"]:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(ref["candidates"], indent=1))
    best = max(ref["candidates"], key=lambda c: c["validation_auc"])
    ref["best_unconstrained"] = best
    ref["test_auc_gap"] = best["test_auc"] - ref["served"]["test_auc"]
    return result


if __name__ == "__main__":
    main()
