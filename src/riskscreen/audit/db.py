"""Engines for the stores that share one database: the audit log and the API keys.

Both stores need the same SQLite set-up to be safe with several processes writing (WAL, fsync on
every commit, a busy timeout, and a write lock taken at BEGIN rather than at the first write), so
it lives here once. PostgreSQL needs nothing special beyond a pre-ping, because a dead pooled
connection should not turn into a spurious 503.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_IMMEDIATE = "riskscreen_begin_immediate"
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class StoreUnavailable(RuntimeError):
    """The database could not be read or written; callers must fail closed (HTTP 503)."""


def create_engine(url: str) -> Engine:
    """Create an engine whose SQLite connections are durable and take write locks up front."""
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def connect_sqlite(engine: Engine) -> sqlite3.Connection:
    """A DB-API connection to an engine's SQLite database, set up as the engine's own are.

    For a writer that bypasses SQLAlchemy on its hot path: same file (URI forms included, via
    the dialect), WAL, synchronous FULL, the busy timeout, and no implicit BEGIN.
    """
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    connect: Any = sqlite3.connect  # the dialect's arguments, typed loosely by SQLAlchemy
    connection: sqlite3.Connection = connect(*args, **kwargs)
    try:
        _on_sqlite_connect(connection, None)
    except BaseException:
        connection.close()
        raise
    return connection


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's legacy transaction handling would defer BEGIN to the first write, so a
    # read-then-insert could race; switch it off and let _on_sqlite_begin emit BEGIN itself
    # (the recipe in SQLAlchemy's SQLite dialect docs for Python < 3.12).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that reads the latest committed state and commits on leaving the block.

    On SQLite it begins with ``BEGIN IMMEDIATE``: the database write lock is held from the start,
    so nothing can commit between a read and the write that depends on it. On PostgreSQL it runs
    at READ COMMITTED, so that each statement after a lock wait sees what the previous holder
    committed (a REPEATABLE READ snapshot would be taken before the wait).
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_IMMEDIATE: True})
        elif engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            yield conn


def grant_table(engine: Engine, role_name: str, table: str, privileges: str) -> None:
    """Replace whatever a PostgreSQL role may do on ``table`` with exactly ``privileges``.

    Also grants USAGE on the table's schema, without which no table privilege is usable.
    """
    if engine.dialect.name != "postgresql":
        raise ValueError("database roles and grants exist only on PostgreSQL")
    if not _ROLE_NAME.fullmatch(role_name):
        raise ValueError(f"not a plain role name: {role_name!r}")
    quote = engine.dialect.identifier_preparer.quote_identifier
    role = quote(role_name)
    with engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {role}")
        conn.exec_driver_sql(f"REVOKE ALL ON {quote(table)} FROM {role}")
        conn.exec_driver_sql(f"GRANT {privileges} ON {quote(table)} TO {role}")
