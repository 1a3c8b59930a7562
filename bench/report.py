"""The targets of issue 5, a verdict for each, and the Markdown tables of `latest.md`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    target: str
    rule: str  # e.g. "≤ 0.2" or "≥ 10"
    measured: float | None
    detail: str
    met: bool | None  # None: not measured in this run

    @property
    def text(self) -> str:
        if self.met is None or self.measured is None or not math.isfinite(self.measured):
            return "not measured"
        if self.met:
            return "met"
        op, limit = self.rule.split()
        limit_v = float(limit.replace(",", ""))
        gap = self.measured - limit_v if op == "≤" else limit_v - self.measured
        factor = self.measured / limit_v if op == "≤" else limit_v / self.measured
        return f"missed by {fmt(gap)} ({factor:.1f}× off)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.text}


def check(target: str, measured: float | None, op: str, limit: float, detail: str = "") -> Verdict:
    """A verdict for `measured op limit` (op is "≤" or "≥")."""
    if op not in ("≤", "≥"):
        raise ValueError("op must be ≤ or ≥")
    if measured is None or not math.isfinite(measured):
        return Verdict(target, f"{op} {fmt(limit)}", None, detail, None)
    met = measured <= limit if op == "≤" else measured >= limit
    return Verdict(target, f"{op} {fmt(limit)}", measured, detail, met)


def fmt(x: float | None, digits: int = 3) -> str:
    """Readable numbers: thousands separators for large values, 3 significant digits else."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax == 0:
        return "0"
    return f"{x:.{digits}g}"


def mmm(s: dict[str, Any] | None, scale: float = 1.0) -> str:
    """`median (min–max)` of a Summary dict."""
    if not s or not s.get("n"):
        return "–"
    return f"{fmt(s['median'] * scale)} ({fmt(s['min'] * scale)}–{fmt(s['max'] * scale)})"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    return "\n".join(out)


# --- targets ---------------------------------------------------------------------------------


def _med(s: dict[str, Any] | None) -> float | None:
    return None if not s or not s.get("n") else float(s["median"])


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    """Issue 5's targets against this run's medians (ratios are medians of per-round ratios)."""
    out: list[Verdict] = []
    http = results.get("http") or {}
    ratios = http.get("ratios", {})
    for key in sorted(ratios):
        w, c = key.split()
        r = ratios[key]
        if c == "c1":
            out.append(
                check(
                    f"HTTP p50 riskscreen / mlflow serve, {w} c1",
                    _med(r.get("riskscreen/mlflow p50")),
                    "≤",
                    0.2,
                )
            )
        if c == "c8":
            out.append(
                check(
                    f"HTTP requests/s riskscreen / mlflow serve, {w} c8",
                    _med(r.get("riskscreen/mlflow rps")),
                    "≥",
                    10,
                )
            )
            out.append(
                check(
                    f"HTTP requests/s riskscreen / no-op ceiling, {w} c8",
                    _med(r.get("riskscreen/noop rps")),
                    "≥",
                    0.4,
                )
            )
    batch = results.get("batch_summary") or {}
    if batch:
        big = max(batch["sizes"])
        rs2 = batch["rows_per_s"].get(f"riskscreen/{big}/2")
        out.append(
            check(f"batch rows/s, riskscreen, 2 threads, {big:,} rows", _med(rs2), "≥", 20_000)
        )
        for t in batch["threads"]:
            ratio = batch["ratio_vs_naive"].get(f"{big}/{t}")
            out.append(
                check(f"batch riskscreen / naive, {t} thread(s), {big:,} rows", _med(ratio), "≥", 3)
            )
    quality = (results.get("quality") or {}).get("reference")
    if quality and "test_auc_gap" in quality:
        out.append(
            check("test AUC: best unconstrained − served", quality["test_auc_gap"], "≤", 0.005)
        )
    training = (results.get("training") or {}).get("default")
    if training:
        out.append(check("default training wall time (s)", training.get("wall_seconds"), "≤", 60))
    gen = (results.get("training") or {}).get("generator_summary")
    if gen:
        out.append(check("generator people/s (generate)", _med(gen.get("generate")), "≥", 200_000))
    return out


# --- Markdown --------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    parts = [f"# riskscreen benchmark ({results['mode']})", ""]
    parts += _machine(results)
    measured = results.get("verdicts", [])
    parts += [
        "## Targets (issue 5)",
        "",
        table(
            ["target", "rule", "measured (median)", "verdict"],
            [[v["target"], v["rule"], fmt(v["measured"]), v["verdict"]] for v in measured],
        )
        if measured
        else "None measured by the sections of this run.",
        "",
    ]
    if results.get("small_cohorts"):
        sc = results["small_cohorts"]["verdicts"]
        met = sum(1 for v in sc if v["met"])
        parts += [
            f"Issue 15's small-cohort targets: {met} of {len(sc)} met, see "
            "[Small cohorts](#small-cohorts-issue-15).",
            "",
        ]
    if results.get("http"):
        parts += _http(results["http"])
    if results.get("batch_summary"):
        parts += _batch(results["batch_summary"], results.get("batch", {}))
    if results.get("quality"):
        parts += _quality(results["quality"])
    if results.get("small_cohorts"):
        parts += _small_cohorts(results["small_cohorts"])
    if results.get("breakdown"):
        parts += _breakdown(results["breakdown"], results.get("http"))
    if results.get("training"):
        parts += _training(results["training"])
    if results.get("findings"):
        parts += ["## Findings", ""] + [f"- {f}" for f in results["findings"]] + [""]
    if results.get("errors"):
        parts += ["## Sections that failed", ""]
        parts += [f"- **{k}**: {v}" for k, v in results["errors"].items()] + [""]
    return "\n".join(parts)


def _machine(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    p = results["params"]
    return [
        f"{m['time_utc']} · {m['nproc']} CPUs ({m['cpu_model']}) · {m['memory_gib']} GiB · "
        f"Python {m['python']} · load average at start {m['load_average_start']}, at end "
        f"{results.get('load_average_end')} · wall time of this run "
        f"{fmt(results.get('wall_seconds'))} s",
        "",
        f"Packages: {pk}. Load generator: {m.get('wrk') or 'Python (httpx)'}. "
        f"BLAS/OMP environment as found: {env}.",
        "",
        f"Repeats: {p['rounds']} rounds per figure (median, min–max shown). "
        f"HTTP rounds {p['http_seconds']} s each, at most {p['max_requests']:,} requests; "
        f"batch sizes {', '.join(f'{n:,}' for n in p['batch_sizes'])} rows.",
        "",
    ]


def _http(http: dict[str, Any]) -> list[str]:
    rows = []
    for key, per in http["summary"].items():
        for target, s in per.items():
            rows.append(
                [
                    key,
                    target,
                    mmm(s["p50_ms"]),
                    mmm(s["p99_ms"]),
                    mmm(s["rps"]),
                    f"{s['errors']} / {s['requests']:,}",
                    fmt(_med(s["server_cpu_us_per_request"])),
                    fmt(_med(s["client_cpu_us_per_request"])),
                ]
            )
    ratio_rows = [
        [key, name, mmm(r)] for key, rs in http["ratios"].items() for name, r in rs.items()
    ]
    servers = [
        [name, fmt(i["startup_seconds"]), fmt(i["idle_rss_mib"])]
        for name, i in http.get("servers", {}).items()
    ]
    chains = ", ".join(
        f"{k}: {'ok' if v['ok'] else 'BROKEN'} ({v['records']:,} records)"
        for k, v in http.get("audit_chains", {}).items()
    )
    return [
        "## HTTP single score (127.0.0.1, closed loop)",
        "",
        f"Generator: {http['generator']} (one thread; its CPU per request is the last column, "
        "taken from the same 2 cores as the servers). riskscreen: `POST /v1/scores` (validated, "
        "authenticated, scored, exact grouped explanation, audit record committed with "
        "synchronous=FULL before the answer). mlflow: `mlflow models serve` of the same "
        "registered version, prediction only. noop: the same body validated by ScoreRequest, "
        "constant answer.",
        "",
        table(
            [
                "workers, concurrency",
                "server",
                "p50 ms",
                "p99 ms",
                "requests/s",
                "errors / requests",
                "server CPU µs/req",
                "client CPU µs/req",
            ],
            rows,
        ),
        "",
        "Ratios, per round (A and B measured back to back), median (min–max):",
        "",
        table(["workers, concurrency", "ratio", "value"], ratio_rows),
        "",
        f"Audit chains after the run: {chains or 'n/a'}.",
        "",
        "Start-up (all servers started at once, so under contention) and idle memory:",
        "",
        table(["server", "ready after s", "idle RSS MiB (all processes)"], servers),
        "",
    ]


def _batch(b: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    rows = []
    rises = b.get("rise_mib_in_worker", {})
    for key, s in b["rows_per_s"].items():
        path, size, threads = key.split("/")
        ratio = b["ratio_vs_naive"].get(f"{size}/{threads}") if path == "riskscreen" else None
        pc = b.get("ratio_vs_pred_contrib", {}).get(f"{size}/{threads}")
        pc_ratio = pc if path == "riskscreen" else None
        rise = rises.get(key) or {}
        rows.append(
            [
                path,
                f"{int(size):,}",
                threads,
                mmm(s),
                mmm(ratio) if ratio else "",
                mmm(pc_ratio) if pc_ratio else "",
                fmt(rise.get("max")),
            ]
        )
    mem = [
        [
            m["path"],
            f"{m['size']:,}",
            m["threads"],
            fmt(m["peak_rss_mib"]),
            fmt(m["rise_mib"]),
            fmt(m["rss_before_mib"]),
        ]
        for m in raw.get("memory", [])
    ]
    gaps = max(b.get("max_abs_gap", {}).values(), default=float("nan"))
    out = [
        "## Batch explained scoring",
        "",
        "riskscreen: `score_frame(frame, bundle, num_threads=T)` (leaf tables). pred_contrib: "
        "the same with `explainer='lightgbm-pred-contrib'` (riskscreen before the leaf tables). "
        "naive: pyfunc predict + `shap.TreeExplainer(booster).shap_values` + pandas grouping "
        "(LightGBM threads via OMP_NUM_THREADS=T). Memory rise: the largest, over the rounds, "
        "rise of the peak RSS during a run above the RSS before it, in the timing worker "
        "(kernel high-water mark reset before each run; later rounds reuse "
        "memory the first one obtained, so the largest is the honest figure).",
        "",
        table(
            [
                "path",
                "rows",
                "threads",
                "rows/s",
                "speed-up (riskscreen / naive)",
                "speed-up (riskscreen / pred_contrib)",
                "memory rise MiB",
            ],
            rows,
        ),
        "",
        f"Largest difference between any two paths' contributions or probabilities: {gaps:.1e}.",
        "",
    ]
    if mem:
        out += [
            "Each case once in a fresh process:",
            "",
            table(
                [
                    "path",
                    "rows",
                    "threads",
                    "peak RSS MiB (process)",
                    "rise during the run MiB",
                    "RSS before MiB",
                ],
                mem,
            ),
            "",
        ]
    return out


def _quality(q: dict[str, Any]) -> list[str]:
    ref = q["reference"]
    rows = [
        [
            "served",
            ref["served"]["trees"],
            ref["served"]["leaves"],
            "0.1",
            fmt(ref["served"]["validation_auc"], 4),
            fmt(ref["served"]["test_auc"], 4),
            "",
        ]
    ]
    for c in ref["candidates"]:
        rows.append(
            [
                "reference",
                c["trees"],
                c["leaves"],
                c["learning_rate"],
                fmt(c["validation_auc"], 4),
                fmt(c["test_auc"], 4),
                fmt(c["explain_us_per_row"]),
            ]
        )
    tc = q.get("training_candidates", {})
    cand = [
        [
            c["num_trees"],
            c["num_leaves"],
            fmt(c["validation_auc"], 4),
            fmt(c["explain_us_per_row"]),
            "chosen" if i == tc.get("chosen") else "",
        ]
        for i, c in enumerate(tc.get("candidates", []))
    ]
    return [
        "## Model quality vs explanation cost",
        "",
        f"Weighted test AUC (censoring weights), same temporal split. Larger models early-stopped "
        f"on validation AUC ({'cached' if ref.get('candidates_cached') else 'fitted in this run'}"
        f"). Gap best − served: {fmt(ref.get('test_auc_gap'), 3)}. MLflow's logged "
        f"test_roc_auc of the served version: {fmt(tc.get('logged_test_roc_auc'), 4)}.",
        "",
        table(
            [
                "model",
                "trees",
                "leaves",
                "learning rate",
                "validation AUC",
                "test AUC",
                "explain µs/row",
            ],
            rows,
        ),
        "",
        "The capacity choice `riskscreen train` logged (cheapest within the AUC tolerance):",
        "",
        table(["trees", "leaves", "validation AUC", "explain µs/row", ""], cand),
        "",
    ]


def _in_situ_rows(asgi: dict[str, Any]) -> list[list[str]]:
    from bench.breakdown import IN_SITU

    steps = asgi.get("steps_mean_us") or {}
    mean = asgi.get("mean_us") or float("nan")
    rows = []
    for t in IN_SITU:
        us = steps.get(t.label)
        share = "" if us is None or t.depth else f"{us / mean:.0%}"
        rows.append([f"{'  ' * t.depth}{'of which ' if t.depth else ''}{t.label}", fmt(us), share])
    rest = asgi.get("unexplained_mean_us")
    rows += [
        [
            "framework: routing, body validation, dependencies, event-loop "
            "wake-ups, middleware, logging (the rest)",
            fmt(rest),
            "" if rest is None else f"{rest / mean:.0%}",
        ],
        ["**whole request, mean**", fmt(asgi.get("mean_us")), "100%"],
        ["whole request, median", fmt(asgi.get("median_us")), ""],
        ["CPU per request (all threads)", fmt(asgi.get("cpu_us")), ""],
    ]
    return rows


def _append_rows(appends: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, s in (appends.get("summary") or {}).items():
        name = f"{s['processes']} × {s['threads']}"
        if label == "1x1":
            name += " (alone: one record per transaction)"
        rows.append(
            [
                name,
                fmt(_med(s["writers"])),
                mmm(s["records_per_s"]),
                mmm(s.get("vs_1x1")) if s.get("vs_1x1") else "",
                mmm(s["records_per_transaction"]),
                fmt(_med(s["wait_p50_ms"])),
                fmt(_med(s["wait_p90_ms"])),
                fmt(_med(s["wait_max_ms"])),
            ]
        )
    return rows


def _fsync(fs: dict[str, Any]) -> str:
    parts = []
    for when in ("before", "after"):
        p = fs.get(when) or {}
        parts.append(
            f"{fmt(p.get('p50_ms'))} ms p50, {fmt(p.get('p90_ms'))} p90, "
            f"{fmt(p.get('max_ms'))} max {when} the breakdown"
        )
    return "; ".join(parts)


def _breakdown(bd: dict[str, Any], http: dict[str, Any] | None) -> list[str]:
    from bench.breakdown import steps_table

    asgi = bd.get("asgi_request_us", {})
    http_p50 = None
    if http:
        s = http["summary"].get("w1 c1", {}).get("riskscreen")
        http_p50 = _med(s["p50_ms"]) if s else None
    missing = asgi.get("not_found") or []
    out = [
        "## Where the time of one score goes (in process)",
        "",
        "**In situ**: `POST /v1/scores` through the ASGI app (lifespan, real thread pool, no "
        "socket), sequentially; each step timed inside the running app, mean µs per request. "
        "Indented steps run inside the step above them; what the top-level steps leave is the "
        f"framework's share. The audit writer committed {asgi.get('audit_records', '–')} "
        f"records in {asgi.get('audit_transactions', '–')} transactions during the run.",
        "",
        table(["step (in the running app)", "µs", "share"], _in_situ_rows(asgi)),
        "",
    ]
    if missing:
        out += [f"Not found in this version, so not timed: {', '.join(missing)}.", ""]
    out += [
        f"Over HTTP (w1 c1) riskscreen's p50 was {fmt(http_p50)} ms. A bare fsync on this "
        f"disk: {_fsync(bd.get('fsync_probe_ms', {}))}.",
        "",
        f"**Tight loop**: each step alone, median µs over {bd['n']} calls (warm caches: "
        "a lower bound of its cost inside a request). Shares are of the sum of the steps "
        "(the 'score total' row overlaps its parts).",
        "",
        table(["step", "µs", "share", "note"], steps_table(bd["steps"])),
        "",
    ]
    appends = bd.get("concurrent_appends") or {}
    if appends.get("summary"):
        out += [
            "**Audit appends at once**: processes × threads each calling `AuditStore.append` "
            "on one file (one writer thread per process groups what its threads queued), "
            "alternating with one thread appending alone; median (min–max) over "
            f"{len(next(iter(appends['rounds'].values())))} rounds. Records per transaction from "
            "`AuditStore.stats`; wait = one append, submit to commit.",
            "",
            table(
                [
                    "processes × threads",
                    "writers",
                    "records/s",
                    "records/s vs 1 × 1 (per round)",
                    "records per transaction",
                    "wait p50 ms",
                    "p90 ms",
                    "max ms",
                ],
                _append_rows(appends),
            ),
            "",
        ]
    return out


def _training(t: dict[str, Any]) -> list[str]:
    d = t.get("default") or {}
    out = ["## Training", ""]
    if d:
        out += [
            f"Default `riskscreen train` (data generation included): "
            f"{fmt(d.get('wall_seconds'))} s wall, {fmt(d.get('cpu_seconds'))} s CPU, peak RSS "
            f"{fmt(d.get('peak_rss_mib'))} MiB"
            + (
                " (measured when the bench store was built, reused by --quick)"
                if t.get("default_cached")
                else ""
            )
            + ".",
            "",
            table(["stage", "s"], [[s["stage"], fmt(s["seconds"])] for s in d.get("stages", [])]),
            "",
        ]
    g = t.get("generator_summary")
    if g:
        out += [
            f"Generator (bench/synth_throughput.py, n = {t['generator_n']:,}, fresh process each):",
            "",
            table(
                ["job", "people/s", "peak RSS GiB"],
                [
                    [job, mmm(g[job]), mmm(g.get(f"{job}_peak_gib"))]
                    for job in ("generate", "write")
                    if job in g
                ],
            ),
            "",
        ]
    return out


def _gate_names(gates: dict[str, str], outcome: str) -> str:
    return ", ".join(name for name, o in gates.items() if o == outcome) or "–"


def _small_cohorts(sc: dict[str, Any]) -> list[str]:
    ev = sc["evaluation"]
    targets = [
        [v["target"], v["rule"], fmt(v["measured"]), v["verdict"]] for v in sc.get("verdicts", [])
    ]
    names = list(dict.fromkeys(c for r in sc["runs"] for c in r["candidates"]))
    per_size = []
    for key, s in sc["summary"].items():
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s["outcomes"].items()))
        families = ", ".join(f"{k} {v}" for k, v in sorted(s["families"].items()))
        per_size.append(
            [
                f"{int(key):,}",
                ", ".join(str(x) for x in s["seeds"]),
                mmm(s["share"]),
                *[mmm(s["candidates"].get(name)) for name in names],
                mmm(s["ece"]),
                mmm(s["train_wall_seconds"]),
                mmm(s["registry_seconds"]),
                families,
                outcomes,
                fmt(s["bench_seconds"]),
            ]
        )
    per_run = [
        [
            f"{r['n']:,}",
            r["seed"],
            f"{r['labelled']:,}",
            r["design"],
            r["family"],
            f"{r['exit_code']} ({r['outcome']})",
            r.get("champion", ""),
            _gate_names(r["gate_outcomes"], "fail"),
            _gate_names(r["gate_outcomes"], "not_assessable"),
            fmt(r["share"]),
            *[fmt(r["candidates"].get(name, {}).get("share")) for name in names],
            fmt(r["ece"]),
            fmt(r["train_wall_seconds"]),
            fmt(r["registry_seconds"]),
            fmt(r["report_seconds"]),
            fmt(r["synth_seconds"]),
        ]
        for r in sc["runs"]
    ]
    out = [
        "## Small cohorts (issue 15)",
        "",
        f"Each size and seed as a municipality would: `riskscreen synth --n N --seed S` to files, "
        f"then `riskscreen train` on them (`data.source: files`, configs/train.yaml otherwise) in "
        f"a fresh process and a fresh MLflow store, timed from outside (registry and report "
        f"included). The version it registered (champion or not) scores a fresh cohort: "
        f"{ev['people']:,} people, the intake years {', '.join(map(str, ev['intake_years']))} of "
        f"{ev['n']:,} people of seed {ev['seed']}; oracle soft AUC {fmt(ev['oracle_soft_auc'], 4)}"
        f". Share = (soft AUC − 0.5) / (oracle soft AUC − 0.5); ECE against the true "
        f"probabilities, 10 equal-count bins. Candidates: each family alone, fitted on every "
        f"labelled person of the same files. Medians (min–max) over seeds.",
        "",
        table(["target", "rule", "measured (median)", "verdict"], targets),
        "",
        table(
            [
                "people",
                "seeds",
                "share of the achievable (served)",
                *[f"share, {name} alone" for name in names],
                "ECE vs truth",
                "train wall s",
                "of which registry s",
                "family served",
                "outcome (exit code)",
                "bench s (all seeds)",
            ],
            per_size,
        ),
        "",
        "Each run (`riskscreen train` exit code: 0 champion, 3 needs approval: only "
        "not-assessable gates open, 2 a gate failed; a version waiting for approval is then "
        "approved as an auditor would, `riskscreen keys create --role auditor` and "
        "`riskscreen model approve`, and `champion` says whether the alias moved):",
        "",
        table(
            [
                "people",
                "seed",
                "labelled",
                "design",
                "family",
                "exit code",
                "champion",
                "gates failed",
                "gates not assessable",
                "share",
                *[f"share, {name}" for name in names],
                "ECE vs truth",
                "train wall s",
                "registry s",
                "report s",
                "synth s",
            ],
            per_run,
        ),
        "",
    ]
    if sc.get("errors"):
        out += [f"- failed: {k}: {v}" for k, v in sc["errors"].items()] + [""]
    return out
