"""HTTP single score: riskscreen vs `mlflow models serve` vs the no-op ceiling.

All servers run at once on 127.0.0.1, each with 1 and with 2 workers, and are measured in
rounds: in every round each (workers, concurrency) setting visits every server once, in an
order rotated per round, so slow drift of the machine reaches all of them alike; ratios are
taken within a round. Every round is closed-loop for a fixed duration with a bounded request
count. Servers are stopped (their own process groups) in `finally`.

- riskscreen: `riskscreen serve --workers W` on the registered champion, `POST /v1/scores`
  (validated, explained, audited before the answer), with its own audit database and key.
- mlflow: `mlflow models serve -m models:/riskscreen/<v> --env-manager local --workers W`,
  `POST /invocations` with the same people's model fields (prediction only).
- noop: `bench/noop_app.py` (validates the same body with ScoreRequest, returns a constant).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.records import intake_records, mlflow_body, score_body
from bench.servers import Server, free_port
from bench.stats import alternate, ratio_summary, summarise

TARGETS = ("riskscreen", "mlflow", "noop")
REPO = Path(__file__).resolve().parents[1]
SCORE_PATH = {"riskscreen": "/v1/scores", "noop": "/v1/scores", "mlflow": "/invocations"}
READY_PATH = {"riskscreen": "/readyz", "noop": "/healthz", "mlflow": "/ping"}
EXPECTED = {"riskscreen": 201, "noop": 201, "mlflow": 200}
# Lifted for the benchmark: one key sends thousands of requests a second (service/limits.py).
UNLIMITED_ENV = {
    "RISKSCREEN_RATE_LIMIT_PER_MINUTE": str(10**9),
    "RISKSCREEN_RATE_LIMIT_BURST": str(10**9),
}


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def base_env(store: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "RISKSCREEN_DATA_DIR": str(store),
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYTHONWARNINGS": "ignore",
    }


def _settings_fields() -> set[str]:
    from riskscreen.settings import Settings

    return set(Settings.model_fields)


def service_env(store: Path, audit_db: Path, workers: int) -> dict[str, str]:
    """riskscreen's environment: its store, its own audit file, the rate limit lifted."""
    env = {**base_env(store), "RISKSCREEN_AUDIT_URL": f"sqlite:///{audit_db}"}
    fields = _settings_fields()
    env.update(
        {k: v for k, v in UNLIMITED_ENV.items() if k.removeprefix("RISKSCREEN_").lower() in fields}
    )
    if "workers" in fields:
        env["RISKSCREEN_WORKERS"] = str(workers)
    return env


def create_key(env: dict[str, str]) -> str:
    """`riskscreen keys create --role case_manager --name bench`; the token is its last line."""
    done = subprocess.run(
        [_bin("riskscreen"), "keys", "create", "--role", "case_manager", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1].strip()


def build_servers(
    store: Path,
    version: str,
    workdir: Path,
    workers_list: list[int],
    targets: tuple[str, ...] = TARGETS,
) -> tuple[dict[tuple[str, int], Server], dict[str, str]]:
    servers: dict[tuple[str, int], Server] = {}
    tokens: dict[str, str] = {}
    logs = workdir / "logs"
    for w in workers_list:
        for target in targets:
            port = free_port()
            if target == "riskscreen":
                env = service_env(store, workdir / f"audit-{target}-w{w}.db", w)
                tokens[f"{target}-{w}"] = create_key(env)
                argv = [
                    _bin("riskscreen"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(w),
                ]
            elif target == "noop":
                env = base_env(store)
                argv = [
                    sys.executable,
                    "-m",
                    "bench.serve",
                    "noop",
                    "--port",
                    str(port),
                    "--workers",
                    str(w),
                ]
            else:
                env = base_env(store)
                argv = [
                    _bin("mlflow"),
                    "models",
                    "serve",
                    "-m",
                    f"models:/riskscreen/{version}",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "--workers",
                    str(w),
                ]
            servers[(target, w)] = Server(
                f"{target}-w{w}",
                argv,
                env,
                port,
                READY_PATH[target],
                logs / f"{target}-w{w}.log",
                cwd=REPO,
            )
    return servers, tokens


def start_all(servers: dict[tuple[str, int], Server], timeout: float) -> None:
    """riskscreen and noop first (they verify the registered artifacts), then mlflow.

    `mlflow models serve` writes `registered_model_meta` into the stored model folder; the
    registry's artifact hash leaves that file out (`registry.MLFLOW_WRITTEN`), so riskscreen
    still loads the version afterwards."""
    first = [s for (t, _), s in servers.items() if t != "mlflow"]
    second = [s for (t, _), s in servers.items() if t == "mlflow"]
    for group in (first, second):
        for s in group:
            s.start()
        for s in group:
            s.wait_ready(timeout)
    for s in servers.values():
        s.settle()


def _headers(target: str, token: str | None) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def run(
    store: Path,
    version: str,
    features: tuple[str, ...],
    workdir: Path,
    *,
    workers_list: list[int],
    concurrencies: list[int],
    rounds: int,
    seconds: int,
    max_requests: int,
    n_records: int,
    use_wrk: bool,
    targets: tuple[str, ...] = TARGETS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    records = intake_records(n_records)
    bodies = {
        "riskscreen": [score_body(r) for r in records],
        "mlflow": [mlflow_body(r, features) for r in records],
    }
    bodies["noop"] = bodies["riskscreen"]
    workdir.mkdir(parents=True, exist_ok=True)
    servers, tokens = build_servers(store, version, workdir, workers_list, targets)
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    try:
        progress(f"starting {len(servers)} servers")
        start_all(servers, timeout=180)
        info = {
            s.name: {"startup_seconds": s.startup_seconds, "idle_rss_mib": s.rss_bytes() / 2**20}
            for s in servers.values()
        }

        def one(target: str, w: int, c: int, secs: int, bound: int) -> loadgen.RoundResult:
            server = servers[(target, w)]
            url = f"http://127.0.0.1:{server.port}{SCORE_PATH[target]}"
            return loadgen.run_round(
                url,
                bodies[target],
                _headers(target, tokens.get(f"{target}-{w}")),
                use_wrk=use_wrk,
                concurrency=c,
                seconds=secs,
                max_requests=bound,
                expected_status=EXPECTED[target],
            )

        for target, w in servers:  # warm-up: caches, pools, JIT; not recorded
            one(target, w, max(concurrencies), 1, 2000)
        for s in servers.values():
            s.settle()
        for r in range(rounds):
            progress(f"round {r + 1}/{rounds}")
            for w in workers_list:
                for c in concurrencies:
                    for target in alternate(targets, r + w + c):
                        server = servers[(target, w)]
                        cpu0 = server.cpu_seconds()
                        res = one(target, w, c, seconds, max_requests)
                        cpu = server.cpu_seconds() - cpu0
                        rows.append(
                            {
                                "round": r,
                                "workers": w,
                                "concurrency": c,
                                "target": target,
                                **res.as_dict(),
                                "server_cpu_us_per_request": cpu / res.requests * 1e6
                                if res.requests
                                else None,
                            }
                        )
        audit = verify_audit(workdir)
    finally:
        for s in servers.values():
            s.stop()
    return {
        "servers": info,
        "rows": rows,
        "audit_chains": audit,
        "generator": "wrk" if use_wrk else "python-httpx",
        **summarise_rows(rows, workers_list, concurrencies),
    }


def verify_audit(workdir: Path) -> dict[str, Any]:
    """Every record the servers committed still forms one verifying chain per database."""
    from riskscreen.audit.chain import AuditStore

    out = {}
    for db in sorted(workdir.glob("audit-*.db")):
        store = AuditStore.from_url(f"sqlite:///{db}")
        try:
            result = store.verify()
        finally:
            store.close()
        out[db.stem] = {"ok": result.ok, "records": result.checked}
    return out


def summarise_rows(
    rows: list[dict[str, Any]], workers_list: list[int], concurrencies: list[int]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for w in workers_list:
        for c in concurrencies:
            key = f"w{w} c{c}"
            per = {
                t: [
                    r
                    for r in rows
                    if r["workers"] == w and r["concurrency"] == c and r["target"] == t
                ]
                for t in TARGETS
            }
            summary[key] = {
                t: {
                    "p50_ms": summarise([r["p50_ms"] for r in rs]).as_dict(),
                    "p99_ms": summarise([r["p99_ms"] for r in rs]).as_dict(),
                    "rps": summarise([r["rps"] for r in rs]).as_dict(),
                    "errors": sum(r["errors"] for r in rs),
                    "requests": sum(r["requests"] for r in rs),
                    "hit_request_bound": any(r["hit_request_bound"] for r in rs),
                    "client_cpu_us_per_request": summarise(
                        [r["client_cpu_us_per_request"] for r in rs]
                    ).as_dict(),
                    "server_cpu_us_per_request": summarise(
                        [r["server_cpu_us_per_request"] or float("nan") for r in rs]
                    ).as_dict(),
                }
                for t, rs in per.items()
                if rs
            }

            pairs = {
                "riskscreen/mlflow p50": ("riskscreen", "mlflow", "p50_ms"),
                "riskscreen/mlflow rps": ("riskscreen", "mlflow", "rps"),
                "riskscreen/noop rps": ("riskscreen", "noop", "rps"),
            }
            ratios[key] = {
                name: ratio_summary(_by_round(per[a], f), _by_round(per[b], f)).as_dict()
                for name, (a, b, f) in pairs.items()
                if per[a] and per[b]
            }
    return {"summary": summary, "ratios": ratios}


def _by_round(rows: list[dict[str, Any]], field: str) -> list[float]:
    return [r[field] for r in sorted(rows, key=lambda r: r["round"])]
