"""`riskscreen keys create`: a key's name reaches the audit log, so the identity guard reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.cli import app
from riskscreen.settings import Settings


def create(folder: Path, name: str) -> Result:
    env = {"RISKSCREEN_DATA_DIR": str(folder), "RISKSCREEN_AUDIT_URL": None}
    args = ["keys", "create", "--role", "auditor", "--name", name]
    return CliRunner().invoke(app, args, env=env)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Anna 850101-1234", "personal identity number"),
        ("Anna 8501 01-12 34", "personal identity number"),  # issue 16, Why 2
        ("Audit\u200b unit", "invisible"),
        ("Audit \u202eunit", "invisible"),
    ],
)
def test_a_name_the_guard_refuses_creates_no_key(tmp_path: Path, name: str, why: str) -> None:
    assert create(tmp_path, "Audit unit").exit_code == 0
    result = create(tmp_path, name)
    assert result.exit_code == 2, result.output
    assert why in result.output and "--name" in result.output
    store = AuditStore.from_url(Settings(data_dir=tmp_path).resolved_audit_url)
    try:
        assert [k.name for k in KeyStore(store.engine).list()] == ["Audit unit"]
        assert len(store.list(kind="key_created", limit=10)) == 1
    finally:
        store.close()
