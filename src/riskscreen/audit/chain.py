"""Tamper-evident audit log: every risk score and every case manager's decision, hash-chained.

Each record stores the SHA-256 of the previous record, so editing, deleting, inserting or
reordering any record breaks the chain at that point, and :meth:`AuditStore.verify` names the
first broken position. An attacker who can rewrite the whole tail is caught only by comparing
with a head published earlier (``expected_head``): publish :meth:`AuditStore.head` regularly.

The hashed bytes are exactly the stored text, so an auditor can recompute any hash without this
code: ``sha256`` of the JSON object ``{"created_at", "kind", "payload", "prev_hash",
"record_id", "seq"}`` with sorted keys and no whitespace, ``payload`` being the stored JSON text
as a string and ``seq`` a number (see :func:`riskscreen.audit.records.record_hash`).

Appends are group-committed (:mod:`riskscreen.audit.writer`): callers queue records, and one
writer thread per store and process commits everything queued in one transaction, so the fsync
and the round trips are shared. :meth:`AuditStore.submit` returns a future that resolves only
after the COMMIT holding the record has returned; :meth:`AuditStore.append` waits for it; any
failure fails the futures of the whole transaction with :class:`AuditUnavailable`, and the
service then returns no score (fail closed).

Transactions are serialised so that concurrent writers (processes, and stores within one) never
fork the chain: SQLite takes the write lock with ``BEGIN IMMEDIATE`` (see
:mod:`riskscreen.audit.db`), PostgreSQL an advisory transaction lock (``LOCK TABLE`` would need
UPDATE or DELETE rights, which the service role must not have); the last (seq, hash) is read
under that lock. On SQLite the writer first takes an ``flock`` on ``<database>.writer-lock``:
correctness rests on ``BEGIN IMMEDIATE`` alone (other writers, such as the key store, do not
take the flock), but a writer waiting on the flock is woken as soon as it is released, where
SQLite's busy handler sleeps 1, 2, 5, 10 ... ms between retries.

This module is the store and its public API. The record format and hashing are in
:mod:`riskscreen.audit.records`, the table, trigger and lock in :mod:`riskscreen.audit.table`,
the append transactions in :mod:`riskscreen.audit.committers`, and the chain walk of
:meth:`AuditStore.verify` in :mod:`riskscreen.audit.verify`.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from riskscreen.audit.committers import open_committer
from riskscreen.audit.db import StoreUnavailable, create_engine, grant_table, write_transaction
from riskscreen.audit.records import AuditRecord, entry, utc_text
from riskscreen.audit.table import audit_records, ensure_append_only, lock_for_writing, metadata
from riskscreen.audit.verify import ChainChecker, VerifyResult
from riskscreen.audit.writer import GroupCommitWriter, WriterStats

MAX_PAGE = 1000
VERIFY_BATCH = 1000
# Where list(model_version=...) looks in a payload: payload["model"]["version"].
MODEL_VERSION_PATH = ("model", "version")
MAX_BATCH = 512  # most records per group-commit transaction


class AuditUnavailable(StoreUnavailable):
    """The audit log could not be written or read: serve nothing that would go unaudited."""


def _to_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        record_id=row.record_id,
        kind=row.kind,
        created_at=row.created_at,
        payload_json=row.payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditStore:
    """The audit log in one SQL database (SQLite by default, PostgreSQL in production).

    Not for in-memory SQLite: each connection there sees a database of its own, so the log
    would not survive the writer's connection, nor be seen by the readers.
    """

    def __init__(self, engine: Engine) -> None:
        if _in_memory_sqlite(engine):
            raise ValueError("the audit log needs a SQLite file or PostgreSQL, not :memory:")
        self.engine = engine
        self._writer: GroupCommitWriter[tuple[str, str], AuditRecord] = GroupCommitWriter(
            functools.partial(open_committer, engine),
            unavailable=AuditUnavailable,
            max_batch=MAX_BATCH,
            name="riskscreen-audit-writer",
        )

    @classmethod
    def from_url(cls, url: str) -> AuditStore:
        """Open the store at a SQLAlchemy URL, e.g. ``sqlite:///<data_dir>/audit.db``."""
        return cls(create_engine(url))

    def close(self) -> None:
        """Commit (or fail) what was submitted, stop the writer and release pooled connections.

        Reading still works afterwards; submitting raises AuditUnavailable.
        """
        self._writer.close()
        self.engine.dispose()

    @property
    def stats(self) -> WriterStats:
        """Transactions and records committed (and failed) by this process's writer."""
        return self._writer.stats

    def create_schema(self) -> None:
        """Create the table if missing; on PostgreSQL also ensure the append-only trigger is on.

        When both are in place this issues no DDL, so the service role (SELECT and INSERT only)
        can call it at start-up; if the trigger was dropped or disabled it cannot restore it,
        and start-up fails (AuditUnavailable) instead of running unprotected.
        """
        try:
            with write_transaction(self.engine) as conn:
                lock_for_writing(conn)
                metadata.create_all(conn)
                if self.engine.dialect.name == "postgresql":
                    ensure_append_only(conn)
        except SQLAlchemyError as exc:
            raise AuditUnavailable("audit schema could not be created") from exc

    def submit(self, kind: str, payload: Mapping[str, Any]) -> Future[AuditRecord]:
        """Queue one record; the future resolves once the transaction holding it has committed.

        Checked and serialised here, in the caller. From asyncio:
        ``await asyncio.wrap_future(store.submit(kind, payload))``. A future cancelled before
        the writer takes it is not written.

        Raises:
            ValueError, TypeError: the kind or payload is not acceptable; nothing is queued.
            AuditUnavailable: the store is closed. (A failed commit fails the future with it.)
        """
        return self._writer.submit_one(entry(kind, payload))

    def submit_many(
        self, records: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> Future[builtins.list[AuditRecord]]:
        """Queue (kind, payload) pairs to be committed all in one transaction, or none of them.

        They take consecutive places in the chain, in the order given. Raises as :meth:`submit`
        does; if any pair is unacceptable, none is queued.
        """
        entries = [entry(kind, payload) for kind, payload in records]
        if not entries:
            done: Future[builtins.list[AuditRecord]] = Future()
            done.set_result([])
            return done
        return self._writer.submit_many(entries)

    def append(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Append one record and return it only once it is durably committed.

        Raises:
            AuditUnavailable: the record was not (or not certainly) committed.
            ValueError, TypeError: the kind or payload is not acceptable; nothing was written.
        """
        self._refuse_in_writer_thread()
        return self.submit(kind, payload).result()

    def append_many(
        self, records: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> builtins.list[AuditRecord]:
        """Append (kind, payload) pairs in one transaction, all or nothing; see :meth:`append`."""
        self._refuse_in_writer_thread()
        return self.submit_many(records).result()

    def _refuse_in_writer_thread(self) -> None:
        # A future's done-callback runs in the writer thread, which would wait on itself.
        if self._writer.in_writer_thread():
            raise RuntimeError("the audit writer thread cannot wait for its own commits")

    def get(self, record_id: str) -> AuditRecord | None:
        """The record with this public id, if any."""
        query = sa.select(audit_records).where(audit_records.c.record_id == record_id)
        rows = self._read(query)
        return _to_record(rows[0]) if rows else None

    def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_version: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> builtins.list[AuditRecord]:
        """Records in seq order, filtered; page on by passing the last seq as ``after_seq``.

        ``since`` is inclusive and ``until`` exclusive; ``model_version`` matches
        ``payload["model"]["version"]`` compared as text.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        query = sa.select(audit_records).order_by(audit_records.c.seq).limit(limit)
        for condition in self._filters(since, until, model_version, kind, after_seq):
            query = query.where(condition)
        return [_to_record(row) for row in self._read(query)]

    def _filters(
        self,
        since: datetime | None,
        until: datetime | None,
        model_version: str | None,
        kind: str | None,
        after_seq: int | None,
    ) -> Iterator[sa.ColumnElement[bool]]:
        columns = audit_records.c
        if after_seq is not None:
            yield columns.seq > after_seq
        if since is not None:
            yield columns.created_at >= utc_text(since)
        if until is not None:
            yield columns.created_at < utc_text(until)
        if kind is not None:
            yield columns.kind == kind
        if model_version is not None:
            yield self._model_version() == str(model_version)

    def _model_version(self) -> sa.ColumnElement[str]:
        payload = audit_records.c.payload
        if self.engine.dialect.name == "postgresql":
            return sa.cast(payload, postgresql.JSONB)[MODEL_VERSION_PATH].astext
        path = "$." + ".".join(MODEL_VERSION_PATH)
        return sa.cast(sa.func.json_extract(payload, path), sa.Text)

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last record, or None for an empty log."""
        query = (
            sa.select(audit_records.c.seq, audit_records.c.hash)
            .order_by(audit_records.c.seq.desc())
            .limit(1)
        )
        rows = self._read(query)
        return (rows[0].seq, rows[0].hash) if rows else None

    def _read(self, query: sa.Select[Any]) -> builtins.list[Row[Any]]:
        try:
            with self.engine.connect() as conn:
                return builtins.list(conn.execute(query).all())
        except SQLAlchemyError as exc:
            raise AuditUnavailable("audit log could not be read") from exc

    def verify(self, *, expected_head: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the whole chain in seq order, in batches, and report the first broken record.

        Args:
            expected_head: a (seq, hash) published earlier; the chain must still contain it,
                which catches truncation and a rewritten tail.
        """
        checker = ChainChecker(expected_head)
        for row in self._rows_in_order():
            failure = checker.check(row)
            if failure is not None:
                return failure
        return checker.finish()

    def _rows_in_order(self) -> Iterator[Row[Any]]:
        # Keyset batches, each in its own short read transaction: bounded memory, and a long
        # verification never holds up appends (or SQLite WAL checkpoints).
        after: int | None = None
        while True:
            query = sa.select(audit_records).order_by(audit_records.c.seq).limit(VERIFY_BATCH)
            if after is not None:
                query = query.where(audit_records.c.seq > after)
            batch = self._read(query)
            yield from batch
            if len(batch) < VERIFY_BATCH:
                return
            after = batch[-1].seq


def grant_service_role(engine: Engine, role_name: str) -> None:
    """Let the service's PostgreSQL role read and append audit records, and nothing more.

    With only SELECT and INSERT, a compromised service cannot rewrite history; the owner is
    further held back by the append-only trigger, and anyone who disables it is caught by
    :meth:`AuditStore.verify`. Appends need no sequence: seq is computed under the lock.
    """
    grant_table(engine, role_name, "audit_records", "SELECT, INSERT")


def _in_memory_sqlite(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return False
    database = str(engine.url.database or "")
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or ("mode=memory" in str(engine.dialect.create_connect_args(engine.url)[0]))
    )
