"""API keys for the three roles, stored so that a copy of the database grants nobody access.

A token ``rs_<key_id>_<secret>`` is shown once, at creation. Only the SHA-256 of the key id and
secret is stored; the secret carries 256 random bits, so a fast hash is enough (a slow password
hash protects guessable secrets, which these are not). Authentication compares digests in
constant time and never raises on a malformed token: an unknown caller is simply not let in.

A service may keep what it authenticated for a moment (``cache_seconds``): a request whose key
was read from the database less than that long ago is let in from memory, by the same digest
comparison. Revoking through the same store takes effect at once; a revocation by another
process (the CLI, another worker) within ``cache_seconds``, as the stop switch does.

Creating and revoking keys should be audited by the caller, e.g.
``audit.append("key_created", key.as_payload())``; the payload never holds the secret.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from riskscreen.audit.db import StoreUnavailable, create_engine, grant_table, write_transaction

Role = Literal["case_manager", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_TOKEN = re.compile(r"rs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_MAX_NAME = 100

metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(_MAX_NAME), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32), nullable=True),
)


# The per-request lookup, as one DB-API statement: a SQLAlchemy Core query costs ~0.3 ms of
# Python per request on top of the database's ~10 µs; the table is this module's own.
class _KeyRow(NamedTuple):
    key_id: str
    name: str
    role: Role
    secret_hash: str
    created_at: str
    revoked_at: str | None


_BY_ID = f"SELECT {', '.join(_KeyRow._fields)} FROM api_keys WHERE key_id = {{}}"
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": ":1"}


class KeyStoreUnavailable(StoreUnavailable):
    """The key table could not be read or written: nobody can be authenticated (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public facts; the secret is never part of it."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    def as_payload(self) -> dict[str, str | None]:
        """The facts to put in an audit record when the key is created or revoked."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "revoked_at": self.revoked_at.isoformat(timespec="microseconds")
            if self.revoked_at
            else None,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _secret_hash(key_id: str, secret: str) -> str:
    # Binding the key id in means a stored hash cannot be moved to another key's row.
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


def _claim(token: str | None) -> tuple[str, str] | None:
    """(key id, digest of the presented secret) of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None
    key_id, secret = match.groups()
    return key_id, _secret_hash(key_id, secret)


def _to_key(row: Row[Any] | _KeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        created_at=datetime.fromisoformat(row.created_at),
        revoked_at=datetime.fromisoformat(row.revoked_at) if row.revoked_at else None,
    )


class KeyStore:
    """API keys in the ``api_keys`` table (may share the audit log's database)."""

    def __init__(
        self,
        engine: Engine,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._by_id = _BY_ID.format(_PLACEHOLDER[engine.dialect.paramstyle])
        # key_id -> (read at, stored digest, key); only active keys, only while fresh.
        self._recent: dict[str, tuple[float, str, ApiKey]] = {}

    @classmethod
    def from_url(cls, url: str) -> KeyStore:
        """Open the store at a SQLAlchemy URL."""
        return cls(create_engine(url))

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def create_schema(self) -> None:
        """Create the table if it does not exist."""
        try:
            with write_transaction(self.engine) as conn:
                metadata.create_all(conn)
        except SQLAlchemyError as exc:
            raise KeyStoreUnavailable("key table could not be created") from exc

    def create(self, role: Role, name: str) -> tuple[ApiKey, str]:
        """Issue a key; the returned token is the only copy of the secret there will ever be."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}: {role!r}")
        if not name.strip() or len(name) > _MAX_NAME:
            raise ValueError(f"name must be 1 to {_MAX_NAME} characters")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        created_at = _now()
        self._write(
            api_keys.insert().values(
                key_id=key_id,
                name=name,
                role=role,
                secret_hash=_secret_hash(key_id, secret),
                created_at=created_at,
            )
        )
        key = ApiKey(key_id, name, role, datetime.fromisoformat(created_at), None)
        return key, f"rs_{key_id}_{secret}"

    def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key this token belongs to, or None (malformed, unknown, wrong, revoked)."""
        claim = _claim(token)
        if claim is None:
            return None
        key_id, digest = claim
        row = self._lookup(key_id)
        if row is None or row.revoked_at is not None:
            self._recent.pop(key_id, None)
            return None
        if not hmac.compare_digest(row.secret_hash, digest):
            return None
        key = _to_key(row)
        if self.cache_seconds > 0:
            self._recent[key_id] = (self._clock(), row.secret_hash, key)
        return key

    def recently_authenticated(self, token: str | None) -> ApiKey | None:
        """The key this token was authenticated as less than `cache_seconds` ago, without
        reading the database (so an event loop may call it); None means: call `authenticate`."""
        claim = _claim(token)
        entry = self._recent.get(claim[0]) if claim is not None else None
        if claim is None or entry is None or self._clock() - entry[0] >= self.cache_seconds:
            return None
        return entry[2] if hmac.compare_digest(entry[1], claim[1]) else None

    def list(self) -> builtins.list[ApiKey]:
        """All keys, revoked ones included, oldest first."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        return [_to_key(row) for row in self._read(query)]

    def count(self, *, include_revoked: bool = False) -> int:
        """How many keys exist (by default only those still active)."""
        query = sa.select(sa.func.count()).select_from(api_keys)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        count: int = self._read(query)[0][0]
        return count

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key at once and return it (None if unknown); a second revoke changes nothing."""
        self._write(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        self._recent.pop(key_id, None)
        row = self._row(key_id)
        return _to_key(row) if row is not None else None

    def _lookup(self, key_id: str) -> _KeyRow | None:
        """The key's row, read on a pooled connection (revocation counts from the next call)."""
        try:
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                cursor.execute(self._by_id, (key_id,))
                row = cursor.fetchone()
                cursor.close()
            finally:
                conn.close()  # back to the pool, rolled back
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            raise KeyStoreUnavailable("key table could not be read") from exc
        return _KeyRow(*row) if row is not None else None

    def _row(self, key_id: str) -> Row[Any] | None:
        rows = self._read(sa.select(api_keys).where(api_keys.c.key_id == key_id))
        return rows[0] if rows else None

    def _read(self, query: sa.Select[Any]) -> builtins.list[Row[Any]]:
        try:
            with self.engine.connect() as conn:
                return builtins.list(conn.execute(query).all())
        except SQLAlchemyError as exc:
            raise KeyStoreUnavailable("key table could not be read") from exc

    def _write(self, statement: sa.Executable) -> None:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(statement)
        except SQLAlchemyError as exc:
            raise KeyStoreUnavailable("key table could not be written") from exc


def grant_service_role(engine: Engine, role_name: str) -> None:
    """Let the service's PostgreSQL role read, issue and revoke keys, and nothing more.

    The service never needs to delete a key or change its hash, role or name, so it may not.
    """
    grant_table(engine, role_name, "api_keys", "SELECT, INSERT, UPDATE (revoked_at)")
