"""Tamper-evident audit log: every risk score and every case manager's decision, hash-chained.

Each record stores the SHA-256 of the previous record, so editing, deleting, inserting or
reordering any record breaks the chain at that point, and :meth:`AuditStore.verify` names the
first broken position. An attacker who can rewrite the whole tail is caught only by comparing
with a head published earlier (``expected_head``): publish :meth:`AuditStore.head` regularly.

The hashed bytes are exactly the stored text, so an auditor can recompute any hash without this
code: ``sha256`` of the JSON object ``{"created_at", "kind", "payload", "prev_hash",
"record_id", "seq"}`` with sorted keys and no whitespace, ``payload`` being the stored JSON text
as a string and ``seq`` a number (see :func:`record_hash`).

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
SQLite's busy handler sleeps 1, 2, 5, 10 ... ms between retries. """

from __future__ import annotations

import builtins
import contextlib
import fcntl
import functools
import hashlib
import math
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from riskscreen.audit.db import (
    StoreUnavailable,
    connect_sqlite,
    create_engine,
    grant_table,
    write_transaction,
)
from riskscreen.audit.writer import Committer, GroupCommitWriter, WriterStats

GENESIS_HASH = "0" * 64
MAX_PAGE = 1000
VERIFY_BATCH = 1000
# Where list(model_version=...) looks in a payload: payload["model"]["version"].
MODEL_VERSION_PATH = ("model", "version")
_ADVISORY_LOCK_KEY = 0x7269736B61756469  # "riskaudi": one writer at a time, per database
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_BATCH = 512  # most records per group-commit transaction

metadata = sa.MetaData()
audit_records = sa.Table(
    "audit_records",
    metadata,
    # INTEGER PRIMARY KEY on SQLite is the rowid (64-bit there), so seq lookups are direct.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("record_id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_records_created_at", "created_at"),
)

_PG_APPEND_ONLY = [
    """
    CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records",
    """
    CREATE TRIGGER audit_records_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()
    """,
]


class AuditUnavailable(StoreUnavailable):
    """The audit log could not be written or read: serve nothing that would go unaudited."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record, exactly as hashed; ``payload`` parses the stored JSON text."""

    seq: int
    record_id: str
    kind: str
    created_at: str
    payload_json: str
    prev_hash: str
    hash: str

    @property
    def payload(self) -> dict[str, Any]:
        """The caller's payload as a dict (parsed anew on each access)."""
        parsed: dict[str, Any] = orjson.loads(self.payload_json)
        return parsed


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain verification.

    ``first_bad_seq`` is the chain position where verification first failed: records
    ``1 .. first_bad_seq - 1`` are intact, and ``checked`` counts them (all records when ok).
    ``head`` is the last verified (seq, hash), worth publishing for later truncation checks.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head: tuple[int, str] | None = None


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Serialise a payload to the one text that is stored and hashed.

    Keys sorted, no whitespace, UTF-8, floats in their shortest round-trip form. NaN and
    infinities are refused rather than silently turned into ``null``.
    """
    if not isinstance(payload, Mapping):
        raise TypeError("an audit payload must be a JSON object")
    _reject_non_finite(payload)
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"audit payload is not plain JSON: {exc}") from exc


_JSON_LEAVES = frozenset({str, int, bool, type(None)})


def _reject_non_finite(payload: Any) -> None:
    # Runs on every record, so plain JSON types are tested by exact type first; subclasses
    # (numpy floats, other Mappings) fall through to the isinstance checks.
    stack = [payload]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind in _JSON_LEAVES:
            continue
        if kind is dict:
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("audit payloads may not contain NaN or infinity")
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)


def record_hash(
    *, seq: int, record_id: str, kind: str, created_at: str, payload_json: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of a record's canonical serialisation; covers every stored column."""
    material = {
        "created_at": created_at,
        "kind": kind,
        "payload": payload_json,
        "prev_hash": prev_hash,
        "record_id": record_id,
        "seq": seq,
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime; audit times are UTC")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


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


def _entry(kind: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, canonical payload JSON), or ValueError/TypeError if either is unacceptable."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"audit kind must match {_KIND.pattern}: {kind!r}")
    return kind, canonical_json(payload)


def _chain(
    last: tuple[int, str] | None, entries: Sequence[tuple[str, str]]
) -> builtins.list[AuditRecord]:
    """The records that continue the chain after ``last`` (seq, hash); call it under the lock."""
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    records = []
    for kind, payload_json in entries:
        seq += 1
        record_id, created_at = str(uuid.uuid4()), _utc_text(datetime.now(UTC))
        digest = record_hash(
            seq=seq,
            record_id=record_id,
            kind=kind,
            created_at=created_at,
            payload_json=payload_json,
            prev_hash=prev_hash,
        )
        records.append(
            AuditRecord(seq, record_id, kind, created_at, payload_json, prev_hash, digest)
        )
        prev_hash = digest
    return records


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
            functools.partial(_open_committer, engine),
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
                _lock_for_writing(conn)
                metadata.create_all(conn)
                if self.engine.dialect.name == "postgresql" and not _append_only_on(conn):
                    for statement in _PG_APPEND_ONLY:
                        conn.execute(sa.text(statement))
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
        return self._writer.submit_one(_entry(kind, payload))

    def submit_many(
        self, records: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> Future[builtins.list[AuditRecord]]:
        """Queue (kind, payload) pairs to be committed all in one transaction, or none of them.

        They take consecutive places in the chain, in the order given. Raises as :meth:`submit`
        does; if any pair is unacceptable, none is queued.
        """
        entries = [_entry(kind, payload) for kind, payload in records]
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
            yield columns.created_at >= _utc_text(since)
        if until is not None:
            yield columns.created_at < _utc_text(until)
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
        checker = _ChainChecker(expected_head)
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


def _append_only_on(conn: Connection) -> bool:
    query = sa.text(
        "SELECT 1 FROM pg_trigger WHERE tgname = 'audit_records_append_only'"
        " AND tgrelid = to_regclass('audit_records') AND tgenabled IN ('O', 'A')"
    )
    return conn.execute(query).first() is not None


def grant_service_role(engine: Engine, role_name: str) -> None:
    """Let the service's PostgreSQL role read and append audit records, and nothing more.

    With only SELECT and INSERT, a compromised service cannot rewrite history; the owner is
    further held back by the append-only trigger, and anyone who disables it is caught by
    :meth:`AuditStore.verify`. Appends need no sequence: seq is computed under the lock.
    """
    grant_table(engine, role_name, "audit_records", "SELECT, INSERT")


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


def _lock_for_writing(conn: Connection) -> None:
    """Serialise writers; SQLite already holds its write lock (BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))


def _in_memory_sqlite(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return False
    database = str(engine.url.database or "")
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or ("mode=memory" in str(engine.dialect.create_connect_args(engine.url)[0]))
    )


def _open_committer(engine: Engine) -> Committer[tuple[str, str], AuditRecord]:
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

    def commit(self, entries: Sequence[tuple[str, str]]) -> builtins.list[AuditRecord]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            return self._transaction(entries)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _transaction(self, entries: Sequence[tuple[str, str]]) -> builtins.list[AuditRecord]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            records = _chain(conn.execute(_LAST_SQL).fetchone(), entries)
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

    def commit(self, entries: Sequence[tuple[str, str]]) -> builtins.list[AuditRecord]:
        with write_transaction(self._engine) as conn:
            _lock_for_writing(conn)
            last = conn.execute(
                sa.select(audit_records.c.seq, audit_records.c.hash)
                .order_by(audit_records.c.seq.desc())
                .limit(1)
            ).first()
            records = _chain((last.seq, last.hash) if last else None, entries)
            conn.execute(audit_records.insert(), [_row_values(record) for record in records])
        return records

    def close(self) -> None:
        """Nothing held between batches: each checks a connection out of the engine's pool."""


class _ChainChecker:
    """Checks records one by one in stored seq order, remembering only the previous hash."""

    def __init__(self, expected_head: tuple[int, str] | None) -> None:
        self.expected_head = expected_head
        self.next_seq = 1
        self.prev_hash = GENESIS_HASH

    def _fail(self, reason: str) -> VerifyResult:
        checked = self.next_seq - 1
        head = (checked, self.prev_hash) if checked else None
        return VerifyResult(False, checked, self.next_seq, reason, head)

    def check(self, row: Row[Any]) -> VerifyResult | None:
        """None if the row continues the chain (and advances it), else the failure."""
        position = self.next_seq
        if row.seq != position:
            what = "missing record" if row.seq > position else "out-of-sequence record"
            return self._fail(f"expected record {position}, found seq {row.seq}: {what}")
        if row.prev_hash != self.prev_hash:
            return self._fail(f"prev_hash does not match the hash of record {position - 1}")
        recomputed = record_hash(
            seq=row.seq,
            record_id=row.record_id,
            kind=row.kind,
            created_at=row.created_at,
            payload_json=row.payload,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            return self._fail("stored hash does not match the record's content")
        if self._contradicts_head(position, row.hash):
            return self._fail("hash differs from the published head: the chain was rewritten")
        self.next_seq, self.prev_hash = position + 1, row.hash
        return None

    def _contradicts_head(self, seq: int, hash_: str) -> bool:
        head = self.expected_head
        return head is not None and head[0] == seq and head[1] != hash_

    def finish(self) -> VerifyResult:
        """The result once every stored record has passed."""
        checked = self.next_seq - 1
        if self.expected_head and self.expected_head[0] > checked:
            return self._fail(
                f"chain ends at {checked}, below the published head {self.expected_head[0]}: "
                "truncated"
            )
        return VerifyResult(True, checked, head=(checked, self.prev_hash) if checked else None)
