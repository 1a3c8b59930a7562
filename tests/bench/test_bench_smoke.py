"""Smoke test of the benchmark harness's pure pieces (no servers, no HTTP, a few seconds).

The benchmark itself (`python -m bench`) is not a test: speed targets live in its results.
This only keeps its arithmetic, its tables and one in-process breakdown working (the in-situ
timers included: they name functions of the package and service, which may be renamed).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import report, small_cohorts
from bench.breakdown import (
    COMMIT_WAIT,
    IN_SITU,
    _Ctx,
    append_comparison,
    asgi_request,
    component_steps,
    fsync_probe_ms,
    steps_table,
)
from bench.loadgen import wrk_script
from bench.run import summarise_batch
from bench.stats import alternate, paired_ratios, percentile, ratio_summary, summarise
from bench.training import stages
from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.model.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.model.config import ModelConfig, TreeCandidate
from riskscreen.model.train import fit_trees
from riskscreen.registry import LoadedModel
from riskscreen.synth.generate import generate_cohort


def test_summaries_and_paired_ratios() -> None:
    s = summarise([3.0, 1.0, 2.0, math.nan])
    assert (s.median, s.min, s.max, s.n) == (2.0, 1.0, 3.0, 3)
    assert summarise([]).n == 0
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([0, 10], 99) == pytest.approx(9.9)
    assert paired_ratios([2, 4, 6], [1, 0, 3]) == [2.0, 2.0]
    r = ratio_summary([1.0, 3.0], [2.0, 2.0])
    assert (r.median, r.min, r.max) == (1.0, 0.5, 1.5)
    assert alternate(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert alternate(["a", "b", "c"], 3) == ["a", "b", "c"]
    assert s.scaled(-1).min == -3.0


def test_verdicts_say_by_how_much() -> None:
    assert report.check("x", 0.1, "≤", 0.2).text == "met"
    missed = report.check("x", 0.5, "≤", 0.2)
    assert missed.met is False and missed.text.startswith("missed by 0.3 (2.5× off)")
    assert report.check("y", 5.0, "≥", 10).text.startswith("missed by 5 (2.0× off)")
    assert report.check("z", None, "≥", 1).text == "not measured"
    assert report.fmt(12345.6) == "12,346" and report.fmt(0.0123) == "0.0123"
    md = report.table(["a", "b"], [[1, 2]])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def _summary(v: float) -> dict[str, float]:
    return {"median": v, "min": v, "max": v, "n": 3}


def test_verdicts_from_results_and_markdown() -> None:
    results = {
        "mode": "quick",
        "params": {"rounds": 3, "http_seconds": 1, "max_requests": 10, "batch_sizes": [10]},
        "machine": {
            "time_utc": "t",
            "nproc": 2,
            "cpu_model": "cpu",
            "memory_gib": 1,
            "python": "3.11",
            "load_average_start": [0.0],
            "packages": {"numpy": "2"},
            "env": {},
            "wrk": None,
        },
        "http": {
            "generator": "wrk",
            "summary": {
                "w1 c1": {
                    "riskscreen": {
                        "p50_ms": _summary(1),
                        "p99_ms": _summary(2),
                        "rps": _summary(900),
                        "errors": 0,
                        "requests": 2700,
                        "hit_request_bound": False,
                        "client_cpu_us_per_request": _summary(20),
                        "server_cpu_us_per_request": _summary(800),
                    }
                }
            },
            "ratios": {
                "w1 c1": {"riskscreen/mlflow p50": _summary(0.1)},
                "w1 c8": {
                    "riskscreen/mlflow rps": _summary(12),
                    "riskscreen/noop rps": _summary(0.2),
                },
            },
        },
        "training": {"default": {"wall_seconds": 75.0, "stages": []}},
    }
    v = {x.target: x for x in report.verdicts(results)}
    assert v["HTTP p50 riskscreen / mlflow serve, w1 c1"].met
    assert v["HTTP requests/s riskscreen / mlflow serve, w1 c8"].met
    assert v["HTTP requests/s riskscreen / no-op ceiling, w1 c8"].text.startswith("missed by 0.2")
    assert v["default training wall time (s)"].text.startswith("missed by 15")
    results["verdicts"] = [x.as_dict() for x in v.values()]
    text = report.markdown(results)
    assert "## Targets (issue 5)" in text and "missed by 15" in text


def test_batch_summary_pairs_rounds() -> None:
    raw = {
        "sizes": [10],
        "timing": {
            "2": {
                "seconds": {
                    "riskscreen/10": [1.0, 2.0],
                    "naive/10": [3.0, 4.0],
                    "pred_contrib/10": [2.0, 8.0],
                },
                "max_abs_gap": {"naive-riskscreen/10": 1e-16},
            }
        },
    }
    s = summarise_batch(raw)
    assert s["rows_per_s"]["riskscreen/10/2"]["median"] == pytest.approx(7.5)
    assert s["ratio_vs_naive"]["10/2"]["median"] == pytest.approx(2.5)  # (3 + 2) / 2
    assert s["ratio_vs_pred_contrib"]["10/2"]["min"] == 2.0  # (2 / 1, 8 / 2)


def test_wrk_script_quotes_bodies_and_bounds_requests() -> None:
    script = wrk_script([b'{"a": "]]"}', b'{"b": "]=]"}'], {"Authorization": "Bearer t"}, 201, 7)
    assert '[==[{"b": "]=]"}]==]' in script and "local bound = 7" in script
    assert 'wrk.headers["Authorization"] = "Bearer t"' in script


def test_training_stages_parse_the_printed_steps() -> None:
    text = "[  0.0s] loading data\nnoise\n[  1.5s] fitting\n[ 10.0s] done\n"
    got = stages(text, wall=12.0)
    assert [s["seconds"] for s in got] == [2.0, 1.5, 8.5, 0.0]


@pytest.fixture(scope="module")
def tiny_model() -> LoadedModel:
    """A small real LightGBM model with categorical and numeric splits (under a second)."""
    spec = FeatureSpec(DEFAULT_FEATURES)
    intake = generate_cohort(4000, 3).intake
    x = encode_frame(intake, spec)
    rng = np.random.default_rng(0)
    logit = 0.05 * (x[:, 0] - 40) - 0.1 * x[:, 2] + 0.3 * (x[:, 1] == 1)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(float)
    cfg = ModelConfig(num_threads=1)
    booster = fit_trees(x, y, np.ones(len(x)), spec, cfg, TreeCandidate(num_trees=30, num_leaves=7))
    bundle = ModelBundle(
        booster, spec, Calibration(0.9, -0.1), Thresholds(0.6, 0.45), {"horizon_months": 24}
    )
    return LoadedModel(bundle, "riskscreen", "1", "0" * 64, {})


def test_one_in_process_breakdown(tiny_model: LoadedModel, tmp_path: Path) -> None:
    from bench.records import intake_records, score_body

    ctx = _Ctx(tiny_model, tmp_path, score_body(intake_records(3)[1]))
    try:
        steps = component_steps(ctx, n=50)
    finally:
        ctx.close()
    names = [s.name for s in steps]
    assert any(n.startswith("explain") for n in names) and any("audit commit" in n for n in names)
    assert any(n.startswith("serialise") for n in names)
    assert all(s.median_us > 0 for s in steps)
    rows = steps_table([dataclasses.asdict(s) for s in steps])
    assert len(rows) == len(steps) and rows[0][0].startswith("validate")
    assert fsync_probe_ms(tmp_path, n=3)["p50_ms"] >= 0


def test_in_situ_timers_find_every_step(tiny_model: LoadedModel, tmp_path: Path) -> None:
    """Every function IN_SITU names still exists and runs once per request (a renamed one
    would silently drop out of the table), and the report renders the section."""
    from bench.records import intake_records, score_body
    from riskscreen.settings import Settings

    body = score_body(intake_records(3)[1])
    got = asgi_request(tiny_model, body, Settings(data_dir=tmp_path), tmp_path, n=20)
    assert got["not_found"] == []
    assert set(got["steps_mean_us"]) == {t.label for t in IN_SITU}
    assert got["audit_records"] >= 20 and got["audit_transactions"] >= 1
    top = sum(got["steps_mean_us"][t.label] for t in IN_SITU if t.depth == 0)
    assert 0 < top < got["mean_us"]
    appends = append_comparison(tmp_path, [(1, 1), (1, 2)], total=10, rounds=1)
    alone, grouped = appends["summary"]["1x1"], appends["summary"]["1x2"]
    assert alone["records_per_transaction"]["median"] == 1.0
    assert grouped["records"]["median"] == 10 and grouped["vs_1x1"]["n"] == 1
    bd = {
        "n": 20,
        "steps": [{"name": "validate", "median_us": 1.0, "note": ""}],
        "asgi_request_us": got,
        "concurrent_appends": appends,
        "fsync_probe_ms": {"before": fsync_probe_ms(tmp_path, n=3)},
    }
    text = "\n".join(report._breakdown(bd, None))
    assert COMMIT_WAIT in text and "1 × 2" in text and "records per transaction" in text


# --- small cohorts (issue 15) ------------------------------------------------------------------


def _eval_cohort(truth: np.ndarray) -> small_cohorts.EvaluationCohort:
    return small_cohorts.EvaluationCohort(pd.DataFrame(index=range(len(truth))), truth, 0, 0)


def test_share_of_the_achievable_and_ece_against_the_truth() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 4000)
    cohort = _eval_cohort(truth)
    assert cohort.oracle_soft_auc == pytest.approx(small_cohorts.soft_auc(truth, truth))
    assert 0.6 < cohort.oracle_soft_auc < 0.9
    # The truth itself reaches all of it, any monotone transform too; its reverse is -1;
    # a constant score none.
    assert cohort.share(truth) == pytest.approx(1.0)
    assert cohort.share(np.log(truth / (1 - truth))) == pytest.approx(1.0)
    assert cohort.share(-truth) == pytest.approx(-1.0)
    assert cohort.share(np.zeros_like(truth)) == pytest.approx(0.0)
    noisy = cohort.share(truth + rng.normal(0, 0.2, len(truth)))
    assert 0.3 < noisy < 0.95
    # ECE against the truth: 0 for the truth, the shift for a uniformly shifted copy.
    assert small_cohorts.ece_vs_truth(truth, truth) == pytest.approx(0.0, abs=1e-12)
    assert small_cohorts.ece_vs_truth(truth + 0.03, truth) == pytest.approx(0.03)


def test_gate_outcomes_tag_in_either_form() -> None:
    records = [
        {"name": "calibration_slope", "outcome": "pass", "estimate": 1.0},
        {"name": "tpr_ratio_sex", "outcome": "not_assessable", "estimate": None},
    ]
    want = {"calibration_slope": "pass", "tpr_ratio_sex": "not_assessable"}
    assert small_cohorts.gate_outcomes(json.dumps(records)) == want
    assert small_cohorts.gate_outcomes(json.dumps(want)) == want
    assert small_cohorts.gate_outcomes(json.dumps({"x": {"outcome": "fail"}})) == {"x": "fail"}
    assert small_cohorts.gate_outcomes(None) == {}


def _run_row(n: int, seed: int, share: float, ece: float, wall: float, code: int) -> dict:
    return {
        "n": n,
        "seed": seed,
        "labelled": n // 2,
        "design": "small_cohort",
        "family": "linear",
        "exit_code": code,
        "outcome": small_cohorts.TRAIN_EXIT[code],
        "champion": {0: "direct", 2: "no", 3: "after approval"}[code],
        "gate_outcomes": {"auc": "pass", "calibration_slope": "not_assessable", "tpr": "fail"},
        "share": share,
        "ece": ece,
        "train_wall_seconds": wall,
        "registry_seconds": 3.0,
        "report_seconds": 2.0,
        "synth_seconds": 1.0,
        "seconds": wall + 5,
        "candidates": {"L2 logistic": {"share": share + 0.01, "fit_seconds": 1.0}},
    }


def test_small_cohort_medians_verdicts_and_tables() -> None:
    runs = [
        _run_row(2_000, 11, 0.93, 0.04, 25.0, 3),
        _run_row(2_000, 12, 0.90, 0.02, 15.0, 0),
        _run_row(2_000, 13, 0.94, 0.01, 18.0, 2),
        _run_row(50_000, 11, 0.97, 0.01, 60.0, 0),
    ]
    summary = small_cohorts.summarise_runs(runs)
    s2k = summary["2000"]
    assert (s2k["share"]["median"], s2k["share"]["min"], s2k["share"]["max"]) == (0.93, 0.9, 0.94)
    assert s2k["train_wall_seconds"]["median"] == 18.0 and s2k["seeds"] == [11, 12, 13]
    assert s2k["outcomes"] == {"needs approval": 1, "champion": 1, "gate failed": 1}
    assert s2k["candidates"]["L2 logistic"]["median"] == pytest.approx(0.94)
    got = {v.target: v for v in small_cohorts.verdicts(summary)}
    assert got["2,000 people: share of the achievable ranking"].met  # 0.93 >= 0.925
    assert got["2,000 people: ECE against the truth"].met  # 0.02 <= 0.03
    assert got["2,000 people: `riskscreen train` wall time (s)"].met  # 18 <= 20
    assert got["50,000 people: ECE against the truth"].rule == "≤ 0.02"
    assert got["50,000 people: share of the achievable ranking"].text.startswith("missed by 0.005")
    assert not any("50,000" in t and "wall" in t for t in got)  # no wall target at 50,000
    assert small_cohorts.ece_target(10_000) == 0.02 and small_cohorts.ece_target(5_000) is None
    sc = {
        "evaluation": {
            "n": 100,
            "seed": 1,
            "people": 40,
            "intake_years": [2024, 2025],
            "oracle_soft_auc": 0.8,
        },
        "summary": summary,
        "runs": runs,
        "errors": {},
        "verdicts": [v.as_dict() for v in got.values()],
    }
    text = "\n".join(report._small_cohorts(sc))
    assert "## Small cohorts (issue 15)" in text
    assert "| 2,000 | 11, 12, 13 | 0.93 (0.9–0.94) | 0.94 (0.91–0.95) |" in text
    assert "| 2,000 | 13 | 1,000 | small_cohort | linear | 2 (gate failed) | no | tpr | " in text
    approved = "| 2,000 | 11 | 1,000 | small_cohort | linear | 3 (needs approval) | after approval"
    assert approved in text
    assert "calibration_slope" in text and "missed by 0.005" in text


def test_small_cohorts_section_runs_the_real_flow(tmp_path: Path) -> None:
    """`riskscreen synth` + timed `riskscreen train` on files at 2,000 people, one seed, the
    registered version scored on a small evaluation cohort (tens of seconds)."""
    got = small_cohorts.run([2_000], [11], tmp_path, eval_n=5_000)
    assert got["errors"] == {}
    (row,) = got["runs"]
    assert (
        row["exit_code"] in (0, 2, 3)
        and row["outcome"] == small_cohorts.TRAIN_EXIT[row["exit_code"]]
    )
    verdict = {0: "yes", 3: "needs_approval", 2: "no"}[row["exit_code"]]
    assert row["verdict"] == verdict and row["version"] == "1"
    # a version waiting for approval is approved as an auditor would, and becomes champion
    assert row["champion"] == {0: "direct", 3: "after approval", 2: "no"}[row["exit_code"]]
    assert row["family"] in ("linear", "ebm", "trees") and row["design"] == "small_cohort"
    assert row["gate_outcomes"] and set(row["gate_outcomes"].values()) <= {
        "pass",
        "fail",
        "not_assessable",
    }
    assert 0.5 < row["share"] <= 1.0 and 0 <= row["ece"] < 0.2
    assert 1_000 < row["labelled"] < 2_000
    assert set(row["candidates"]) == {"L2 logistic", "EBM"}
    assert all(0.5 < c["share"] <= 1.0 for c in row["candidates"].values())
    assert row["train_wall_seconds"] > row["registry_seconds"] > 0
    assert (tmp_path / "n2000-seed11" / "cohort" / "oracle.parquet").exists()
    assert 500 < got["evaluation"]["people"] < 2_500  # two intake years of ten
    assert len(got["evaluation"]["intake_years"]) == 2
    assert {v["target"] for v in got["verdicts"]} == {
        "2,000 people: share of the achievable ranking",
        "2,000 people: ECE against the truth",
        "2,000 people: `riskscreen train` wall time (s)",
    }
