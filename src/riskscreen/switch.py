"""The operator's stop switch, shared by every service process through the database.

When scoring is switched off, intake proceeds manually and the API says so (503). The state is
one row, so all workers behind a load balancer agree on it within their cache time.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from riskscreen.db import write_transaction

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
        metadata.create_all(self._engine)

    def state(self) -> tuple[bool, datetime | None]:
        """(enabled, when it last changed); scoring is on until someone switches it off."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(scoring_switch).where(scoring_switch.c.id == 1)).first()
        if row is None:
            return True, None
        return bool(row.enabled), datetime.fromisoformat(row.changed_at)

    def set(self, enabled: bool, key_id: str) -> datetime:
        now = datetime.now(UTC)
        values = {"enabled": enabled, "changed_at": now.isoformat(), "changed_by": key_id}
        with write_transaction(self._engine) as conn:
            updated = conn.execute(
                sa.update(scoring_switch).where(scoring_switch.c.id == 1).values(**values)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(scoring_switch).values(id=1, **values))
        return now
