"""PROTOTYPES (bench only, not shipped) of the hot-path changes the benchmark argues for.

Each keeps the guarantee it touches and changes only how fast it is kept (the third, exact
TreeSHAP from leaf tables, now ships as `riskscreen.treeshap`):

- `LockedSqliteAuditStore`: the same records, chain and hashes as `AuditStore.append` (verify()
  accepts them), written through the DB-API with the same pragmas (WAL, synchronous=FULL,
  BEGIN IMMEDIATE, commit before returning); writers queue on a process lock and an advisory
  file lock, which wake the next writer at once, instead of on SQLite's busy handler, which
  sleeps 1, 2, 5, 10 ... ms between retries.
- `FastKeyStore`: the same key lookup (digest compare, revocation honoured on the next request)
  through one prepared DB-API statement instead of a SQLAlchemy Core query per request.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import uuid
from collections import namedtuple
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskscreen.audit import (
    _KIND,
    GENESIS_HASH,
    AuditRecord,
    AuditStore,
    AuditUnavailable,
    _utc_text,
    canonical_json,
    record_hash,
)
from riskscreen.db import SQLITE_BUSY_TIMEOUT_MS, create_engine
from riskscreen.keys import KeyStore, KeyStoreUnavailable

# --- the audit append through the DB-API, writers queued on locks that wake at once ---------


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///...` URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a SQLite file URL: {url!r}")
    return Path(url.removeprefix(prefix))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


_INSERT = (
    "INSERT INTO audit_records (seq, record_id, kind, created_at, payload, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LAST = "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"


class LockedSqliteAuditStore(AuditStore):
    """AuditStore whose append uses the DB-API and wake-at-once locks (SQLite only)."""

    def __init__(self, path: Path) -> None:
        super().__init__(create_engine(f"sqlite:///{path}"))
        self.path = path
        self._local = threading.local()
        self._thread_lock = threading.Lock()
        self._lock_file = open(f"{path}.writer-lock", "a+b")  # noqa: SIM115 - held for life

    def close(self) -> None:
        self._lock_file.close()
        super().close()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = _connect(self.path)
        return conn

    def append(self, kind: str, payload: Mapping[str, Any]) -> AuditRecord:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"audit kind must match {_KIND.pattern}: {kind!r}")
        payload_json = canonical_json(payload)
        try:
            with self._thread_lock:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
                try:
                    return self._append_locked(kind, payload_json)
                finally:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        except sqlite3.Error as exc:
            raise AuditUnavailable("audit record could not be committed") from exc

    def _append_locked(self, kind: str, payload_json: str) -> AuditRecord:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(_LAST).fetchone()
            seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
            record_id, created_at = str(uuid.uuid4()), _utc_text(datetime.now(UTC))
            digest = record_hash(
                seq=seq,
                record_id=record_id,
                kind=kind,
                created_at=created_at,
                payload_json=payload_json,
                prev_hash=prev_hash,
            )
            conn.execute(
                _INSERT, (seq, record_id, kind, created_at, payload_json, prev_hash, digest)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return AuditRecord(seq, record_id, kind, created_at, payload_json, prev_hash, digest)


# --- the key lookup through one prepared statement -----------------------------------------

_KeyRow = namedtuple("_KeyRow", "key_id name role secret_hash created_at revoked_at")
_KEY_BY_ID = (
    "SELECT key_id, name, role, secret_hash, created_at, revoked_at FROM api_keys WHERE key_id = ?"
)


class FastKeyStore(KeyStore):
    """KeyStore whose per-request lookup is one DB-API statement (SQLite only)."""

    def __init__(self, path: Path) -> None:
        super().__init__(create_engine(f"sqlite:///{path}"))
        self.path = path
        self._local = threading.local()

    def _row(self, key_id: str) -> Any:
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = _connect(self.path)
            row = conn.execute(_KEY_BY_ID, (key_id,)).fetchone()
        except sqlite3.Error as exc:
            raise KeyStoreUnavailable("key table could not be read") from exc
        return _KeyRow(*row) if row else None
