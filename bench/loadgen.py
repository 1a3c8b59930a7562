"""Closed-loop HTTP load: `c` keep-alive connections, each sending the next body as soon as the
previous answer arrived, for a fixed duration and never more than a bounded number of requests.

`wrk` (C, one event-loop thread) is used when it is on PATH: a Lua script cycles through the
prepared bodies, counts unexpected status codes, stops at the request bound and prints its
figures as JSON. Without wrk a Python generator (a thread per connection, one keep-alive
`httpx.Client` each) does the same; it needs far more CPU per request, and on a 2-core machine
that CPU is taken from the server, so results say which generator ran and what it cost (the
generator's own CPU time per request is measured either way).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.stats import percentile


@dataclass(frozen=True)
class RoundResult:
    """One closed-loop round against one server."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rps: float
    client_cpu_us_per_request: float
    hit_request_bound: bool
    generator: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_long_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(
    bodies: Sequence[bytes], headers: dict[str, str], expected_status: int, max_requests: int
) -> str:
    """A wrk Lua script: POST the bodies in turn; count wrong statuses; stop at the bound."""
    lines = ['wrk.method = "POST"']
    for k, v in headers.items():
        lines.append(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}")
    lines.append("local bodies = {")
    lines.extend(f"  {_lua_long_string(b.decode())}," for b in bodies)
    lines.append("}")
    lines.append(
        f"""
local i = 0
local seen = 0
local wrong = 0
local bound = {int(max_requests)}
request = function()
  i = (i % #bodies) + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
response = function(status, headers, body)
  seen = seen + 1
  if status ~= {int(expected_status)} then wrong = wrong + 1 end
  if seen >= bound then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "wrong_status": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, wrong))
end
"""
    )
    return "\n".join(lines)


def run_wrk(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    expected_status: int,
    timeout_s: float = 10.0,
) -> RoundResult:
    """One wrk round (one thread, `concurrency` connections)."""
    if seconds < 1 or seconds != int(seconds):
        raise ValueError("wrk rounds last a whole number of seconds, at least one")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(wrk_script(bodies, headers, expected_status, max_requests))
        script = fh.name
    try:
        argv = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{int(seconds)}s",
            f"--timeout={timeout_s:.0f}s",
            "-s",
            script,
            url,
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out = proc.stdout.read().decode() if proc.stdout else ""
            err = proc.stderr.read().decode() if proc.stderr else ""
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
    finally:
        Path(script).unlink(missing_ok=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    data = json.loads(line.removeprefix("RESULT "))
    n = int(data["requests"])
    secs = data["duration_us"] / 1e6
    cpu = usage.ru_utime + usage.ru_stime
    return RoundResult(
        requests=n,
        errors=int(data["socket_errors"]) + int(data["wrong_status"]),
        seconds=secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        rps=n / secs if secs else 0.0,
        client_cpu_us_per_request=cpu / n * 1e6 if n else float("nan"),
        hit_request_bound=n >= max_requests,
        generator="wrk",
    )


def run_python(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    expected_status: int,
    timeout_s: float = 10.0,
) -> RoundResult:
    """The same round with Python threads and keep-alive httpx clients (fallback)."""
    import httpx

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    lock = threading.Lock()
    sent = 0
    start_cpu = resource.getrusage(resource.RUSAGE_SELF)
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> None:
        nonlocal sent
        i = k
        with httpx.Client(
            headers={**headers, "content-type": "application/json"}, timeout=timeout_s
        ) as client:
            while time.perf_counter() < deadline:
                with lock:
                    if sent >= max_requests:
                        return
                    sent += 1
                body = bodies[i % len(bodies)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    status = client.post(url, content=body).status_code
                except httpx.HTTPError:
                    status = 0
                latencies[k].append(time.perf_counter() - t0)
                if status != expected_status:
                    errors[k] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    flat = [x for lat in latencies for x in lat]
    n = len(flat)
    cpu = (end_cpu.ru_utime - start_cpu.ru_utime) + (end_cpu.ru_stime - start_cpu.ru_stime)
    return RoundResult(
        requests=n,
        errors=sum(errors),
        seconds=elapsed,
        p50_ms=percentile(flat, 50) * 1000 if flat else float("nan"),
        p99_ms=percentile(flat, 99) * 1000 if flat else float("nan"),
        rps=n / elapsed if elapsed else 0.0,
        client_cpu_us_per_request=cpu / n * 1e6 if n else float("nan"),
        hit_request_bound=n >= max_requests,
        generator="python-httpx",
    )


def run_round(
    url: str, bodies: Sequence[bytes], headers: dict[str, str], *, use_wrk: bool, **kwargs: object
) -> RoundResult:
    """A round with wrk if asked for (and present), else with the Python generator."""
    if use_wrk:
        return run_wrk(url, bodies, headers, **kwargs)  # type: ignore[arg-type]
    return run_python(url, bodies, headers, **kwargs)  # type: ignore[arg-type]
