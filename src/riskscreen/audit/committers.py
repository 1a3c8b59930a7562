"""How the group-commit writer appends a batch to the chain, one way per database driver.

:mod:`riskscreen.audit.writer` knows nothing about SQL; a committer from :func:`open_committer`
takes the chain lock, reads the last (seq, hash) under it, inserts the batch's records and
commits. SQLite through pysqlite gets a fast path on the raw sqlite3 connection; any other
database goes through SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from riskscreen.audit.db import connect_sqlite, write_transaction
from riskscreen.audit.records import AuditRecord, continue_chain
from riskscreen.audit.table import audit_records, lock_for_writing
from riskscreen.audit.writer import Committer


def open_committer(engine: Engine) -> Committer[tuple[str, str], AuditRecord]:
    """The committer for this engine's database; the writer opens one per thread."""
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        return _SqliteCommitter(engine)
    return _SqlAlchemyCommitter(engine)


_LAST_SQL = "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
_INSERT_SQL = (
    "INSERT INTO audit_records (seq, record_id, kind, created_at, payload, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class _SqliteCommitter:
    """Commits a batch through the DB-API, behind an flock that wakes the next writer at once."""

    def __init__(self, engine: Engine) -> None:
        self._conn = connect_sqlite(engine)
        try:
            path = _database_file(self._conn)
            flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC  # flock needs no write access
            self._lock_fd = os.open(f"{path}.writer-lock", flags, 0o644)
        except BaseException:
            self._conn.close()
            raise

    def commit(self, entries: Sequence[tuple[str, str]]) -> list[AuditRecord]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            return self._transaction(entries)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _transaction(self, entries: Sequence[tuple[str, str]]) -> list[AuditRecord]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            records = continue_chain(conn.execute(_LAST_SQL).fetchone(), entries)
            conn.executemany(_INSERT_SQL, [_row_tuple(record) for record in records])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the connection is dropped anyway
                    conn.execute("ROLLBACK")
            raise
        return records

    def close(self) -> None:
        try:
            os.close(self._lock_fd)
        finally:
            self._conn.close()


def _database_file(conn: sqlite3.Connection) -> str:
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return str(file)
    raise sqlite3.OperationalError("the audit log needs a SQLite file, not an in-memory database")


def _row_tuple(record: AuditRecord) -> tuple[int, str, str, str, str, str, str]:
    return (
        record.seq,
        record.record_id,
        record.kind,
        record.created_at,
        record.payload_json,
        record.prev_hash,
        record.hash,
    )


class _SqlAlchemyCommitter:
    """Commits a batch through SQLAlchemy: on PostgreSQL the advisory lock, then the INSERT.

    The INSERT is one executemany, which psycopg sends as a pipeline (one round trip); a
    multi-row VALUES measured three to four times slower here, SQLAlchemy binding each value.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def commit(self, entries: Sequence[tuple[str, str]]) -> list[AuditRecord]:
        with write_transaction(self._engine) as conn:
            lock_for_writing(conn)
            last = conn.execute(
                sa.select(audit_records.c.seq, audit_records.c.hash)
                .order_by(audit_records.c.seq.desc())
                .limit(1)
            ).first()
            records = continue_chain((last.seq, last.hash) if last else None, entries)
            conn.execute(audit_records.insert(), [_row_values(record) for record in records])
        return records

    def close(self) -> None:
        """Nothing held between batches: each checks a connection out of the engine's pool."""


def _row_values(record: AuditRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "record_id": record.record_id,
        "kind": record.kind,
        "created_at": record.created_at,
        "payload": record.payload_json,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }
