"""Unit-tier fixtures shared by the audit tests: one audit store per test, on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riskscreen.audit.chain import AuditStore

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, or a PostgreSQL database of its own on the private test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[AuditStore]:
    audit_store = AuditStore.from_url(store_url)
    audit_store.create_schema()
    yield audit_store
    audit_store.close()
