"""Commands that read a store refuse when it is absent, and create nothing (issue 16, item 6).

Found: with the relative default data directory, `riskscreen audit verify` run in the wrong
folder created an empty store there and reported "OK: 0 records verify"; `keys revoke` created
one too and said "no key". Every command that reads the audit log, the API keys or the model
registry now names the absolute path it looked at and how to point it at the right one, exits 1,
and leaves the folder as it was. Only set-up creates a store: `keys create` (saying so) and
`riskscreen run`/`serve` at first start. An empty log verifies as OK only with --allow-empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.cli import app

REASON = "Group sizes too small to assess at this municipality; reviewed the backtest."
# Every setting that could point a command elsewhere than the folder it runs in.
UNSET: dict[str, str | None] = {
    "RISKSCREEN_DATA_DIR": None,
    "RISKSCREEN_AUDIT_URL": None,
    "RISKSCREEN_TRACKING_URI": None,
    "RISKSCREEN_ARTIFACT_ROOT": None,
    "RISKSCREEN_API_KEY": None,
    "RISKSCREEN_ENVIRONMENT": None,
}

READERS = {
    "audit verify": ["audit", "verify"],
    "audit verify --allow-empty": ["audit", "verify", "--allow-empty"],
    "audit verify --head": ["audit", "verify", "--head-seq", "3", "--head-hash", "ab" * 32],
    "audit replay --all": ["audit", "replay", "--all"],
    "audit replay --id": ["audit", "replay", "--id", "00000000-0000-4000-8000-000000000000"],
    "audit export": ["audit", "export", "--output", "log.jsonl"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "0123456789abcdef"],
    "model approve": ["model", "approve", "--version", "2", "--reason", REASON],
}


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory that holds no store: the wrong folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder


def invoke(args: list[str], **env: str) -> Result:
    full = {**UNSET, "RISKSCREEN_API_KEY": "rs_0123456789abcdef_" + "A" * 43, **env}
    return CliRunner().invoke(app, args, env=full)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_refused(result: Result, what: str, where: Path | str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert f"no {what} at {where}" in result.output, result.output
    assert "nothing was created" in result.output, result.output


@pytest.mark.parametrize("args", list(READERS.values()), ids=list(READERS))
def test_reading_commands_refuse_an_absent_store_and_create_nothing(
    elsewhere: Path, args: list[str]
) -> None:
    result = invoke(args)
    assert_refused(result, "audit store", elsewhere / "data" / "audit.db")
    assert "RISKSCREEN_DATA_DIR" in result.output and "RISKSCREEN_AUDIT_URL" in result.output
    assert files_in(elsewhere) == []


@pytest.mark.parametrize("args", [READERS["audit verify"], READERS["keys revoke"]])
def test_a_relative_data_dir_is_named_by_its_absolute_path(
    elsewhere: Path, args: list[str]
) -> None:
    result = invoke(args, RISKSCREEN_DATA_DIR="state/here")
    assert_refused(result, "audit store", elsewhere / "state" / "here" / "audit.db")
    assert files_in(elsewhere) == []


def test_an_explicit_sqlite_url_to_a_missing_file_is_refused(elsewhere: Path) -> None:
    target = elsewhere / "nowhere" / "audit.db"
    result = invoke(READERS["audit verify"], RISKSCREEN_AUDIT_URL=f"sqlite:///{target}")
    assert_refused(result, "audit store", target)
    assert files_in(elsewhere) == []


def test_a_sqlite_file_without_the_tables_is_no_store(elsewhere: Path) -> None:
    (elsewhere / "data").mkdir()
    (elsewhere / "data" / "audit.db").touch()
    for args in (READERS["audit verify"], READERS["keys list"], READERS["keys revoke"]):
        result = invoke(args)
        assert_refused(result, "audit store", elsewhere / "data" / "audit.db")
        assert "no audit_records table" in result.output or "no api_keys table" in result.output
        assert files_in(elsewhere) == ["data", "data/audit.db"]
        assert (elsewhere / "data" / "audit.db").stat().st_size == 0


def empty_store(folder: Path) -> Path:
    path = folder / "data" / "audit.db"
    path.parent.mkdir(parents=True)
    store = AuditStore.from_url(f"sqlite:///{path}")
    store.create_schema()
    KeyStore(store.engine).create_schema()
    store.close()
    return path


def test_an_empty_log_is_not_ok_unless_asked_for(elsewhere: Path) -> None:
    path = empty_store(elsewhere)
    result = invoke(READERS["audit verify"])
    assert result.exit_code == 1, result.output
    assert f"no records to verify in the audit store at {path}" in result.output
    assert "--allow-empty" in result.output
    assert "OK" not in result.output

    allowed = invoke(READERS["audit verify --allow-empty"])
    assert allowed.exit_code == 0, allowed.output
    assert "OK: 0 records verify (the log is empty)" in allowed.output


def test_keys_create_sets_up_a_new_store_and_says_where(elsewhere: Path) -> None:
    """Set-up starts with a first key (README, the worked example): it may create the store."""
    path = elsewhere / "data" / "audit.db"
    created = invoke(["keys", "create", "--role", "auditor", "--name", "Audit unit"])
    assert created.exit_code == 0, created.output
    assert f"created a new audit store at {path}" in created.output
    key_id = created.output.strip().splitlines()[-1].split("_")[1]

    again = invoke(["keys", "create", "--role", "admin", "--name", "Operations"])
    assert again.exit_code == 0, again.output
    assert "created a new audit store" not in again.output

    listed = invoke(READERS["keys list"])
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.output and "Audit unit" in listed.output

    revoked = invoke(["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    unknown = invoke(READERS["keys revoke"])
    assert unknown.exit_code == 1 and "no key 0123456789abcdef" in unknown.output

    verified = invoke(READERS["audit verify"])
    assert verified.exit_code == 0, verified.output
    assert "OK: 3 records verify; head 3 " in verified.output

    out = elsewhere / "log.jsonl"
    exported = invoke(READERS["audit export"])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 3


def test_approve_refuses_a_missing_registry_and_creates_none(elsewhere: Path) -> None:
    """`model approve` reads the key store, appends to the log and moves an MLflow alias."""
    created = invoke(["keys", "create", "--role", "auditor", "--name", "Audit unit"])
    token = created.output.strip().splitlines()[-1]
    before = files_in(elsewhere)
    result = invoke(READERS["model approve"], RISKSCREEN_API_KEY=token)
    assert result.exit_code == 1, result.output
    assert f"not approved: no model registry at {elsewhere / 'data' / 'mlflow.db'}" in (
        result.output
    )
    assert "RISKSCREEN_TRACKING_URI" in result.output
    assert files_in(elsewhere) == before
    verified = invoke(READERS["audit verify"])
    assert "OK: 1 records verify" in verified.output  # the refusal appended nothing


def test_replay_refuses_a_missing_registry_and_creates_none(elsewhere: Path) -> None:
    path = empty_store(elsewhere)
    store = AuditStore.from_url(f"sqlite:///{path}")
    store.append("score", {"model": {"version": "1", "artifact_sha256": "0" * 64}})
    store.close()
    before = files_in(elsewhere)
    result = invoke(READERS["audit replay --all"])
    assert_refused(result, "model registry", elsewhere / "data" / "mlflow.db")
    assert "RISKSCREEN_TRACKING_URI" in result.output
    assert files_in(elsewhere) == before


@pytest.mark.postgres
def test_postgresql_without_the_tables_is_refused_and_left_without_them(
    elsewhere: Path, pg_database_url: str
) -> None:
    shown = sa.make_url(pg_database_url).render_as_string(hide_password=True)
    for args in (READERS["audit verify"], READERS["keys list"], READERS["keys revoke"]):
        result = invoke(args, RISKSCREEN_AUDIT_URL=pg_database_url)
        assert result.exit_code == 1, result.output
        assert f"no audit store at {shown}" in result.output, result.output
        assert "RISKSCREEN_AUDIT_URL" in result.output and "nothing was created" in result.output
        password = sa.make_url(pg_database_url).password
        assert not password or str(password) not in result.output
    engine = sa.create_engine(pg_database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert files_in(elsewhere) == []  # not even the data directory


@pytest.mark.postgres
def test_postgresql_database_that_does_not_exist_is_refused(elsewhere: Path, pg_url: str) -> None:
    url = sa.make_url(pg_url).set(database="rs_test_never_created")
    result = invoke(READERS["keys list"], RISKSCREEN_AUDIT_URL=url.render_as_string(False))
    assert result.exit_code == 1, result.output
    shown = url.render_as_string(hide_password=True)
    assert f"the audit store at {shown} cannot be read" in result.output, result.output
    assert 'database "rs_test_never_created" does not exist' in result.output
    assert "check RISKSCREEN_AUDIT_URL" in result.output
    assert files_in(elsewhere) == []
