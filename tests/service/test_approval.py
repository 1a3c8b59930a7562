"""A version whose only open gates were not assessable is served only after a recorded approval.

The approval is an auditor's or admin's, names their key, gives a reason about the model (never
an identity number), is in the audit log before the alias moves, and shows in `GET /v1/model`.
A version with a failed gate, or a case manager's key, is refused and nothing changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import UNLIMITED, running, sqlite_url
from typer.testing import CliRunner

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.cli import app
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import client, register
from riskscreen.settings import Settings

REASON = "Group sizes too small to assess at this municipality; reviewed the backtest."


@pytest.fixture
def waiting(
    tmp_path: Path, trained: TrainingResult, small_config: TrainConfig
) -> Iterator[tuple[Settings, str, dict[str, str]]]:
    """A store with a champion (v1), a version waiting for approval (v2), a failed one (v3),
    and a token per role."""
    settings = Settings(data_dir=tmp_path, audit_url=sqlite_url(tmp_path))
    assert register(trained, small_config, settings).champion
    outcomes = list(trained.gate_outcomes)
    outcomes[-1] = dataclasses.replace(outcomes[-1], outcome="not_assessable")
    open_one = dataclasses.replace(trained, gate_outcomes=outcomes, verdict="needs_approval")
    second = register(open_one, small_config, settings)
    assert (second.champion, second.verdict, second.open_gates) == (
        False,
        "needs_approval",
        (outcomes[-1].name,),
    )
    outcomes[0] = dataclasses.replace(outcomes[0], outcome="fail")
    register(
        dataclasses.replace(trained, gate_outcomes=outcomes, verdict="no"), small_config, settings
    )
    store = AuditStore.from_url(settings.resolved_audit_url)
    store.create_schema()
    keys = KeyStore(store.engine)
    keys.create_schema()
    tokens = {role: keys.create(role, role)[1] for role in ("auditor", "admin", "case_manager")}
    store.close()
    yield settings, second.version, tokens


def _approve(settings: Settings, token: str, version: str, reason: str = REASON) -> tuple[int, str]:
    env = {"RISKSCREEN_DATA_DIR": str(settings.data_dir), "RISKSCREEN_API_KEY": token}
    env["RISKSCREEN_AUDIT_URL"] = settings.resolved_audit_url
    result = CliRunner().invoke(
        app, ["model", "approve", "--version", version, "--reason", reason], env=env
    )
    return result.exit_code, result.output


def _champion(settings: Settings) -> str:
    return str(client(settings).get_model_version_by_alias("riskscreen", "champion").version)


def test_refusals_change_nothing(waiting: tuple[Settings, str, dict[str, str]]) -> None:
    settings, version, tokens = waiting
    for token, ver, reason, why in (
        (tokens["case_manager"], version, REASON, "case_manager key may not approve"),
        ("rs_not-a-key", version, REASON, "unknown or revoked key"),
        (tokens["auditor"], "3", REASON, "a gate failed"),
        (tokens["auditor"], "1", REASON, "every gate passed"),
        (tokens["auditor"], version, "ok", "the reason must be"),
        (tokens["auditor"], version, "Checked with 19850101-1234 today.", "identity number"),
        # issue 16, Why 2: separators between the digits, and invisible characters
        (tokens["auditor"], version, "Checked with 8501 01-12 34 today.", "identity number"),
        (tokens["auditor"], version, "Checked with \u202ethe model today.", "invisible"),
    ):
        code, output = _approve(settings, token, ver, reason)
        assert code == 1 and why in output, output
    assert _champion(settings) == "1"
    store = AuditStore.from_url(settings.resolved_audit_url)
    assert not store.list(kind="model_approved", limit=10)
    store.close()


def test_an_approval_is_logged_then_serves_the_version(
    waiting: tuple[Settings, str, dict[str, str]],
) -> None:
    settings, version, tokens = waiting
    code, output = _approve(settings, tokens["auditor"], version)
    assert code == 0, output
    assert _champion(settings) == version
    store = AuditStore.from_url(settings.resolved_audit_url)
    [record] = store.list(kind="model_approved", limit=10)
    assert store.verify().ok
    store.close()
    assert record.payload["reason"] == REASON and record.payload["model"]["version"] == version
    with running(settings.model_copy(update=UNLIMITED)) as service:
        model = service.client.get("/v1/model", headers=service.auth("auditor")).json()
    assert model["version"] == version and model["verdict"] == "needs_approval"
    assert model["approval"]["audit_record_id"] == record.record_id
    assert model["approval"]["key_id"] == record.payload["key_id"]
    outcomes = {o["name"]: o["outcome"] for o in model["gate_outcomes"]}
    assert list(outcomes.values()).count("not_assessable") == 1
    assert model["gates"] == {name: o == "pass" for name, o in outcomes.items()}
