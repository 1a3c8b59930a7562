"""The operator's stop switch, shared by every service process through the database.

When scoring is switched off, intake proceeds manually and the API says so (503). The state is
one row, so all workers behind a load balancer agree on it within their cache time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from riskscreen.audit.db import StoreUnavailable, grant_table, write_transaction

metadata = sa.MetaData()
scoring_switch = sa.Table(
    "scoring_switch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.String(32), nullable=False),
    sa.Column("changed_by", sa.String(16), nullable=True),
)


class ScoringSwitchStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_schema(self) -> None:
        """Create the table if it does not exist.

        In a write transaction, as the other stores do: worker processes starting together on a
        new SQLite file would otherwise each check for the table and then try to create it, and
        the one that lost the upgrade to a write lock failed start-up ("database is locked").
        """
        try:
            with write_transaction(self._engine) as conn:
                metadata.create_all(conn)
        except SQLAlchemyError as exc:
            raise StoreUnavailable("the scoring switch table could not be created") from exc

    def state(self) -> tuple[bool, datetime | None]:
        """(enabled, when it last changed); scoring is on until someone switches it off."""
        try:
            with self._engine.connect() as conn:
                query = sa.select(scoring_switch).where(scoring_switch.c.id == 1)
                row = conn.execute(query).first()
        except SQLAlchemyError as exc:
            raise StoreUnavailable("the scoring switch could not be read") from exc
        if row is None:
            return True, None
        return bool(row.enabled), datetime.fromisoformat(row.changed_at)

    def set(self, enabled: bool, key_id: str) -> datetime:
        now = datetime.now(UTC)
        values = {"enabled": enabled, "changed_at": now.isoformat(), "changed_by": key_id}
        try:
            with write_transaction(self._engine) as conn:
                updated = conn.execute(
                    sa.update(scoring_switch).where(scoring_switch.c.id == 1).values(**values)
                ).rowcount
                if not updated:
                    conn.execute(sa.insert(scoring_switch).values(id=1, **values))
        except SQLAlchemyError as exc:
            raise StoreUnavailable("the scoring switch could not be written") from exc
        return now


def grant_service_role(engine: Engine, role_name: str) -> None:
    """Let the service's PostgreSQL role read the switch and let its admins flip it.

    Without this, a service role holding only the audit and key grants cannot even read whether
    scoring is on, so it could not score at all.
    """
    grant_table(engine, role_name, "scoring_switch", "SELECT, INSERT, UPDATE")
