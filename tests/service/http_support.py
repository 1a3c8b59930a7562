"""Helpers for the service tier: the app over HTTP with a key per role, intake rows as JSON.

Imported by the service tests and their conftest (tests/service is on sys.path under pytest's
default import mode).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from riskscreen.audit.keys import ApiKey, Role
from riskscreen.settings import Settings
from service.app import create_app
from service.state import AppState

# Who each test can act as: a name per key, and its role.
PEOPLE: dict[str, Role] = {
    "cm": "case_manager",
    "cm2": "case_manager",
    "auditor": "auditor",
    "admin": "admin",
}

# This tier tests what the endpoints do, many requests a second per key; the per-key rate limit
# has its own tests (tests/reliability), so settings here put it out of reach.
UNLIMITED = {"rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9}


def json_value(value: Any) -> Any:
    """A table cell as the JSON a client would send: dates ISO, numpy scalars plain, NaN null."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: json_value(value) for name, value in row.items()}


def score_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """A POST /v1/scores body for one intake row (case_ref beside the intake mapping)."""
    values = row_json(row)
    return {"case_ref": values.pop("case_ref"), "intake": values}


@dataclass
class Service:
    """A running app (lifespan entered) with one key per person in PEOPLE."""

    client: TestClient
    settings: Settings
    keys: dict[str, ApiKey] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        state: AppState = self.client.app.state.riskscreen  # type: ignore[attr-defined]
        return state

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def add_key(self, who: str, role: Role) -> None:
        self.keys[who], self.tokens[who] = self.state.keys.create(role, who)

    def score(self, body: Mapping[str, Any], who: str = "cm", **kw: Any) -> dict[str, Any]:
        """POST one score as `who`, asserting that it was served."""
        response = self.client.post("/v1/scores", json=body, headers=self.auth(who), **kw)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def audit_count(self) -> int:
        with self.state.audit.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM audit_records").scalar_one())


@contextmanager
def running(settings: Settings) -> Iterator[Service]:
    """An app on `settings` with its lifespan entered and one key per person in PEOPLE."""
    with TestClient(create_app(settings)) as client:
        service = Service(client, settings)
        for who, role in PEOPLE.items():
            service.add_key(who, role)
        # FastAPI builds a router's routes on the first request, silencing a pydantic warning
        # with warnings.catch_warnings(), which is not thread-safe: built first by two threads
        # at once, the warning escapes into pytest's "error" filter. One request here builds
        # them on this thread before any test sends concurrent ones.
        assert client.get("/healthz").status_code == 200
        yield service


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'audit.db'}"


# --- concurrency: shared by the SQLite and PostgreSQL tests --------------------------------------

THREADS, PER_THREAD = 8, 25


def score_concurrently(
    service: Service, bodies: list[dict[str, Any]], threads: int = THREADS
) -> list[dict[str, Any]]:
    """`threads` callers, each posting PER_THREAD scores one after another."""

    def caller(i: int) -> list[dict[str, Any]]:
        mine = bodies[i * PER_THREAD : (i + 1) * PER_THREAD]
        assert len(mine) == PER_THREAD
        return [service.score(b, who="cm" if i % 2 else "cm2") for b in mine]

    with ThreadPoolExecutor(threads) as pool:
        return [s for batch in pool.map(caller, range(threads)) for s in batch]


def assert_chain_holds(service: Service, scores: list[dict[str, Any]]) -> None:
    """The log verifies, has no gap, and holds exactly these scores as served."""
    verify = service.client.get("/v1/audit/verify", headers=service.auth("auditor")).json()
    assert verify["ok"] is True, verify
    records = service.state.audit.list(limit=1000)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))  # no gap, no fork
    assert verify["checked"] == len(records)
    score_records = [r for r in records if r.kind == "score"]
    assert len(score_records) == THREADS * PER_THREAD
    assert {r.record_id for r in score_records} == {s["score_id"] for s in scores}
    logged = {r.record_id: r.payload["outputs"]["probability"] for r in score_records}
    assert all(logged[s["score_id"]] == s["probability"] for s in scores)
