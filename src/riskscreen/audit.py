"""Tamper-evident audit log: every risk score and every case manager's decision, hash-chained.

Each record stores the SHA-256 of the previous record, so editing, deleting, inserting or
reordering any record breaks the chain at that point, and :meth:`AuditStore.verify` names the
first broken position. An attacker who can rewrite the whole tail is caught only by comparing
with a head published earlier (``expected_head``): publish :meth:`AuditStore.head` regularly.

The hashed bytes are exactly the stored text, so an auditor can recompute any hash without this
code: ``sha256`` of the JSON object ``{"created_at", "kind", "payload", "prev_hash",
"record_id", "seq"}`` with sorted keys and no whitespace, ``payload`` being the stored JSON text
as a string and ``seq`` a number (see :func:`record_hash`).

Appends are serialised so that concurrent writers (threads and processes) never fork the chain:
SQLite takes the write lock with ``BEGIN IMMEDIATE`` (see :mod:`riskscreen.db`), PostgreSQL an
advisory transaction lock (``LOCK TABLE`` would need UPDATE or DELETE rights, which the service
role must not have). An append returns only after its commit; any failure raises
:class:`AuditUnavailable`, and the service then returns no score (fail closed).
"""

from __future__ import annotations

import builtins
import hashlib
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from riskscreen.db import StoreUnavailable, create_engine, grant_table, write_transaction

GENESIS_HASH = "0" * 64
MAX_PAGE = 1000
VERIFY_BATCH = 1000
# Where list(model_version=...) looks in a payload: payload["model"]["version"].
MODEL_VERSION_PATH = ("model", "version")
_ADVISORY_LOCK_KEY = 0x7269736B61756469  # "riskaudi": one writer at a time, per database
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")

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


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("audit payloads may not contain NaN or infinity")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


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


class AuditStore:
    """The audit log in one SQL database (SQLite by default, PostgreSQL in production)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> AuditStore:
        """Open the store at a SQLAlchemy URL, e.g. ``sqlite:///<data_dir>/audit.db``."""
        return cls(create_engine(url))

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def create_schema(self) -> None:
        """Create the table if missing; on PostgreSQL also ensure the append-only trigger is on.

        When both are in place this issues no DDL, so the service role (SELECT and INSERT only)
        can call it at start-up; if the trigger was dropped or disabled it cannot restore it,
        and start-up fails (AuditUnavailable) instead of running unprotected.
        """
        try:
            with write_transaction(self.engine) as conn:
                self._lock(conn)
                metadata.create_all(conn)
                if self.engine.dialect.name == "postgresql" and not _append_only_on(conn):
                    for statement in _PG_APPEND_ONLY:
                        conn.execute(sa.text(statement))
        except SQLAlchemyError as exc:
            raise AuditUnavailable("audit schema could not be created") from exc

    def append(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        """Append one record and return it only once it is durably committed.

        Raises:
            AuditUnavailable: the record was not (or not certainly) committed.
            ValueError, TypeError: the kind or payload is not acceptable; nothing was written.
        """
        if not _KIND.fullmatch(kind):
            raise ValueError(f"audit kind must match {_KIND.pattern}: {kind!r}")
        payload_json = canonical_json(payload)
        try:
            with write_transaction(self.engine) as conn:
                self._lock(conn)
                record = self._next_record(conn, kind, payload_json)
                conn.execute(audit_records.insert().values(_row_values(record)))
        except SQLAlchemyError as exc:
            raise AuditUnavailable("audit record could not be committed") from exc
        return record

    def _lock(self, conn: Connection) -> None:
        # SQLite already holds the write lock (BEGIN IMMEDIATE).
        if self.engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))

    def _next_record(self, conn: Connection, kind: str, payload_json: str) -> AuditRecord:
        last = conn.execute(
            sa.select(audit_records.c.seq, audit_records.c.hash)
            .order_by(audit_records.c.seq.desc())
            .limit(1)
        ).first()
        seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS_HASH)
        record_id, created_at = str(uuid.uuid4()), _utc_text(datetime.now(UTC))
        digest = record_hash(
            seq=seq,
            record_id=record_id,
            kind=kind,
            created_at=created_at,
            payload_json=payload_json,
            prev_hash=prev_hash,
        )
        return AuditRecord(seq, record_id, kind, created_at, payload_json, prev_hash, digest)

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
