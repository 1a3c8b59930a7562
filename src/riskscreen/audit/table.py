"""The audit log in SQL: its table, PostgreSQL's append-only trigger, and the writers' lock.

Shared by the store (:mod:`riskscreen.audit.chain`), which creates the schema and reads, and the
committers (:mod:`riskscreen.audit.committers`), which append.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_ADVISORY_LOCK_KEY = 0x7269736B61756469  # "riskaudi": one writer at a time, per database

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


def ensure_append_only(conn: Connection) -> None:
    """(Re)install PostgreSQL's trigger that refuses UPDATE, DELETE and TRUNCATE if it is off.

    Issues no DDL when the trigger is present and enabled.
    """
    if not _append_only_on(conn):
        for statement in _PG_APPEND_ONLY:
            conn.execute(sa.text(statement))


def _append_only_on(conn: Connection) -> bool:
    query = sa.text(
        "SELECT 1 FROM pg_trigger WHERE tgname = 'audit_records_append_only'"
        " AND tgrelid = to_regclass('audit_records') AND tgenabled IN ('O', 'A')"
    )
    return conn.execute(query).first() is not None


def lock_for_writing(conn: Connection) -> None:
    """Serialise writers; SQLite already holds its write lock (BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
