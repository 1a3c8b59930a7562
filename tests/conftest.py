"""Shared fixtures.

PostgreSQL: production keeps the audit log there, so the tests use a real server.
``pg_url`` is the superuser URL of a server started by ``scripts/ensure-postgres`` (or taken from
``RISKSCREEN_TEST_PG_URL``); ``pg_database_url`` gives each test a database of its own and drops
it afterwards. If no server can be had the test fails with the script's output: a skipped
production path would pass unnoticed.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# The model and service tiers share one small trained, registered model per test process.
pytest_plugins = ["model_fixtures"]

_ENSURE_POSTGRES = Path(__file__).resolve().parents[1] / "scripts" / "ensure-postgres"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Superuser URL of the test PostgreSQL server."""
    url = os.environ.get("RISKSCREEN_TEST_PG_URL")
    if url:
        return url
    try:
        done = subprocess.run(
            ["bash", str(_ENSURE_POSTGRES)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired as exc:  # its captured output is bytes even with text=True
        output = b"".join(part for part in (exc.stdout, exc.stderr) if isinstance(part, bytes))
        pytest.fail(f"scripts/ensure-postgres timed out:\n{output.decode(errors='replace')}")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(
            f"scripts/ensure-postgres failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def pg_database_url(pg_url: str) -> Iterator[str]:
    """URL of a fresh, uniquely named database on the test server, dropped after the test."""
    name = f"rs_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def pg_login_role(pg_database_url: str) -> Iterator[tuple[str, str]]:
    """A fresh unprivileged login role: (role name, URL of the test database as that role)."""
    role = f"rs_role_{uuid.uuid4().hex[:16]}"
    owner = sa.create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    try:
        with owner.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        yield role, sa.make_url(pg_database_url).set(username=role).render_as_string(False)
        with owner.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
    finally:
        owner.dispose()
