"""Concurrency: 8 clients write 10,000 scores and decisions through two server worker processes.

The real entry point (`riskscreen serve --workers 2`) on loopback. Each client repeats a unit of
work: a batch of 20 scores, then a decision on each of 5 of them (25 audit records, 6 requests),
until 10,000 records are written: 8,000 scores and 2,000 decisions, every one its own append,
interleaved across both processes and their threads. Batches keep the clients (Python threads on
the same two cores) from being what is measured. The chain must come out gap-free and verifying,
with every acknowledged answer in it exactly once, on SQLite and on PostgreSQL (as a role that may
only read and insert). Then SIGTERM arrives while batches are in flight: all are answered.

What is under test is the serialisation of appends, not the disk: the SQLite file lives on tmpfs
and the PostgreSQL role commits without waiting for its WAL flush (synchronous_commit off), so a
shared disk's fsync (3-4 ms per commit on these machines under load) does not set the pace.
Durability through kills is test_crash_safety's subject, on disk.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from reliability_budget import Budget
from reliability_servers import Served, command_server, free_port, riskscreen_cli, server_env
from reliability_support import (
    add_keys,
    audit_record_ids,
    score_body,
    sqlite_url,
    verify_chain,
    wait_until_logging,
)

from riskscreen.audit import chain as audit
from riskscreen.audit import keys
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.audit.switch import ScoringSwitchStore
from riskscreen.settings import Settings

CLIENTS = 8
BATCH, DECIDED = 20, 5  # per unit of work: 20 scores, 5 decisions
DECISION = {"support": "usual", "agrees_with_flag": True, "reason_code": "other"}


def body(i: int) -> dict[str, object]:
    return score_body(f"conc-{i:06d}", age=18 + i % 47, children_under_6=i % 4)


@dataclass
class Written:
    ids: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(base: str, token: str, next_unit: Callable[[], int | None], out: Written) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        while (unit := next_unit()) is not None:
            try:
                batch = {"records": [body(unit * BATCH + j) for j in range(BATCH)]}
                r = c.post("/v1/scores/batch", json=batch)
                ids = [s["score_id"] for s in r.json()["scores"]] if r.status_code == 201 else []
                decided = []
                for score_id in ids[:DECIDED]:
                    d = c.post(f"/v1/scores/{score_id}/decision", json=DECISION)
                    with out.lock:
                        out.statuses[d.status_code] += 1
                    if d.status_code == 201:
                        decided.append(d.json()["decision_id"])
                with out.lock:
                    out.statuses[r.status_code] += 1
                    out.ids += ids + decided
            except httpx.HTTPError as exc:
                with out.lock:
                    out.errors.append(repr(exc))
                return


def _write(server: Served, token: str, records: int) -> tuple[Written, float]:
    units = itertools.count()
    lock = threading.Lock()
    total_units = records // (BATCH + DECIDED)

    def next_unit() -> int | None:
        with lock:
            unit = next(units)
        return unit if unit < total_units else None

    out = Written()
    threads = [
        threading.Thread(target=writer, args=(server.base_url, token, next_unit, out))
        for _ in range(CLIENTS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    assert not any(t.is_alive() for t in threads), "a writer did not finish"
    return out, time.monotonic() - started


def _check_chain(url: str, out: Written, records: int) -> None:
    assert not out.errors, out.errors[:3]
    assert set(out.statuses) == {201}, out.statuses
    assert len(out.ids) == records
    ids = Counter(audit_record_ids(url))
    assert len(ids) == sum(ids.values()) == records  # no duplicate, nothing unacknowledged
    assert all(ids[i] == 1 for i in out.ids)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            low, high, count = conn.exec_driver_sql(
                "SELECT min(seq), max(seq), count(*) FROM audit_records"
            ).one()
    finally:
        engine.dispose()
    assert (low, high, count) == (1, records, records), "the chain has a gap"
    ok, checked, reason = verify_chain(url)
    assert ok and checked == records, reason


def _sigterm_drains(server: Served, url: str, token: str) -> int:
    """SIGTERM to the supervisor while batches are in flight: every batch is answered."""
    auth = {"Authorization": f"Bearer {token}"}
    before = len(audit_record_ids(url))
    results: list[tuple[int, list[str]]] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        batch = {"records": [score_body(f"term{n}-{i:03d}") for i in range(100)]}
        r = httpx.post(f"{server.base_url}/v1/scores/batch", json=batch, headers=auth, timeout=60)
        ids = [s["score_id"] for s in r.json()["scores"]] if r.status_code == 201 else []
        with lock:
            results.append((r.status_code, ids))

    senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in senders:
        t.start()
    wait_until_logging(url, [f"term{n}-" for n in range(4)], after=before)
    server.proc.send_signal(signal.SIGTERM)
    for t in senders:
        t.join(60)
    assert server.proc.wait(60) == 0
    assert sorted(code for code, _ in results) == [201] * 4
    answered = [i for _, ids in results for i in ids]
    ids = Counter(audit_record_ids(url))
    assert len(ids) == before + 400 and all(ids[i] == 1 for i in answered)
    assert verify_chain(url)[0]
    return len(answered)


def _run(
    settings: Settings, server_url: str, check_url: str, token: str, records: int, log: Path
) -> tuple[float, int]:
    unlimited = {"rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9}
    env = server_env(settings.model_copy(update={"audit_url": server_url, **unlimited}))
    port = free_port()
    argv = [riskscreen_cli(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with command_server(argv, env, port, log) as server:
        out, elapsed = _write(server, token, records)
        _check_chain(check_url, out, records)
        drained = _sigterm_drains(server, check_url, token)
    return elapsed, drained


def test_two_workers_sqlite(
    model_settings: Settings,
    tmp_path: Path,
    fast_path: Path,
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    url = sqlite_url(fast_path)
    token = add_keys(url).tokens["case_manager"]
    records = budget.concurrent_records
    elapsed, drained = _run(model_settings, url, url, token, records, tmp_path / "server.log")
    record_property(
        "figures",
        f"concurrency (SQLite, 2 workers, {CLIENTS} clients): {records} records "
        f"({records * BATCH // (BATCH + DECIDED)} scores in batches of {BATCH}, "
        f"{records * DECIDED // (BATCH + DECIDED)} decisions) in {elapsed:.1f} s = "
        f"{records / elapsed:.0f} appends/s; gap-free, verifying; then SIGTERM with "
        f"{drained} scores in flight, all answered and logged",
    )


@pytest.mark.postgres
def test_two_workers_postgres(
    model_settings: Settings,
    pg_database_url: str,
    pg_login_role: tuple[str, str],
    tmp_path: Path,
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    role, role_url = pg_login_role
    for store in (AuditStore.from_url(pg_database_url), KeyStore.from_url(pg_database_url)):
        store.create_schema()
        store.close()
    owner = sa.create_engine(pg_database_url)
    try:
        ScoringSwitchStore(owner).create_schema()
        audit.grant_service_role(owner, role)
        keys.grant_service_role(owner, role)
        with owner.begin() as conn:
            conn.exec_driver_sql(f'GRANT SELECT ON scoring_switch TO "{role}"')
            conn.exec_driver_sql(f'ALTER ROLE "{role}" SET synchronous_commit = off')
    finally:
        owner.dispose()
    token = add_keys(pg_database_url).tokens["case_manager"]
    records = budget.concurrent_records
    elapsed, drained = _run(
        model_settings, role_url, pg_database_url, token, records, tmp_path / "server.log"
    )
    record_property(
        "figures",
        f"concurrency (PostgreSQL as an insert-and-read role, 2 workers, {CLIENTS} clients): "
        f"{records} records in {elapsed:.1f} s = {records / elapsed:.0f} appends/s; gap-free, "
        f"verifying; SIGTERM with {drained} scores in flight, all answered",
    )
