"""`python -m bench [--quick] [--out bench/results]`: every benchmark of issue 5 in one run.

Sections, in this order (each failure is recorded and the run goes on; exit status 1 if any
section failed, 0 otherwise, whatever the verdicts):

1. training   the default `riskscreen train` into the bench store (full mode always; --quick
              reuses the store and the figure measured when it was built, if there is one)
2. breakdown  where the time of one score goes, in process; audit appends alone vs at once
3. quality    served model's test AUC vs larger models (cached by data fingerprint)
4. batch      score_frame (leaf tables) vs score_frame on pred_contrib vs the naive MLflow + shap
              path, rows/s and memory
5. http       riskscreen vs mlflow models serve vs the no-op ceiling
6. generator  bench/synth_throughput.py
7. small_cohorts  `riskscreen synth` + timed `riskscreen train` on files at several sizes and
              seeds, each registered version scored against the generator's truth (issue 15)

Results: `<out>/latest.json` (everything, raw rounds included) and `<out>/latest.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.stats import paired_ratios, summarise

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("training", "breakdown", "quality", "batch", "http", "generator", "small_cohorts")

MODES: dict[str, dict[str, Any]] = {
    "quick": {
        "rounds": 3,
        "http_seconds": 1,
        "max_requests": 50_000,
        "http_workers": [1, 2],
        "http_concurrency": [1, 8],
        "records": 200,
        "batch_sizes": [2_000, 10_000],
        "batch_threads": [1, 2],
        "breakdown_n": 300,
        "appends_total": 160,
        "append_configs": [[1, 1], [1, 8], [2, 4]],
        "generator_n": 200_000,
        "memory_cases": "none",
        "small_sizes": [2_000, 10_000],
        "small_seeds": [11],
    },
    "full": {
        "rounds": 5,
        "http_seconds": 3,
        "max_requests": 200_000,
        "http_workers": [1, 2],
        "http_concurrency": [1, 8],
        "records": 1000,
        "batch_sizes": [10_000, 100_000],
        "batch_threads": [1, 2],
        "breakdown_n": 2000,
        "appends_total": 800,
        "append_configs": [[1, 1], [1, 8], [2, 4]],
        "generator_n": 1_000_000,
        "memory_cases": "largest",
        "small_sizes": [2_000, 10_000, 50_000, 400_000],
        "small_seeds": [11, 12, 13],
    },
}


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class Run:
    def __init__(
        self,
        mode: str,
        out: Path,
        data_dir: Path,
        sections: tuple[str, ...],
        use_wrk: bool,
        fresh: bool,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.mode = mode
        self.p = {**MODES[mode], **(overrides or {})}
        self.out = out
        self.data_dir = data_dir
        self.store = data_dir / "store"
        self.cache = data_dir / "cache"
        self.work = data_dir / "run"
        self.sections = sections
        self.use_wrk = use_wrk
        self.fresh = fresh
        self.results: dict[str, Any] = {
            "mode": mode,
            "params": self.p,
            "errors": {},
            "findings": [],
        }

    def section(self, name: str, fn: Callable[[], None]) -> None:
        if name not in self.sections:
            return
        log(f"{name} …")
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # a benchmark reports what it could measure
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
        self.results.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
        log(f"{name} done in {time.perf_counter() - t0:.0f} s")

    # --- sections ------------------------------------------------------------------------

    def training(self) -> None:
        from bench.training import run_default_training

        measurement = self.cache / "default-training.json"
        retrain = self.mode == "full" or self.fresh or not self._champion_version()
        out: dict[str, Any] = {}
        if retrain:
            if self.store.exists():
                shutil.rmtree(self.store)
            self.store.mkdir(parents=True)
            out["default"] = run_default_training(self.store, self.work / "train")
            out["default_cached"] = False
            self.cache.mkdir(parents=True, exist_ok=True)
            measurement.write_text(json.dumps(out["default"], indent=1))
        elif measurement.exists():
            out["default"] = json.loads(measurement.read_text())
            out["default_cached"] = True
        self.results["training"] = {**self.results.get("training", {}), **out}

    def _champion_version(self) -> str | None:
        from riskscreen.registry import client
        from riskscreen.settings import Settings

        if not (self.store / "mlflow.db").exists():
            return None
        settings = Settings(data_dir=self.store)
        try:
            mv = client(settings).get_model_version_by_alias(
                settings.model_name, settings.model_alias
            )
        except Exception:
            return None
        return str(mv.version)

    def loaded(self) -> Any:
        from riskscreen.registry import load_verified
        from riskscreen.settings import Settings

        if not hasattr(self, "_loaded"):
            self._loaded = load_verified(Settings(data_dir=self.store))
        return self._loaded

    def breakdown(self) -> None:
        from bench import breakdown
        from bench.records import intake_records, score_body
        from riskscreen.settings import Settings

        body = score_body(intake_records(5)[1])
        self.results["breakdown"] = breakdown.run(
            self.loaded(),
            body,
            Settings(data_dir=self.store),
            self.work / "breakdown",
            self.p["breakdown_n"],
            self.p["appends_total"],
            self.p["append_configs"],
            self.p["rounds"],
        )

    def quality(self) -> None:
        from bench.training import quality

        self.results["quality"] = quality(self.store, self.loaded().version, self.cache)

    def batch(self) -> None:
        from bench import batch

        sizes, threads = self.p["batch_sizes"], self.p["batch_threads"]
        paths = batch.PATHS
        # Fresh-process peak memory for the largest batch at the most threads; every timed run
        # also reports its memory rise inside the timing worker.
        cases = (
            [(p, max(sizes), max(threads)) for p in paths]
            if self.p["memory_cases"] == "largest"
            else []
        )
        raw = batch.run(
            self.store,
            self.loaded().version,
            self.cache / "batch-inputs",
            sizes,
            threads,
            self.p["rounds"],
            cases,
            paths=paths,
        )
        self.results["batch"] = raw
        self.results["batch_summary"] = summarise_batch(raw)

    def http(self) -> None:
        from bench import http_bench

        loaded = self.loaded()
        self.results["http"] = http_bench.run(
            self.store,
            loaded.version,
            tuple(loaded.bundle.spec.fields),
            self.work / "http",
            workers_list=self.p["http_workers"],
            concurrencies=self.p["http_concurrency"],
            rounds=self.p["rounds"],
            seconds=self.p["http_seconds"],
            max_requests=self.p["max_requests"],
            n_records=self.p["records"],
            use_wrk=self.use_wrk,
            targets=http_bench.TARGETS,
            progress=log,
        )

    def generator(self) -> None:
        from bench.training import generator

        n = self.p["generator_n"]
        raw = generator(n, self.p["rounds"])
        summary = {}
        for job, ms in raw.items():
            summary[job] = summarise([m["n"] / m["seconds"] for m in ms]).as_dict()
            summary[f"{job}_peak_gib"] = summarise([m["peak_kib"] / 2**20 for m in ms]).as_dict()
        t = self.results.setdefault("training", {})
        t.update({"generator": raw, "generator_summary": summary, "generator_n": n})

    def small_cohorts(self) -> None:
        from bench import small_cohorts

        result = small_cohorts.run(
            self.p["small_sizes"],
            self.p["small_seeds"],
            self.work / "small_cohorts",
            progress=log,
        )
        self.results["small_cohorts"] = result
        if result["errors"]:
            failed = ", ".join(f"{k} ({v})" for k, v in result["errors"].items())
            raise RuntimeError(f"small cohorts failed at n/seed {failed}")

    # --- the whole run ---------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.results["machine"] = machine.facts()
        self.results["command"] = " ".join(["python -m bench", *sys.argv[1:]])
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        for name in SECTIONS:
            self.section(name, getattr(self, name))
        self.results["verdicts"] = [v.as_dict() for v in report.verdicts(self.results)]
        self.results["load_average_end"] = machine.load_average()
        self.results["wall_seconds"] = time.perf_counter() - t0
        return self.results


def summarise_batch(raw: dict[str, Any]) -> dict[str, Any]:
    """rows/s per path, size and threads; per-round speed ratios of riskscreen over the naive
    path and over its own pred_contrib path (where measured)."""
    rows_per_s, ratio, pc_ratio, gaps, rise = {}, {}, {}, {}, {}
    for t, res in raw["timing"].items():
        for key, secs in res["seconds"].items():
            path, size = key.split("/")
            rows_per_s[f"{path}/{size}/{t}"] = summarise([int(size) / s for s in secs]).as_dict()
            rise[f"{path}/{size}/{t}"] = summarise(res.get("rise_mib", {}).get(key, [])).as_dict()
        for size in raw["sizes"]:
            rs = res["seconds"][f"riskscreen/{size}"]
            nv = res["seconds"][f"naive/{size}"]
            ratio[f"{size}/{t}"] = summarise(paired_ratios(nv, rs)).as_dict()  # speed = 1/time
            pc = res["seconds"].get(f"pred_contrib/{size}")
            if pc:
                pc_ratio[f"{size}/{t}"] = summarise(paired_ratios(pc, rs)).as_dict()
        for k, v in res["max_abs_gap"].items():
            gaps[f"{k} ({t} thr)"] = v
    return {
        "sizes": raw["sizes"],
        "threads": [int(t) for t in raw["timing"]],
        "rows_per_s": rows_per_s,
        "ratio_vs_naive": ratio,
        "ratio_vs_pred_contrib": pc_ratio,
        "max_abs_gap": gaps,
        "rise_mib_in_worker": rise,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller n, shorter rounds (< 3 min)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--data-dir", type=Path, default=REPO / "bench" / ".data")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--python-loadgen",
        action="store_true",
        help="use the Python load generator even if wrk is installed",
    )
    parser.add_argument("--fresh", action="store_true", help="retrain even in --quick mode")
    parser.add_argument(
        "--small-sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="small_cohorts: training sizes (default: 2000 10000 quick, + 50000 400000 full)",
    )
    parser.add_argument(
        "--small-seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="small_cohorts: cohort seeds (default: 11 quick, 11 12 13 full)",
    )
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.small_sizes:
        overrides["small_sizes"] = args.small_sizes
    if args.small_seeds:
        overrides["small_seeds"] = args.small_seeds
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.chdir(REPO)  # uvicorn workers import bench.* and service.* from here
    from bench.loadgen import wrk_available

    use_wrk = wrk_available() and not args.python_loadgen
    if not use_wrk:
        log("wrk not found (apt-get install -y wrk): using the Python load generator")
    run = Run(
        "quick" if args.quick else "full",
        args.out,
        args.data_dir.resolve(),
        tuple(args.only or SECTIONS),
        use_wrk,
        args.fresh,
        overrides,
    )
    results = run.execute()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1, default=str))
    text = report.markdown(results)
    (args.out / "latest.md").write_text(text + "\n")
    sys.stdout.write(text + "\n")
    log(
        f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'} "
        f"in {results['wall_seconds']:.0f} s"
    )
    return 1 if results["errors"] else 0
