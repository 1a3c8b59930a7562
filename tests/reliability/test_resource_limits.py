"""Resource limits: 429 per key with Retry-After, load shed with 503 at twice the concurrency
limit (and nothing else failing, memory flat), and request deadlines answered with 503.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from reliability_budget import Budget
from reliability_servers import Zygote, rss_kib, server_env
from reliability_support import (
    add_keys,
    audit_count,
    audit_record_ids,
    client,
    score_body,
    sqlite_url,
    verify_chain,
)

from riskscreen.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_per_key_with_retry_after(model_settings: Settings, tmp_path: Path) -> None:
    settings = model_settings.model_copy(
        update={
            "audit_url": sqlite_url(tmp_path),
            "rate_limit_per_minute": 6,  # one token every 10 s
            "rate_limit_burst": 3,
        }
    )
    keys = add_keys(settings.resolved_audit_url, second="case_manager")
    with client(settings) as c:
        clock = FakeClock()
        c.app.state.limits.buckets.clock = clock  # type: ignore[attr-defined]
        post = lambda who: c.post("/v1/scores", json=score_body(), headers=keys.auth(who))  # noqa: E731
        assert [post("case_manager").status_code for _ in range(3)] == [201] * 3
        before = audit_count(settings.resolved_audit_url)
        limited = post("case_manager")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "10"
        assert "too many requests" in limited.json()["detail"]
        assert audit_count(settings.resolved_audit_url) == before  # refused, so not scored
        assert post("second").status_code == 201  # another key has its own bucket
        # Every authenticated route counts, a read as much as a score.
        assert c.get("/v1/model", headers=keys.auth("case_manager")).status_code == 429
        clock.now += 9.0
        assert post("case_manager").headers["retry-after"] == "1"
        clock.now += 1.0
        assert post("case_manager").status_code == 201
        assert c.get("/healthz").status_code == 200  # probes are never limited


def test_each_worker_takes_its_share_of_the_rate(model_settings: Settings, tmp_path: Path) -> None:
    settings = model_settings.model_copy(
        update={
            "audit_url": sqlite_url(tmp_path),
            "rate_limit_per_minute": 60,
            "rate_limit_burst": 4,
            "workers": 2,
        }
    )
    keys = add_keys(settings.resolved_audit_url)
    with client(settings) as c:
        c.app.state.limits.buckets.clock = FakeClock()  # type: ignore[attr-defined]
        codes = [c.get("/v1/model", headers=keys.auth("auditor")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def _overload(
    base: str,
    token: str,
    until: float,
    results: Counter[str],
    problems: list[str],
    lock: threading.Lock,
) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        i = 0
        while time.monotonic() < until:
            i += 1
            r = c.post("/v1/scores", json=score_body(f"load-{threading.get_ident() % 10000}-{i}"))
            with lock:
                results[str(r.status_code)] += 1
                if r.status_code == 201:
                    results["ids:" + r.json()["score_id"]] += 1
                elif r.status_code == 503:
                    if r.headers.get("retry-after") != "1" or "capacity" not in r.json()["detail"]:
                        problems.append(r.text)
                else:
                    problems.append(f"{r.status_code} {r.text[:200]}")


def test_twice_the_concurrency_limit_sheds_503s_and_memory_stays_flat(
    forker: Zygote,
    model_settings: Settings,
    tmp_path: Path,
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    limit = 4
    url = sqlite_url(tmp_path)
    keys = add_keys(url)
    settings = model_settings.model_copy(
        update={
            "audit_url": url,
            "max_concurrent_requests": limit,
            "rate_limit_per_minute": 10**9,
            "rate_limit_burst": 10**9,
        }
    )
    results: Counter[str] = Counter()
    problems: list[str] = []
    rss: list[tuple[float, int]] = []
    lock = threading.Lock()
    with forker.server(server_env(settings), tmp_path / "server.log") as (pid, base):
        started = time.monotonic()
        until = started + budget.overload_seconds
        threads = [
            threading.Thread(
                target=_overload,
                args=(base, keys.tokens["case_manager"], until, results, problems, lock),
            )
            for _ in range(2 * limit)
        ]
        for t in threads:
            t.start()
        while time.monotonic() < until:
            rss.append((time.monotonic() - started, rss_kib(pid)))
            time.sleep(0.25)
        for t in threads:
            t.join(60)
        assert forker.alive(pid)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    assert not problems, problems[:5]
    statuses = {k: v for k, v in results.items() if not k.startswith("ids:")}
    assert set(statuses) == {"201", "503"}, statuses  # some shed, some served, nothing else
    served = [k[4:] for k in results if k.startswith("ids:")]
    assert Counter(audit_record_ids(url, kind="score")) == Counter(served)
    # Flat: after a warm-up second, the last third of the samples is not above the first third
    # by more than a few MiB (allocator noise), which a leak per request would exceed.
    warm = [kib for at, kib in rss if at >= 1.0]
    third = max(1, len(warm) // 3)
    first, last = statistics.median(warm[:third]), statistics.median(warm[-third:])
    assert last - first < 8 * 1024, (first, last)
    record_property(
        "figures",
        f"overload: {2 * limit} clients on a limit of {limit} for {budget.overload_seconds:g} s: "
        f"{statuses['201']} served, {statuses['503']} shed with 503 + Retry-After, no other "
        f"status; RSS {first / 1024:.0f} -> {last / 1024:.0f} MiB",
    )


def _raw_request(port: int, head: bytes, timeout: float) -> tuple[float, bytes]:
    """Send `head` (and nothing more) and read what comes back; (seconds, bytes)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        data = s.recv(65536)
    return time.monotonic() - started, data


def test_request_deadlines_answer_503(
    forker: Zygote, model_settings: Settings, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    url = sqlite_url(tmp_path)
    keys = add_keys(url)
    deadline = 0.5
    settings = model_settings.model_copy(
        update={
            "audit_url": url,
            "request_timeout_seconds": deadline,
            "rate_limit_per_minute": 10**9,
            "rate_limit_burst": 10**9,
        }
    )
    auth = keys.auth("case_manager")
    with forker.server(server_env(settings), tmp_path / "server.log") as (pid, base):
        port = int(base.rsplit(":", 1)[1])
        # A client that announces a body and never sends it.
        head = (
            f"POST /v1/scores HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}"
            "\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
        ).encode()
        took, answer = _raw_request(port, head, timeout=10)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert deadline <= took < deadline + 2, took
        # Work stuck behind the audit log's write lock, held here by another writer.
        holder = sa.create_engine(url).connect()
        try:
            holder.exec_driver_sql("BEGIN IMMEDIATE")
            started = time.monotonic()
            r = httpx.post(f"{base}/v1/scores", json=score_body("stuck"), headers=auth, timeout=30)
            took_stuck = time.monotonic() - started
            assert r.status_code == 503 and "no answer within" in r.json()["detail"], r.text
            assert took_stuck < deadline + 2, took_stuck
        finally:
            holder.exec_driver_sql("ROLLBACK")
            holder.close()
        time.sleep(0.5)  # the stuck thread commits its record now; its score went nowhere
        r = httpx.post(f"{base}/v1/scores", json=score_body("after"), headers=auth, timeout=30)
        assert r.status_code == 201
        assert forker.alive(pid)
    assert verify_chain(url)[0]
    record_property(
        "figures",
        f"deadlines ({deadline} s): a stalled body answered 503 after {took:.2f} s, a request "
        f"stuck behind the audit lock after {took_stuck:.2f} s (SQLite's busy timeout is 30 s)",
    )
