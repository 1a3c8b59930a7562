"""Where the time of one score goes, in process: each step timed on its own, n times, median µs.

Steps follow `POST /v1/scores`: validate the body, authenticate the key, encode the features,
explain (exact TreeSHAP) and predict, build the audit payload, commit the audit record (group
commit, SQLite WAL + synchronous=FULL on the bench disk), and serialise the response the way the
route does (the documented body as plain data, `orjson.dumps` into a Response). The whole
request through the ASGI app without a socket closes the account, with each step timed inside
the running app: what the steps do not explain is the framework, the event loop's wake-up after
the commit, and middleware.

A second part appends audit records from several threads at once (and from two processes),
alternating with one thread appending alone, so the gain of group commit is measured in the same
run: records/s, records per transaction (`AuditStore.stats`) and how long each append waited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import multiprocessing as mp
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty
from typing import Any

from bench.stats import alternate, median, paired_ratios, percentile, summarise


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
    median_us: float
    note: str = ""


class _Ctx:
    """Everything one score touches, built once: model, stores on a temp file, a key, a body."""

    def __init__(self, loaded: Any, workdir: Path, body: bytes) -> None:
        from riskscreen.audit.chain import AuditStore
        from riskscreen.audit.keys import KeyStore
        from riskscreen.model.scoring import Scorer
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
        self.x = self.scorer._encoder.encode(self.intake)
        self.result = self.scorer.score(self.intake)

    def close(self) -> None:
        self.audit.close()


def component_steps(ctx: _Ctx, n: int) -> list[Step]:
    """Each step of one score, median µs over n calls (the audit commit over n // 2)."""
    from riskscreen.audit.records import canonical_json
    from riskscreen.jobs.casework import score_payload
    from service.routers.scores import _json, _response
    from service.schemas import ScoreRequest

    b = ctx.loaded.bundle
    info = {
        "name": "riskscreen",
        "version": ctx.loaded.version,
        "data_kind": "synthetic",
        "trained_at": "",
        "horizon_months": b.horizon_months,
    }
    payload = score_payload(ctx.key, "BENCH-1", ctx.intake, ctx.result, ctx.loaded)
    record = ctx.audit.append("score", payload)
    m = median

    def features() -> object:
        return ctx.scorer._encoder.encode(ctx.request.intake.model_dump())  # type: ignore[attr-defined]

    def audit_payload() -> object:
        return canonical_json(score_payload(ctx.key, "BENCH-1", ctx.intake, ctx.result, ctx.loaded))

    return [
        Step(
            "validate body (ScoreRequest.model_validate_json)",
            m(time_us(lambda: ScoreRequest.model_validate_json(ctx.body), n)),
        ),
        Step(
            "authenticate key (KeyStore.authenticate)",
            m(time_us(lambda: ctx.keys.authenticate(ctx.token), n)),
            "one DB-API statement",
        ),
        Step("features (intake.model_dump + RecordEncoder.encode)", m(time_us(features, n))),
        Step(
            f"explain (bundle.contributions, {b.explainer})",
            m(time_us(lambda: b.contributions(ctx.x), n)),
        ),
        Step(
            "predict (bundle.log_odds, additivity check)",
            m(time_us(lambda: b.log_odds(ctx.x), n)),
        ),
        Step(
            "score total (Scorer.score: features+explain+predict+assembly)",
            m(time_us(lambda: ctx.scorer.score(ctx.intake), n)),
        ),
        Step("audit payload (score_payload + canonical JSON)", m(time_us(audit_payload, n))),
        Step(
            "audit commit (AuditStore.append, one writer alone)",
            m(time_us(lambda: ctx.audit.append("score", payload), max(n // 2, 20), 5)),
            "submit + writer thread + BEGIN IMMEDIATE/INSERT/COMMIT (WAL, synchronous=FULL); "
            "one record per transaction when nothing else is queued",
        ),
        Step(
            "reasons + labelled contributions (sv)",
            m(
                time_us(
                    lambda: (ctx.result.reasons("sv"), ctx.result.labelled_contributions("sv")), n
                )
            ),
        ),
        Step(
            "serialise (the body as plain data, orjson.dumps into a Response)",
            m(time_us(lambda: _json(_response(record, "BENCH-1", ctx.result, "sv", info), 201), n)),
            "as the route returns it: no response-model re-validation",
        ),
    ]


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


@dataclasses.dataclass(frozen=True)
class Timed:
    """One step timed inside the running app.

    `depth` 0 steps follow one another in the route, so their sum and the remainder account for
    the whole request; a deeper step runs inside the nearest shallower one above it. A step
    without `module` is not a function call: its bucket is filled by another wrapper.
    """

    label: str
    depth: int
    module: str | None = None
    attr: str = ""


COMMIT_WAIT = "audit commit, awaited (submit → future resolved)"
# The route: the key (from memory; from the database in the thread pool once a second),
# `submit_score` on the event loop (score, payload,
# queue the record), await the commit future, `_response`, `_json`. Names are looked up in the
# module that calls them, so `submit_score` is wrapped where the route imported it.
IN_SITU = (
    Timed(
        "authenticate key (KeyStore.recently_authenticated, on the loop)",
        0,
        "riskscreen.audit.keys",
        "KeyStore.recently_authenticated",
    ),
    Timed("score and queue (casework.submit_score)", 0, "service.routers.scores", "submit_score"),
    Timed("score (Scorer.score)", 1, "riskscreen.model.scoring", "Scorer.score"),
    Timed(
        "explain (ModelBundle.contributions)",
        2,
        "riskscreen.model.bundle",
        "ModelBundle.contributions",
    ),
    Timed(
        "predict (ModelBundle.log_odds check)", 2, "riskscreen.model.bundle", "ModelBundle.log_odds"
    ),
    Timed("audit payload (casework.score_payload)", 1, "riskscreen.jobs.casework", "score_payload"),
    Timed(
        "queue the record (AuditStore.submit: checks + canonical JSON)",
        1,
        "riskscreen.audit.chain",
        "AuditStore.submit",
    ),
    Timed(COMMIT_WAIT, 0),
    Timed(
        "transaction (writer thread: flock, BEGIN IMMEDIATE, INSERT, COMMIT)",
        1,
        "riskscreen.audit.committers",
        "_SqliteCommitter.commit",
    ),
    Timed("build response (routers.scores._response)", 0, "service.routers.scores", "_response"),
    Timed(
        "serialise (routers.scores._json: orjson.dumps into a Response)",
        0,
        "service.routers.scores",
        "_json",
    ),
)


class _Timers:
    """Wraps the IN_SITU functions while active; collects wall µs per call, per label.

    A wrapped call that returns a Future (AuditStore.submit) also times the wait until that
    future resolves, under COMMIT_WAIT. Functions not found are listed in `missing`.
    """

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {t.label: [] for t in IN_SITU}
        self.missing: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _Timers:
        for t in IN_SITU:
            if t.module is None:
                continue
            owner: Any = importlib.import_module(t.module)
            *parents, name = t.attr.split(".")
            for part in parents:
                owner = getattr(owner, part, None)
            if owner is None or name not in vars(owner):
                self.missing.append(f"{t.module}.{t.attr}")
                continue
            original = vars(owner)[name]
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(t.label, original))
        return self

    def _timed(self, label: str, fn: Any) -> Any:
        bucket, waits = self.calls[label], self.calls[COMMIT_WAIT]
        clock = time.perf_counter_ns

        def resolved(t0: int) -> Callable[[Any], None]:
            return lambda _: waits.append((clock() - t0) / 1000)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                out = fn(*args, **kwargs)
            finally:
                t1 = clock()
                bucket.append((t1 - t0) / 1000)
            if isinstance(out, Future):  # runs in the writer thread, before the loop is woken
                out.add_done_callback(resolved(t1))
            return out

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
    inside the running app, with what the top-level steps leave unexplained (framework,
    validation, event-loop wake-ups, middleware, logging)."""

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
            stats = app.state.riskscreen.audit.stats
        if wrong:
            raise RuntimeError(f"{wrong} of {n} in-process requests were not answered 201")
        steps = {k: sum(v) / n for k, v in timers.calls.items() if v}
        mean = sum(out) / n
        top = sum(steps.get(t.label, 0.0) for t in IN_SITU if t.depth == 0)
        return {
            "median_us": median(out),
            "mean_us": mean,
            "cpu_us": cpu,
            "steps_mean_us": steps,
            "unexplained_mean_us": mean - top,
            "not_found": timers.missing,
            "audit_transactions": stats.transactions,
            "audit_records": stats.records,
        }

    return asyncio.run(main())


# --- audit appends under concurrency ---------------------------------------------------------

PAYLOAD = {"k": "x" * 1500, "n": 1}  # about the size of a score's record


def _append_worker(
    path: str, threads: int, per_thread: int, go: Any, out: Any
) -> None:  # pragma: no cover - runs in a child process
    from riskscreen.audit.chain import AuditStore

    store = AuditStore.from_url(f"sqlite:///{path}")
    lat: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            store.append("score", PAYLOAD)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    store.append("score", PAYLOAD)  # writer thread started, connection open: before the clock
    before = store.stats
    ts = [threading.Thread(target=one) for _ in range(threads)]
    go.wait(60)
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    end = time.perf_counter()
    after = store.stats
    store.close()
    out.put(
        (start, end, lat, after.transactions - before.transactions, after.records - before.records)
    )


def _result(queue: Any, procs: Sequence[Any], timeout: float = 180) -> Any:
    """The next worker's result; fails at once if a worker died instead of waiting it out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return queue.get(timeout=0.5)
        except Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"an append worker exited with status {failed[0]}") from None
    raise TimeoutError(f"no append worker reported within {timeout:.0f} s")


def concurrent_appends(
    workdir: Path, processes: int, threads: int, per_thread: int
) -> dict[str, float]:
    """`processes` × `threads` callers of `AuditStore.append` on one file (each process has its
    own store, so its own writer thread): records/s, records per transaction, wait per append."""
    from riskscreen.audit.chain import AuditStore

    path = workdir / f"concurrent-{processes}x{threads}-{time.time_ns()}.db"
    setup = AuditStore.from_url(f"sqlite:///{path}")
    setup.create_schema()
    setup.close()
    ctx = mp.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_append_worker, args=(str(path), threads, per_thread, go, queue))
        for _ in range(processes)
    ]
    try:
        for p in procs:
            p.start()
        time.sleep(0.2)
        go.set()
        parts = [_result(queue, procs) for _ in procs]
    finally:
        for p in procs:
            if p.pid is None:
                continue
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    lat = [x for part in parts for x in part[2]]
    transactions, records = sum(p[3] for p in parts), sum(p[4] for p in parts)
    elapsed = max(p[1] for p in parts) - min(p[0] for p in parts)
    check = AuditStore.from_url(f"sqlite:///{path}")
    verified = check.verify()
    check.close()
    path.unlink(missing_ok=True)
    if not verified.ok or verified.checked != len(lat) + processes:
        raise RuntimeError(f"{processes}x{threads} appends left a broken chain: {verified}")
    return {
        "writers": processes * threads,
        "records": len(lat),
        "records_per_s": len(lat) / elapsed,
        "transactions": transactions,
        "records_per_transaction": records / transactions if transactions else float("nan"),
        "wait_p50_ms": percentile(lat, 50) * 1000,
        "wait_p90_ms": percentile(lat, 90) * 1000,
        "wait_max_ms": max(lat) * 1000,
    }


def append_comparison(
    workdir: Path, configs: Sequence[Sequence[int]], total: int, rounds: int
) -> dict[str, Any]:
    """Each (processes, threads) config once per round, in an order rotated per round, `total`
    records each. "1x1" (one thread appending alone: one record per transaction, the behaviour
    before group commit) is the baseline; each other config's records/s is divided by it per
    round."""
    labels = [f"{p}x{t}" for p, t in configs]
    by_label = dict(zip(labels, configs, strict=True))
    raw: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in alternate(labels, r):
            procs, threads = by_label[label]
            per_thread = max(total // (procs * threads), 5)
            raw[label].append(concurrent_appends(workdir, procs, threads, per_thread))
    summary: dict[str, Any] = {}
    base = raw.get("1x1")
    for label, runs in raw.items():
        summary[label] = {
            "processes": by_label[label][0],
            "threads": by_label[label][1],
            **{k: summarise([run[k] for run in runs]).as_dict() for k in runs[0]},
        }
        if base and label != "1x1":
            speed = paired_ratios(
                [x["records_per_s"] for x in runs], [x["records_per_s"] for x in base]
            )
            summary[label]["vs_1x1"] = summarise(speed).as_dict()
    return {"rounds": raw, "summary": summary}


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
    append_rounds: int = 3,
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
    asgi = asgi_request(loaded, body, settings, tmp, max(n // 2, 50))
    appends = (
        append_comparison(tmp, append_configs, appends_total, append_rounds)
        if append_configs
        else {}
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


def asgi_request(loaded: Any, body: bytes, settings: Any, tmp: Path, n: int) -> dict[str, Any]:
    """`asgi_in_situ` on the service's own app, twice (fresh audit files); the run with the
    lower mean is kept, since what slows a run down is other work on the machine."""
    from service.app import create_app

    settings = unlimited(settings)

    def token(app: Any) -> str:
        return str(app.state.riskscreen.keys.create("case_manager", "bench")[1])

    def make(i: int) -> Callable[[], Any]:
        s = settings.model_copy(update={"audit_url": f"sqlite:///{tmp / f'asgi-{i}.db'}"})
        return lambda: create_app(s, model=loaded)

    runs = [asgi_in_situ(make(i), body, n, token) for i in range(2)]
    return min(runs, key=lambda r: r["mean_us"])


def steps_table(steps: list[dict[str, Any]]) -> list[list[str]]:
    """Rows for the report: step, median µs, share of the sum of the steps, note."""
    parts = [s for s in steps if not s["name"].startswith("score total")]
    total = sum(s["median_us"] for s in parts)
    return [
        [
            s["name"],
            f"{s['median_us']:,.1f}",
            "" if s["name"].startswith("score total") else f"{s['median_us'] / total:.0%}",
            s.get("note", ""),
        ]
        for s in steps
    ]
