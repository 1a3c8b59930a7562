"""Engines for the stores that share one database: the audit log and the API keys.

Both stores need the same SQLite set-up to be safe with several processes writing (WAL, fsync on
every commit, a busy timeout, and a write lock taken at BEGIN rather than at the first write), so
it lives here once. PostgreSQL needs nothing special beyond a pre-ping, because a dead pooled
connection should not turn into a spurious 503.

Opening a SQLite URL creates the file, and ``create_schema`` creates the tables, which is right
for the service at first start and wrong for anything that only reads: a command run in the
wrong folder would verify a new, empty log. :func:`open_existing` opens a store that must
already be there, or raises :class:`StoreMissing` naming where it looked, having created no
file, directory or table.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_IMMEDIATE = "riskscreen_begin_immediate"
_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class StoreUnavailable(RuntimeError):
    """The database could not be read or written; callers must fail closed (HTTP 503)."""


class StoreMissing(StoreUnavailable):
    """A store that must already exist is not where the settings point; nothing was created.

    The message names the absolute path (SQLite) or the URL without its password (a server),
    and the settings that point elsewhere.
    """


def create_engine(url: str) -> Engine:
    """Create an engine whose SQLite connections are durable and take write locks up front."""
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        engine = sa.create_engine(url)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def open_existing(
    url: str,
    tables: Sequence[str],
    *,
    what: str = "audit store",
    setting: str = "RISKSCREEN_AUDIT_URL",
    made_by: str = "riskscreen serve",
) -> Engine:
    """An engine (as :func:`create_engine` makes it) on a database that exists and holds
    ``tables``, or :class:`StoreMissing`; creates no file, directory or table either way.

    SQLite: the file must exist (checked before any connection, since connecting would create
    it), its tables are looked up through a read-only connection, and the engine returned opens
    it with ``mode=rw``, so not even a file deleted after the check is made again. A server:
    the database must accept a connection and hold the tables; nothing is created there.

    Args:
        what, setting, made_by: name the store, the URL setting that points at it, and the
            command that makes a new one, for the message.

    Raises:
        StoreMissing: no such file, an in-memory database, or a table is absent.
        StoreUnavailable: no connection to the server (a database that does not exist too), or
            a file that is not a database.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _open_existing_server(url, tables, what, setting, made_by)
    path = _sqlite_file(parsed)
    if path is None or not path.is_file():
        raise _missing(what, str(path or ":memory:"), "", setting, made_by, sqlite=True)
    present = _sqlite_tables(path, what)
    absent = [t for t in tables if t not in present]
    if absent:
        why = f" (the file holds no {absent[0]} table)"
        raise _missing(what, str(path), why, setting, made_by, sqlite=True)
    query = {k: v for k, v in parsed.query.items() if k not in ("mode", "uri")}
    return create_engine(
        parsed.set(
            database=path.as_uri(), query={**query, "mode": "rw", "uri": "true"}
        ).render_as_string(hide_password=False)
    )


def is_database_url(url: str) -> bool:
    """Whether a store URI names a SQL database (an MLflow tracking URI may name a folder or a
    server instead, which :func:`open_existing` cannot check)."""
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return False
    return backend in ("sqlite", "postgresql", "mysql", "mssql", "oracle")


def store_location(engine: Engine) -> str:
    """Where an engine's database is, for messages: a SQLite file's absolute path (``:memory:``
    for none), otherwise the URL without its password."""
    if engine.dialect.name == "sqlite":
        return str(_sqlite_file(engine.url) or ":memory:")
    return engine.url.render_as_string(hide_password=True)


def _missing(
    what: str, location: str, why: str, setting: str, made_by: str, *, sqlite: bool
) -> StoreMissing:
    where = (
        f"set RISKSCREEN_DATA_DIR or {setting} to the one in use, or run from the folder that "
        "holds it"
        if sqlite
        else f"set {setting} to the database that holds it"
    )
    return StoreMissing(
        f"no {what} at {location}{why}; {where}; nothing was created "
        f"(a new one is made by `{made_by}`)"
    )


def _sqlite_file(url: sa.URL) -> Path | None:
    """The absolute path of a SQLite URL's file, in either URL form; None when in memory."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1", "True"):
        if url.query.get("mode") == "memory":
            return None
        parts = urllib.parse.urlsplit(database)
        database = urllib.parse.unquote(parts.path if parts.scheme == "file" else database)
    if database in ("", ":memory:"):
        return None
    return Path(os.path.abspath(database))


def _sqlite_tables(path: Path, what: str) -> set[str]:
    # Read-only, so a stray file is not made a WAL database. Even so, reading a WAL database
    # creates its -wal and -shm files; without a -wal file the database file holds everything
    # committed, and reading it as immutable creates nothing.
    wal = path.with_name(path.name + "-wal").exists()
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro{'' if wal else '&immutable=1'}", uri=True)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"the {what} at {path} cannot be read: {exc}") from exc
    return {name for (name,) in rows}


def _open_existing_server(
    url: str, tables: Sequence[str], what: str, setting: str, made_by: str
) -> Engine:
    engine = create_engine(url)
    location = store_location(engine)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            absent = [t for t in tables if not inspector.has_table(t)]
    except sa.exc.DBAPIError as exc:
        # A database that does not exist is not told apart from a server that cannot be reached
        # (libpq gives no SQLSTATE for either): the server's own words say which.
        engine.dispose()
        said = str(exc.orig).strip().splitlines()
        reason = f": {said[-1]}" if said else ""
        raise StoreUnavailable(
            f"the {what} at {location} cannot be read{reason}; check {setting}"
        ) from exc
    if absent:
        engine.dispose()
        why = f" (the database holds no {absent[0]} table)"
        raise _missing(what, location, why, setting, made_by, sqlite=False)
    return engine


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
