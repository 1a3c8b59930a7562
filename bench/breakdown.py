"""Where the time of one score goes, in process: each step timed on its own, n times, median µs.

Steps follow `POST /v1/scores`: validate the body, authenticate the key, encode the features,
explain (exact TreeSHAP) and predict, assemble the result and its reasons, commit the audit
record (SQLite WAL + synchronous=FULL on the bench disk), and serialise the response the way
FastAPI does. The whole request through the ASGI app without a socket closes the account: what
the steps do not explain is framework, thread-pool hops and middleware. The same steps are timed
for the prototype (`bench.proto`) so each proposed change has its own measured gain.

A second part appends audit records from several threads at once (and from two processes), the
situation of a server at concurrency 8, where waiting for the write lock dominates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import median, percentile


def time_us(fn: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Wall time of each of `n` calls in microseconds (after `warmup` untimed calls)."""
    for _ in range(warmup):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000)
    return out


@dataclasses.dataclass
class Step:
    name: str
    current_us: float
    proto_us: float | None
    note: str = ""


class _Ctx:
    """Everything one score touches, built once: model, stores on a temp file, a key, a body."""

    def __init__(self, loaded: Any, workdir: Path, body: bytes) -> None:
        from bench.proto import FastKeyStore, LockedSqliteAuditStore
        from riskscreen.audit import AuditStore
        from riskscreen.keys import KeyStore
        from riskscreen.scoring import Scorer
        from service.schemas import ScoreRequest

        self.loaded = loaded
        self.body = body
        self.request = ScoreRequest.model_validate_json(body)
        self.intake = self.request.intake.model_dump()  # type: ignore[attr-defined]
        self.audit = AuditStore.from_url(f"sqlite:///{workdir / 'current.db'}")
        self.audit.create_schema()
        self.keys = KeyStore(self.audit.engine)
        self.keys.create_schema()
        self.key, self.token = self.keys.create("case_manager", "bench")
        self.scorer = Scorer(loaded.bundle)
        self.fast_audit = LockedSqliteAuditStore(workdir / "proto.db")
        self.fast_audit.create_schema()
        self.fast_keys = FastKeyStore(workdir / "proto.db")
        self.fast_keys.create_schema()
        _, self.fast_token = self.fast_keys.create("case_manager", "bench")
        self.x = self.scorer._encoder.encode(self.intake)
        self.result = self.scorer.score(self.intake)

    def close(self) -> None:
        self.audit.close()
        self.fast_audit.close()


def _response_field() -> Any:
    from service.routers.scores import router

    return next(
        r
        for r in router.routes
        if getattr(r, "path", "") == "/v1/scores" and "POST" in getattr(r, "methods", ())
    ).response_field  # type: ignore[attr-defined]


def _serialise_fastapi(field: Any, response: Any) -> bytes:
    """What FastAPI 0.165 does with a returned ScoreResponse (minus its thread-pool hop, which
    shows in the ASGI remainder): validate against the response model, dump JSON in Rust."""
    value, errors = field.validate(response, {}, loc=("response",))
    if errors:
        raise RuntimeError(errors)
    return bytes(field.serialize_json(value))


def component_steps(ctx: _Ctx, n: int) -> list[Step]:
    """Each step of one score, current code and prototype, median µs over n calls."""
    from riskscreen.casework import score_payload
    from service.routers.scores import _response
    from service.schemas import ScoreRequest

    b = ctx.loaded.bundle
    info = {
        "name": "riskscreen",
        "version": ctx.loaded.version,
        "data_kind": "synthetic",
        "trained_at": "",
    }
    payload = score_payload(ctx.key, "BENCH-1", ctx.intake, ctx.result, ctx.loaded)
    record = ctx.audit.append("score", payload)
    field = _response_field()
    m = median
    steps = [
        Step(
            "validate body (ScoreRequest.model_validate_json)",
            m(time_us(lambda: ScoreRequest.model_validate_json(ctx.body), n)),
            None,
        ),
        Step(
            "authenticate key (KeyStore.authenticate)",
            m(time_us(lambda: ctx.keys.authenticate(ctx.token), n)),
            m(time_us(lambda: ctx.fast_keys.authenticate(ctx.fast_token), n)),
            "SQLAlchemy Core query -> one prepared DB-API statement",
        ),
        Step(
            "features (intake.model_dump + RecordEncoder.encode)",
            m(time_us(lambda: ctx.scorer._encoder.encode(ctx.request.intake.model_dump()), n)),
            None,
        ),  # type: ignore[attr-defined]
        Step(
            f"explain (exact TreeSHAP: bundle.contributions, {b.explainer})",
            m(time_us(lambda: b.contributions(ctx.x), n)),
            None,
        ),
        Step(
            "predict (bundle.log_odds, additivity check)",
            m(time_us(lambda: b.log_odds(ctx.x), n)),
            None,
        ),
        Step(
            "score total (Scorer.score: features+explain+predict+assembly)",
            m(time_us(lambda: ctx.scorer.score(ctx.intake), n)),
            None,
        ),
        Step(
            "audit payload (score_payload + canonical JSON)",
            m(
                time_us(
                    lambda: __import__("riskscreen.audit", fromlist=["x"]).canonical_json(
                        score_payload(ctx.key, "BENCH-1", ctx.intake, ctx.result, ctx.loaded)
                    ),
                    n,
                )
            ),
            None,
        ),
        Step(
            "audit commit (AuditStore.append, WAL + synchronous=FULL)",
            m(time_us(lambda: ctx.audit.append("score", payload), max(n // 2, 20), 5)),
            m(time_us(lambda: ctx.fast_audit.append("score", payload), max(n // 2, 20), 5)),
            "SQLAlchemy -> DB-API, same pragmas",
        ),
        Step(
            "reasons + labelled contributions (sv)",
            m(
                time_us(
                    lambda: (ctx.result.reasons("sv"), ctx.result.labelled_contributions("sv")), n
                )
            ),
            None,
        ),
        Step(
            "serialise (build ScoreResponse, FastAPI response_model validate + dump)",
            m(
                time_us(
                    lambda: _serialise_fastapi(field, _response(record, ctx.result, "sv", info)), n
                )
            ),
            m(time_us(lambda: _response(record, ctx.result, "sv", info).model_dump_json(), n)),
            "returned as Response(model_dump_json()): no re-validation, no extra hop",
        ),
    ]
    return steps


# --- a whole request through the ASGI app, without a socket ---------------------------------


async def _asgi_call(app: Any, body: bytes, token: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/scores",
        "raw_path": b"/v1/scores",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    }
    sent = False
    status_code = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status_code
        if message["type"] == "http.response.start":
            status_code = message["status"]

    await app(scope, receive, send)
    return status_code


# Functions timed inside the running app: (label, module, attribute path). Methods are wrapped
# on each class that defines them, so the prototype's overrides are timed too.
IN_SITU = (
    ("authenticate key", "riskscreen.keys", "KeyStore.authenticate"),
    ("explain (contributions)", "riskscreen.bundle", "ModelBundle.contributions"),
    ("predict (log_odds check)", "riskscreen.bundle", "ModelBundle.log_odds"),
    ("score (Scorer.score, incl. explain + predict)", "riskscreen.scoring", "Scorer.score"),
    ("audit commit (append)", "riskscreen.audit", "AuditStore.append"),
    ("audit commit (append)", "bench.proto", "LockedSqliteAuditStore.append"),
    ("build response (_response)", "service.routers.scores", "_response"),
)
NESTED = {"explain (contributions)", "predict (log_odds check)"}  # inside Scorer.score


class _Timers:
    """Wraps the IN_SITU functions while active; collects wall µs per call, per label."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _Timers:
        import importlib

        for label, module, path in IN_SITU:
            owner: Any = importlib.import_module(module)
            *parents, name = path.split(".")
            for part in parents:
                owner = getattr(owner, part)
            if name not in vars(owner):
                continue
            original = vars(owner)[name]
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(label, original))
        return self

    def _timed(self, label: str, fn: Any) -> Any:
        bucket = self.calls.setdefault(label, [])
        clock = time.perf_counter_ns

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                bucket.append((clock() - t0) / 1000)

        return timed

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)

    def reset(self) -> None:
        for bucket in self.calls.values():
            bucket.clear()


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)  # µs resolution, all threads
    return r.ru_utime + r.ru_stime


def asgi_in_situ(
    make_app: Callable[[], Any], body: bytes, n: int, make_token: Callable[[Any], str]
) -> dict[str, Any]:
    """`POST /v1/scores` through the app n times (lifespan run, real thread pool, no socket):
    median and mean wall µs per request, CPU µs per request, and each step's mean µs measured
    inside the running app, with what the steps leave unexplained (framework, validation,
    thread-pool hops, middleware, logging)."""

    async def main() -> dict[str, Any]:
        app = make_app()
        async with app.router.lifespan_context(app):
            token = make_token(app)
            with _Timers() as timers:
                for _ in range(30):
                    status_code = await _asgi_call(app, body, token)
                    if status_code != 201:
                        raise RuntimeError(f"in-process request answered {status_code}")
                timers.reset()
                out, wrong = [], 0
                cpu0 = _cpu_s()
                for _ in range(n):
                    t0 = time.perf_counter_ns()
                    wrong += await _asgi_call(app, body, token) != 201
                    out.append((time.perf_counter_ns() - t0) / 1000)
                cpu = (_cpu_s() - cpu0) / n * 1e6
            if wrong:
                raise RuntimeError(f"{wrong} of {n} in-process requests were not answered 201")
            steps = {k: sum(v) / n for k, v in timers.calls.items() if v}
            mean = sum(out) / n
            top = sum(v for k, v in steps.items() if k not in NESTED)
            return {
                "median_us": median(out),
                "mean_us": mean,
                "cpu_us": cpu,
                "steps_mean_us": steps,
                "unexplained_mean_us": mean - top,
            }

    return asyncio.run(main())


# --- audit appends under concurrency ---------------------------------------------------------


def _append_worker(
    kind: str, path: str, threads: int, per_thread: int, go: Any, out: Any
) -> None:  # pragma: no cover - runs in a child process
    from bench.proto import LockedSqliteAuditStore
    from riskscreen.audit import AuditStore

    store = (
        LockedSqliteAuditStore(Path(path))
        if kind == "proto"
        else AuditStore.from_url(f"sqlite:///{path}")
    )
    payload = {"k": "x" * 1500, "n": 1}
    lat: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            store.append("score", payload)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    store.append("score", payload)  # connect and warm up before the clock starts
    ts = [threading.Thread(target=one) for _ in range(threads)]
    go.wait(60)
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((start, time.perf_counter(), lat))


def concurrent_appends(
    kind: str, workdir: Path, processes: int, threads: int, per_thread: int
) -> dict[str, float]:
    """Appends/s and latency percentiles with `processes` × `threads` writers on one file."""
    from bench.proto import LockedSqliteAuditStore
    from riskscreen.audit import AuditStore

    path = workdir / f"concurrent-{kind}-{processes}x{threads}-{time.time_ns()}.db"
    setup = (
        LockedSqliteAuditStore(path)
        if kind == "proto"
        else AuditStore.from_url(f"sqlite:///{path}")
    )
    setup.create_schema()
    setup.close()
    ctx = mp.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_append_worker, args=(kind, str(path), threads, per_thread, go, queue))
        for _ in range(processes)
    ]
    try:
        for p in procs:
            p.start()
        time.sleep(0.2)
        go.set()
        parts = [queue.get(timeout=180) for _ in procs]
    finally:
        for p in procs:
            if p.pid is None:
                continue
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    lat = [x for part in parts for x in part[2]]
    elapsed = max(p[1] for p in parts) - min(p[0] for p in parts)
    check = AuditStore.from_url(f"sqlite:///{path}")
    verified = check.verify()
    check.close()
    if not verified.ok or verified.checked != len(lat) + processes:
        raise RuntimeError(f"{kind} appends left a broken chain: {verified}")
    return {
        "writers": processes * threads,
        "appends": len(lat),
        "appends_per_s": len(lat) / elapsed,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": max(lat) * 1000,
    }


def fsync_probe_ms(directory: Path, n: int = 40) -> dict[str, float]:
    """Latency of a bare fsync on the bench disk now: the floor under every durable commit."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"fsync-probe-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    out = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return {"p50_ms": percentile(out, 50), "p90_ms": percentile(out, 90), "max_ms": max(out)}


def run(
    loaded: Any,
    body: bytes,
    settings: Any,
    workdir: Path,
    n: int,
    appends_total: int,
    append_configs: Sequence[Sequence[int]] = ((1, 1), (1, 8), (2, 4)),
) -> dict[str, Any]:
    """The whole breakdown section (components, in-process requests, concurrent appends)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="breakdown-", dir=workdir))
    fsync_before = fsync_probe_ms(tmp)
    ctx = _Ctx(loaded, tmp, body)
    try:
        steps = component_steps(ctx, n)
    finally:
        ctx.close()
    asgi = _asgi_both(loaded, body, settings, tmp, max(n // 2, 50))
    appends = {}
    for procs, threads in append_configs:
        for kind in ("current", "proto"):  # alternating, so disk drift hits both alike
            per_thread = max(appends_total // (procs * threads), 5)
            appends[f"{kind} {procs}x{threads}"] = concurrent_appends(
                kind, tmp, procs, threads, per_thread
            )
    return {
        "n": n,
        "steps": [dataclasses.asdict(s) for s in steps],
        "asgi_request_us": asgi,
        "concurrent_appends": appends,
        "fsync_probe_ms": {"before": fsync_before, "after": fsync_probe_ms(tmp)},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# The per-key rate limit (service/limits.py) is lifted for measurements of throughput: a
# benchmark sends far more than a case manager would, from one key.
UNLIMITED = {"rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9}


def unlimited(settings: Any) -> Any:
    """Settings with the rate limit lifted, where this version of the service has one."""
    fields = type(settings).model_fields
    return settings.model_copy(update={k: v for k, v in UNLIMITED.items() if k in fields})


def _asgi_both(loaded: Any, body: bytes, settings: Any, tmp: Path, n: int) -> dict[str, Any]:
    from bench.proto_app import create_proto_app
    from service.app import create_app

    settings = unlimited(settings)

    def token(app: Any) -> str:
        return str(app.state.riskscreen.keys.create("case_manager", "bench")[1])

    runs: dict[str, list[dict[str, Any]]] = {"current": [], "proto": []}
    for i in range(2):  # alternate twice; keep the run with the lower mean of each
        cur = settings.model_copy(update={"audit_url": f"sqlite:///{tmp / f'asgi-cur-{i}.db'}"})
        pro = settings.model_copy(update={"audit_url": f"sqlite:///{tmp / f'asgi-pro-{i}.db'}"})
        runs["current"].append(
            asgi_in_situ(lambda s=cur: create_app(s, model=loaded), body, n, token)  # type: ignore[misc]
        )
        runs["proto"].append(
            asgi_in_situ(lambda s=pro: create_proto_app(s, loaded), body, n, token)  # type: ignore[misc]
        )
    return {k: min(v, key=lambda r: r["mean_us"]) for k, v in runs.items()}


def steps_table(steps: list[dict[str, Any]]) -> list[list[str]]:
    """Rows for the report: step, current µs, share, prototype µs, gain."""
    total_cur = sum(s["current_us"] for s in steps if not s["name"].startswith("score total"))
    rows = []
    for s in steps:
        cur = s["current_us"]
        share = "" if s["name"].startswith("score total") else f"{cur / total_cur:.0%}"
        pro = s["proto_us"]
        rows.append(
            [
                s["name"],
                f"{cur:,.1f}",
                share,
                "" if pro is None else f"{pro:,.1f}",
                "" if pro is None or pro <= 0 else f"{cur / pro:.1f}×",
                s.get("note", ""),
            ]
        )
    return rows


if __name__ == "__main__":  # pragma: no cover - manual use
    np.set_printoptions(precision=3)
