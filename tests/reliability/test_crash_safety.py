"""Crash safety: SIGKILL the real server under concurrent scoring load, again and again.

Each kill point: fork a fresh server (the same code path as `uvicorn service.main:app`, see
server_zygote.py), wait until it is ready, put four clients on it (each scores and then records
a decision on its score), SIGKILL it 0-0.25 s after the first answer, restart. Afterwards every
score and decision a client received a 2xx for has exactly one audit record, the chain verifies,
and the store is consistent (SQLite's integrity_check; on PostgreSQL no seq gap or duplicate).

SIGTERM under load is the graceful counterpart: requests in flight when it arrives complete
with their 2xx, and each is in the log.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from reliability_budget import Budget
from reliability_servers import Load, Zygote, clients, hammer, server_env
from reliability_support import (
    add_keys,
    audit_record_ids,
    score_body,
    sqlite_url,
    verify_chain,
    wait_until_logging,
)

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.settings import Settings

CLIENTS = 4


def body(i: int) -> dict[str, object]:
    return score_body(f"crash-{i:06d}", age=18 + i % 47, self_rated_health=1 + i % 5)


def _prepare(url: str) -> dict[str, str]:
    for store in (AuditStore.from_url(url), KeyStore.from_url(url)):
        store.create_schema()
        store.close()
    keys = add_keys(url)
    return keys.tokens


def _kill_loop(
    z: Zygote, settings: Settings, url: str, kills: int, seed: int, log: Path
) -> tuple[Load, list[float]]:
    tokens = _prepare(url)
    rng = random.Random(seed)
    load, moments = Load(), []
    env = server_env(settings.model_copy(update={"audit_url": url}))
    for _ in range(kills):
        with (
            z.server(env, log) as (pid, base),
            clients(CLIENTS, hammer, base, tokens["case_manager"], body, load),
        ):
            _until_answers_flow(load)
            moment = rng.uniform(0.0, 0.25)
            time.sleep(moment)
            moments.append(moment)
            z.stop(pid, signal.SIGKILL)
    # After the last kill the store must still open, serve and take new records.
    with z.server(env, log) as (pid, base):
        auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
        r = httpx.post(f"{base}/v1/scores", json=body(10**6), headers=auth, timeout=30)
        assert r.status_code == 201, r.text
        load.scores.append(r.json()["score_id"])
        z.stop(pid, signal.SIGTERM)
    return load, moments


def _until_answers_flow(load: Load, timeout: float = 10.0) -> None:
    """Wait for the first answer of this round, so that the kill lands in a flowing load."""
    seen = len(load.scores)
    deadline = time.monotonic() + timeout
    while len(load.scores) == seen and time.monotonic() < deadline:
        time.sleep(0.002)


def _assert_every_answer_logged_once(url: str, load: Load) -> None:
    ids = Counter(audit_record_ids(url))
    assert not [i for i, n in ids.items() if n > 1], "a record id appears twice"
    missing = [i for i in load.scores + load.decisions if ids[i] != 1]
    assert not missing, f"{len(missing)} acknowledged answers have no audit record: {missing[:5]}"
    ok, checked, reason = verify_chain(url)
    assert ok, reason
    assert checked == sum(ids.values())


def test_sigkill_under_load_sqlite(
    forker: Zygote,
    model_settings: Settings,
    tmp_path: Path,
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    url = sqlite_url(tmp_path)
    started = time.monotonic()
    log = tmp_path / "server.log"
    load, moments = _kill_loop(forker, model_settings, url, budget.kill_points, budget.seed, log)
    _assert_every_answer_logged_once(url, load)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        engine.dispose()
    assert len(load.scores) > budget.kill_points  # the load really ran between kills
    record_property(
        "figures",
        f"crash safety (SQLite): {len(moments)} SIGKILLs 0-0.25 s into flowing load, "
        f"{len(load.scores)} scores and {len(load.decisions)} decisions acknowledged, "
        f"{load.transport_errors} requests cut by the kills, all acknowledged ones logged once; "
        f"{time.monotonic() - started:.1f} s",
    )


@pytest.mark.postgres
def test_sigkill_under_load_postgres(
    forker: Zygote,
    model_settings: Settings,
    pg_database_url: str,
    tmp_path: Path,
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    started = time.monotonic()
    load, moments = _kill_loop(
        forker,
        model_settings,
        pg_database_url,
        budget.pg_kill_points,
        budget.seed,
        tmp_path / "server.log",
    )
    _assert_every_answer_logged_once(pg_database_url, load)
    engine = sa.create_engine(pg_database_url)
    try:
        with engine.connect() as conn:
            seqs = conn.exec_driver_sql("SELECT min(seq), max(seq), count(*) FROM audit_records")
            low, high, count = seqs.one()
            assert (low, high) == (1, count), "the chain has a gap"
            trigger = conn.exec_driver_sql(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_records_append_only'"
            ).scalar_one()
            assert trigger == "O"
    finally:
        engine.dispose()
    record_property(
        "figures",
        f"crash safety (PostgreSQL): {len(moments)} SIGKILLs, {len(load.scores)} scores and "
        f"{len(load.decisions)} decisions acknowledged, all logged once; "
        f"{time.monotonic() - started:.1f} s",
    )


def test_sigterm_lets_requests_in_flight_finish(
    forker: Zygote, model_settings: Settings, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """Batches of 100 (long enough to be surely in flight) are answered after SIGTERM."""
    url = sqlite_url(tmp_path)
    tokens = _prepare(url)
    env = server_env(model_settings.model_copy(update={"audit_url": url}))
    auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
    results: list[tuple[int, list[str]]] = []
    lock = threading.Lock()
    with forker.server(env, tmp_path / "server.log") as (pid, base):

        def send(n: int) -> None:
            batch = {"records": [score_body(f"term{n}-{i:03d}") for i in range(100)]}
            r = httpx.post(f"{base}/v1/scores/batch", json=batch, headers=auth, timeout=60)
            ids = [s["score_id"] for s in r.json()["scores"]] if r.status_code == 201 else []
            with lock:
                results.append((r.status_code, ids))

        senders = [threading.Thread(target=send, args=(n,)) for n in range(6)]
        for t in senders:
            t.start()
        wait_until_logging(url, [f"term{n}-" for n in range(6)], after=0)
        status = forker.stop(pid, signal.SIGTERM)  # returns once the server has exited
        for t in senders:
            t.join(60)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=2)
    # uvicorn finishes what is in flight, then re-raises the signal: exit by SIGTERM, or 0.
    assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM) or status == 0
    assert [code for code, _ in results] == [201] * 6
    answered = [i for _, ids in results for i in ids]
    ids = Counter(audit_record_ids(url, kind="score"))
    assert all(ids[i] == 1 for i in answered) and len(ids) == len(answered) == 600
    assert verify_chain(url)[0]
    record_property(
        "figures", "SIGTERM under load: 6 batches (600 scores) in flight, all answered and logged"
    )
