"""Group commit of the audit log: grouped, ordered, all or nothing, and drained on close.

The writer is held up deterministically, by taking the lock it needs before its transaction
(the ``<db>.writer-lock`` flock on SQLite, the advisory lock on PostgreSQL), so that submissions
pile up and grouping can be asserted without any timing.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from riskscreen.audit import chain as audit
from riskscreen.audit import committers, table
from riskscreen.audit.chain import AuditStore, AuditUnavailable
from riskscreen.audit.db import write_transaction
from riskscreen.audit.records import AuditRecord, canonical_json, continue_chain

WRITER = "riskscreen-audit-writer"


@contextmanager
def writer_held_up(url: str) -> Iterator[None]:
    """Hold the lock the writer takes before its transaction, from outside the store."""
    if url.startswith("sqlite:///"):
        fd = os.open(url.removeprefix("sqlite:///") + ".writer-lock", os.O_RDONLY | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            key = table._ADVISORY_LOCK_KEY
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
    finally:
        engine.dispose()


def taken_by_the_writer(future: Future[Any]) -> None:
    """Wait until the writer has taken this submission into a transaction (a Future "runs")."""
    deadline = time.monotonic() + 60
    while not (future.running() or future.done()):
        assert time.monotonic() < deadline, "the writer never took the submission"
        time.sleep(0.001)


def seqs_in_db(store: AuditStore) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT seq FROM audit_records ORDER BY seq").scalars())


def writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == WRITER}


# --- grouping and order ------------------------------------------------------------------------


def test_concurrent_submits_are_grouped_ordered_and_all_resolve(
    store: AuditStore, store_url: str
) -> None:
    threads, per_thread = 8, 100
    futures: dict[int, list[Future[AuditRecord]]] = {}
    submitted = threading.Barrier(threads + 1)

    def submit_all(t: int) -> None:
        futures[t] = [store.submit("score", {"t": t, "i": i}) for i in range(per_thread)]
        submitted.wait()

    with writer_held_up(store_url):
        workers = [threading.Thread(target=submit_all, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        submitted.wait()  # everything is queued, the writer waits on the lock
    for worker in workers:
        worker.join()
    records = {t: [f.result() for f in fs] for t, fs in futures.items()}

    total = threads * per_thread
    every = [r for rs in records.values() for r in rs]
    assert sorted(r.seq for r in every) == list(range(1, total + 1))
    assert seqs_in_db(store) == list(range(1, total + 1))
    for t, rs in records.items():  # each thread's records in the order it submitted them
        assert [r.payload for r in rs] == [{"t": t, "i": i} for i in range(per_thread)]
        assert [r.seq for r in rs] == sorted(r.seq for r in rs)
    result = store.verify()
    assert result.ok and result.checked == total
    # The first transaction holds what was queued when the writer woke; the rest was queued
    # behind the lock and goes in batches of at most MAX_BATCH.
    stats = store.stats
    assert stats.records == total and stats.failed_transactions == 0
    assert stats.transactions <= 1 + -(-(total - 1) // audit.MAX_BATCH) < total


def test_threads_appending_concurrently_keep_one_chain(store: AuditStore) -> None:
    store.append("score", {"first": True})

    def append_some(t: int) -> list[int]:
        return [store.append("decision", {"t": t, "i": i}).seq for i in range(40)]

    results: list[list[int]] = []
    workers = [
        threading.Thread(target=lambda t=t: results.append(append_some(t))) for t in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(s for seqs in results for s in seqs) == list(range(2, 2 + 8 * 40))
    assert seqs_in_db(store) == list(range(1, 2 + 8 * 40))
    assert store.verify().ok
    assert store.stats.records == 1 + 8 * 40


def test_asyncio_callers_await_the_commit(store: AuditStore) -> None:
    async def score_many() -> list[AuditRecord]:
        return list(
            await asyncio.gather(
                *(asyncio.wrap_future(store.submit("score", {"i": i})) for i in range(50))
            )
        )

    records = asyncio.run(score_many())
    assert sorted(r.seq for r in records) == list(range(1, 51))
    assert store.verify().checked == 50


# --- append_many: one transaction, all or nothing ----------------------------------------------


def _poison(store: AuditStore) -> None:
    """Make the database refuse any record whose payload mentions 'poison'."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF strpos(NEW.payload, 'poison') > 0 THEN RAISE EXCEPTION 'poisoned'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                "FOR EACH ROW EXECUTE FUNCTION poison()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON audit_records "
                "WHEN NEW.payload LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )


def _cure(store: AuditStore) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER poison ON audit_records"
            if store.engine.dialect.name == "postgresql"
            else "DROP TRIGGER poison"
        )


def test_append_many_is_one_consecutive_transaction(store: AuditStore) -> None:
    store.append("score", {"before": True})
    before = store.stats.transactions
    records = store.append_many([("score", {"i": i}) for i in range(5)] + [("decision", {"i": 5})])
    assert [r.seq for r in records] == [2, 3, 4, 5, 6, 7]
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    assert records[-1].kind == "decision" and store.get(records[-1].record_id) == records[-1]
    assert store.stats.transactions == before + 1
    assert store.append_many([]) == []
    assert store.verify().ok


def test_a_failure_mid_batch_stores_none_of_it_and_the_store_recovers(
    store: AuditStore, store_url: str
) -> None:
    store.append("score", {"before": True})
    head = store.head()
    _poison(store)
    batch = [("score", {"i": 0}), ("score", {"i": 1}), ("score", {"poison": 2}), ("score", {})]
    with pytest.raises(AuditUnavailable) as raised:
        store.append_many(batch)
    assert isinstance(raised.value.__cause__, Exception)  # the database's own error, chained
    assert store.head() == head and seqs_in_db(store) == [1]

    # Everything committed in the same transaction fails with it, each future on its own.
    with writer_held_up(store_url):
        ahead = store.submit("score", {"ahead": True})
        taken_by_the_writer(ahead)  # so the next two are queued together behind it
        bystander = store.submit("score", {"bystander": True})
        poisoned = store.submit_many(batch)
    assert ahead.result().seq == 2
    for future in (bystander, poisoned):
        error = future.exception()
        assert isinstance(error, AuditUnavailable) and error.__cause__ is not None
    assert bystander.exception() is not poisoned.exception()
    assert store.head() == (2, ahead.result().hash) and seqs_in_db(store) == [1, 2]
    assert store.stats.failed_transactions == 2
    assert store.stats.failed_records == len(batch) + 1 + len(batch)

    _cure(store)  # the writer reconnected and goes on from the same head, without a gap
    records = store.append_many(batch)
    assert [r.seq for r in records] == [3, 4, 5, 6]
    assert records[0].prev_hash == ahead.result().hash
    assert store.append("score", {"after": True}).seq == 7
    assert store.verify().ok


def test_an_unacceptable_pair_queues_nothing(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="NaN"):
        store.append_many([("score", {"p": 1}), ("score", {"p": float("nan")})])
    with pytest.raises(ValueError, match="kind"):
        store.submit_many([("score", {"p": 1}), ("Bad Kind", {"p": 2})])
    with pytest.raises(TypeError):
        store.submit("score", {"x": object()})
    assert store.head() is None and store.stats.transactions == 0


def test_a_cancelled_submission_is_not_written(store: AuditStore, store_url: str) -> None:
    with writer_held_up(store_url):
        first = store.submit("score", {"n": 1})
        taken_by_the_writer(first)
        second = store.submit_many([("score", {"n": 2}), ("score", {"n": 3})])
        third = store.submit("score", {"n": 4})
        assert second.cancel()  # the writer has not taken it yet
        assert not first.cancel()  # this one it has: it will be written
    first.result(), third.result()
    assert [r.payload["n"] for r in store.list()] == [1, 4]
    assert store.verify().ok


# --- close ------------------------------------------------------------------------------------


def _writer_lock_fds(folder: Path) -> list[str]:
    """Lock files under ``folder`` that this process holds open."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [t for t in fds if t.startswith(str(folder)) and t.endswith(".writer-lock")]


def test_close_commits_what_was_submitted_then_refuses(store_url: str, tmp_path: Path) -> None:
    before_threads = writer_threads()
    store = AuditStore.from_url(store_url)
    try:
        store.create_schema()
        with writer_held_up(store_url):
            futures = [store.submit("score", {"i": i}) for i in range(300)]
        store.close()  # the writer is still busy with them: close waits until all are committed
        assert all(f.done() for f in futures)
        assert sorted(f.result().seq for f in futures) == list(range(1, 301))
        assert seqs_in_db(store) == list(range(1, 301))
        with pytest.raises(AuditUnavailable, match="closed"):
            store.submit("score", {"late": True})
        with pytest.raises(AuditUnavailable, match="closed"):
            store.append_many([("score", {"late": True})])
        assert store.verify().checked == 300  # reading still works
        assert not writer_threads() - before_threads
        assert not _writer_lock_fds(tmp_path)
        store.close()  # twice is fine
    finally:
        store.engine.dispose()


def test_a_dropped_store_stops_its_writer(tmp_path: Path) -> None:
    before_threads = writer_threads()
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    store.append("score", {"i": 1})
    [thread] = writer_threads() - before_threads
    engine = store.engine
    del store
    gc.collect()
    thread.join(60)
    assert not thread.is_alive()
    assert not _writer_lock_fds(tmp_path)
    engine.dispose()


def test_in_memory_sqlite_is_refused() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="memory"):
            AuditStore.from_url(url)


# --- processes ---------------------------------------------------------------------------------


def _process_writer(url: str, name: str, start: Event) -> None:
    store = AuditStore.from_url(url)
    start.wait(60)
    futures: list[Future[Any]] = []
    for i in range(150):
        futures.append(store.submit("score", {"w": name, "i": i}))
        if i % 15 == 0:
            futures.append(
                store.submit_many([("decision", {"w": name, "b": i, "j": j}) for j in range(5)])
            )
    for future in futures:
        future.result()
    store.close()


def _legacy_append(engine: sa.Engine, i: int) -> None:
    """The pre-group-commit path: one record per transaction, BEGIN IMMEDIATE, no flock."""
    with write_transaction(engine) as conn:
        last = conn.execute(
            sa.select(table.audit_records.c.seq, table.audit_records.c.hash)
            .order_by(table.audit_records.c.seq.desc())
            .limit(1)
        ).first()
        [record] = continue_chain(
            (last.seq, last.hash) if last else None, [("score", canonical_json({"legacy": i}))]
        )
        conn.execute(table.audit_records.insert().values(committers._row_values(record)))


def test_two_processes_and_a_legacy_writer_share_one_sqlite_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = AuditStore.from_url(url)
    store.create_schema()
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=_process_writer, args=(url, name, start)) for name in "ab"]
    for process in processes:
        process.start()
    start.set()
    for i in range(40):  # meanwhile, a writer that knows nothing of the flock
        _legacy_append(store.engine, i)
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    per_process = 150 + 10 * 5
    total = 2 * per_process + 40
    assert seqs_in_db(store) == list(range(1, total + 1))
    result = store.verify()
    assert result.ok and result.checked == total, result
    batches: dict[tuple[str, int], list[int]] = {}
    for record in store.list(kind="decision", limit=1000):
        payload = record.payload
        batches.setdefault((payload["w"], payload["b"]), []).append(record.seq)
    assert len(batches) == 20
    for seqs in batches.values():  # every submit_many landed as one consecutive run
        assert seqs == list(range(seqs[0], seqs[0] + 5))
    store.close()


def _forked_child(store: AuditStore) -> None:
    for i in range(30):
        store.append("decision", {"child": i})
    store.append_many([("decision", {"child_batch": j}) for j in range(5)])


def test_a_forked_child_starts_its_own_writer(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    store.append("score", {"parent": -1})  # the parent's writer is running at the fork
    child = multiprocessing.get_context("fork").Process(target=_forked_child, args=(store,))
    child.start()
    for i in range(30):
        store.append("score", {"parent": i})
    child.join(120)
    assert child.exitcode == 0
    assert seqs_in_db(store) == list(range(1, 1 + 1 + 30 + 30 + 5))
    assert store.verify().ok
    store.close()


@pytest.mark.postgres
def test_postgres_writer_survives_a_dropped_connection(store: AuditStore, pg_url: str) -> None:
    store.append("score", {"i": 1})
    database = store.engine.url.database
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
    finally:
        admin.dispose()
    assert store.append("score", {"i": 2}).seq == 2
    assert store.verify().ok
