"""Real servers on loopback for the crash, concurrency and limit tests, and load to put on them.

Every process started here is ended by its own id in a `finally` (or the context manager's exit),
and every wait is bounded: a test that goes wrong fails, it does not hang.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from riskscreen.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
ZYGOTE = Path(__file__).with_name("server_zygote.py")
READY_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """RISKSCREEN_* variables for a server process that should see `settings`."""
    env = {
        "RISKSCREEN_DATA_DIR": str(settings.data_dir),
        "RISKSCREEN_AUDIT_URL": settings.resolved_audit_url,
        "RISKSCREEN_RATE_LIMIT_PER_MINUTE": str(settings.rate_limit_per_minute),
        "RISKSCREEN_RATE_LIMIT_BURST": str(settings.rate_limit_burst),
        "RISKSCREEN_MAX_CONCURRENT_REQUESTS": str(settings.max_concurrent_requests),
        "RISKSCREEN_REQUEST_TIMEOUT_SECONDS": str(settings.request_timeout_seconds),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_ready(base_url: str, alive: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    """Poll /readyz until 200; fail if the process dies or the time runs out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2.0) as c:
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the server at {base_url} exited before it was ready")
            with suppress(httpx.TransportError):
                if c.get("/readyz").status_code == 200:
                    return
            time.sleep(0.02)
    raise TimeoutError(f"{base_url} not ready within {timeout} s")


class Zygote:
    """Forks real uvicorn servers from one pre-imported process (see server_zygote.py)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: set[int] = set()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (log_dir / "zygote.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(ZYGOTE)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=ROOT,
            )
        self._lock = threading.Lock()
        self._reply(READY_TIMEOUT)

    def _reply(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(f"zygote did not answer; see {self.log_dir / 'zygote.log'}")
        reply: dict[str, Any] = json.loads(result[0])
        return reply

    def _send(self, command: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            return self._reply()

    def start(self, env: Mapping[str, str], port: int, log: Path) -> int:
        """Fork a server on `port` whose settings come from `env`; its output goes to `log`."""
        reply = self._send({"op": "start", "port": port, "env": dict(env), "log": str(log)})
        pid = int(reply["pid"])
        self.children.add(pid)
        return pid

    @contextmanager
    def server(self, env: Mapping[str, str], log: Path) -> Iterator[tuple[int, str]]:
        """A forked server, ready: (pid, base URL); killed on exit unless already stopped."""
        port = free_port()
        pid = self.start(env, port, log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, lambda: self.alive(pid))
            yield pid, base
        finally:
            if pid in self.children:
                self.stop(pid)

    def alive(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split(") ", 1)[1][0] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    def stop(self, pid: int, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to a child and reap it; returns its wait status."""
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
        status = int(self._send({"op": "wait", "pid": pid})["status"])
        self.children.discard(pid)
        return status

    def close(self) -> None:
        for pid in list(self.children):
            with suppress(Exception):
                self.stop(pid)
        with suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


@contextmanager
def zygote(log_dir: Path) -> Iterator[Zygote]:
    z = Zygote(log_dir)
    try:
        yield z
    finally:
        z.close()


@dataclass
class Served:
    """A server process started from the command line (its own session, so its workers too)."""

    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def command_server(
    argv: list[str], env: Mapping[str, str], port: int, log: Path, *, ready: bool = True
) -> Iterator[Served]:
    """Run `argv` (a server listening on `port`), wait until ready, and kill it afterwards."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log)
    try:
        if ready:
            wait_ready(served.base_url, served.alive)
        yield served
    finally:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the server and the workers it started
        proc.wait(30)


def riskscreen_cli() -> str:
    return str(Path(PYTHON).with_name("riskscreen"))


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Load:
    """Results of client threads: ids of answers received, statuses, transport failures."""

    scores: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def hammer(
    base_url: str,
    token: str,
    body: Callable[[int], dict[str, Any]],
    load: Load,
    stop: threading.Event,
    *,
    decide: bool = True,
    limit: int | None = None,
    counter: Callable[[], int] | None = None,
) -> None:
    """One client: score, then record a decision on that score, until `stop` (or `limit`)."""
    headers = {"Authorization": f"Bearer {token}"}
    n = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as c:
        while not stop.is_set():
            i = counter() if counter else n
            if limit is not None and i >= limit:
                return
            n += 1
            try:
                r = c.post("/v1/scores", json=body(i))
                load.count(r.status_code)
                if r.status_code != 201:
                    continue
                score_id = r.json()["score_id"]
                with load.lock:
                    load.scores.append(score_id)
                if not decide:
                    continue
                d = c.post(
                    f"/v1/scores/{score_id}/decision",
                    json={"support": "usual", "agrees_with_flag": True, "reason_code": "other"},
                )
                load.count(d.status_code)
                if d.status_code == 201:
                    with load.lock:
                        load.decisions.append(d.json()["decision_id"])
            except httpx.TransportError:
                with load.lock:
                    load.transport_errors += 1
                time.sleep(0.005)


@contextmanager
def clients(
    n: int, target: Callable[..., None], *args: Any, **kwargs: Any
) -> Iterator[threading.Event]:
    """`n` threads running `target(*args, stop=event, **kwargs)`; stopped and joined on exit."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=target, args=args, kwargs={**kwargs, "stop": stop}, daemon=True)
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a client thread did not stop"
