"""The production path: the audit log, keys and switch on PostgreSQL, and MLflow there too.

The service connects as a role that may only read and append audit records (the grants of
`grant_service_role`); the database owner prepares the schema and is the one who can tamper,
by switching the append-only trigger off, which `verify` then catches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from http_support import (
    UNLIMITED,
    Service,
    assert_chain_holds,
    running,
    score_concurrently,
    sqlite_url,
)
from typer.testing import CliRunner

from riskscreen.audit import chain as audit
from riskscreen.audit import keys, switch
from riskscreen.audit.db import grant_table
from riskscreen.cli import app as cli
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import Registration, load_verified, register
from riskscreen.settings import Settings

pytestmark = pytest.mark.postgres
DECISION = {"support": "intensified", "agrees_with_flag": True, "reason_code": "other"}


@pytest.fixture
def service_role_url(pg_database_url: str, pg_login_role: tuple[str, str]) -> str:
    """Schema made by the owner; the URL of the service's role, granted only what it needs."""
    role, role_url = pg_login_role
    owner = audit.AuditStore.from_url(pg_database_url)
    try:
        owner.create_schema()
        keys.KeyStore(owner.engine).create_schema()
        switch.ScoringSwitchStore(owner.engine).create_schema()
        audit.grant_service_role(owner.engine, role)
        keys.grant_service_role(owner.engine, role)
        switch.grant_service_role(owner.engine, role)
    finally:
        owner.close()
    return role_url


def _settings(registered: tuple[Settings, Registration], audit_url: str) -> Settings:
    return registered[0].model_copy(update={"audit_url": audit_url, **UNLIMITED})


def _verify(service: Service) -> dict[str, Any]:
    response = service.client.get("/v1/audit/verify", headers=service.auth("auditor"))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_score_decide_replay_and_catch_the_owner_tampering(
    registered: tuple[Settings, Registration],
    bodies: list[dict[str, Any]],
    pg_database_url: str,
    service_role_url: str,
    tmp_path: Path,
) -> None:
    with running(_settings(registered, service_role_url)) as service:
        assert service.client.get("/readyz").status_code == 200
        score = service.score(bodies[0])
        again = service.client.get(f"/v1/scores/{score['score_id']}", headers=service.auth("cm"))
        assert again.json() == score
        decision = service.client.post(
            f"/v1/scores/{score['score_id']}/decision", json=DECISION, headers=service.auth("cm")
        )
        assert decision.status_code == 201
        replay = service.client.get(
            f"/v1/audit/records/{score['score_id']}/replay", headers=service.auth("auditor")
        )
        assert replay.json()["matches"] is True
        admin = service.auth("admin")
        off = service.client.post("/v1/admin/scoring", json={"enabled": False}, headers=admin)
        assert off.status_code == 200
        assert (
            service.client.post(
                "/v1/scores", json=bodies[1], headers=service.auth("cm")
            ).status_code
            == 503
        )
        assert (
            service.client.post(
                "/v1/admin/scoring", json={"enabled": True}, headers=admin
            ).status_code
            == 200
        )
        body = _verify(service)
        assert body["ok"] is True and body["checked"] == 4  # score, decision, off, on

        # The service's role cannot rewrite history ...
        role = sa.create_engine(service_role_url)
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"), role.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_records SET kind = 'x' WHERE seq = 1")
        role.dispose()
        # ... the owner can, only with the trigger off, and is caught.
        owner = sa.create_engine(pg_database_url)
        with owner.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_records DISABLE TRIGGER USER")
            conn.exec_driver_sql(
                "UPDATE audit_records SET payload = "
                'replace(payload, \'"case_ref":"\', \'"case_ref":"X\') WHERE seq = 1'
            )
            conn.exec_driver_sql("ALTER TABLE audit_records ENABLE TRIGGER USER")
        owner.dispose()
        body = _verify(service)
        assert body["ok"] is False and body["first_bad_seq"] == 1
        assert "hash does not match" in body["reason"]

    result = CliRunner().invoke(
        cli,
        ["audit", "verify"],
        env={"RISKSCREEN_DATA_DIR": str(tmp_path), "RISKSCREEN_AUDIT_URL": service_role_url},
    )
    assert result.exit_code == 1, result.output
    assert "BROKEN at record 1:" in result.output


def test_concurrent_scores_on_postgresql_leave_one_chain(
    registered: tuple[Settings, Registration],
    bodies: list[dict[str, Any]],
    service_role_url: str,
) -> None:
    with (
        running(_settings(registered, service_role_url)) as first,
        running(_settings(registered, service_role_url)) as second,
    ):
        # Two apps with their own connection pools, as two processes would have.
        half = score_concurrently(first, bodies[:100], threads=4)
        rest = score_concurrently(second, bodies[100:200], threads=4)
        assert_chain_holds(first, half + rest)


def test_mlflow_registry_on_postgresql(
    trained: TrainingResult,
    small_config: TrainConfig,
    service: Service,
    bodies: list[dict[str, Any]],
    pg_database_url: str,
    tmp_path: Path,
) -> None:
    """Any MLflow tracking URI works through a setting: register, verify, load and serve."""
    settings = Settings(data_dir=tmp_path, tracking_uri=pg_database_url)
    assert settings.resolved_tracking_uri.startswith("postgresql+psycopg://")
    own = dataclasses.replace(trained.bundle, provenance=dict(trained.bundle.provenance))
    registration = register(dataclasses.replace(trained, bundle=own), small_config, settings)
    assert registration.champion
    loaded = load_verified(settings)
    assert (loaded.version, loaded.artifact_sha256) == ("1", registration.artifact_sha256)
    served = settings.model_copy(update={"audit_url": sqlite_url(tmp_path), **UNLIMITED})
    with running(served) as from_pg_registry:
        score = from_pg_registry.score(bodies[0])
        replay = from_pg_registry.client.get(
            f"/v1/audit/records/{score['score_id']}/replay",
            headers=from_pg_registry.auth("auditor"),
        )
        assert replay.json()["matches"] is True
    # The same trees as the session's SQLite-registered model: the same numbers.
    assert service.score(bodies[0])["probability"] == score["probability"]


def test_a_role_that_may_not_append_is_not_ready(
    registered: tuple[Settings, Registration],
    bodies: list[dict[str, Any]],
    pg_database_url: str,
    service_role_url: str,
    pg_login_role: tuple[str, str],
) -> None:
    owner = sa.create_engine(pg_database_url)
    grant_table(owner, pg_login_role[0], "audit_records", "SELECT")  # INSERT taken away
    owner.dispose()
    with running(_settings(registered, service_role_url)) as service:
        ready = service.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["audit_writable"] is False
        refused = service.client.post("/v1/scores", json=bodies[0], headers=service.auth("cm"))
        assert refused.status_code == 503 and "probability" not in refused.text
