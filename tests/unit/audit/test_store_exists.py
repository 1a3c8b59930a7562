"""`open_existing`: a store that must already be there is opened, or refused naming where it was
looked for; on no path does it create a file, a directory or a table (issue 16, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.db import StoreMissing, StoreUnavailable, open_existing, store_location
from riskscreen.audit.keys import KeyStore

TABLES = ("audit_records", "api_keys")


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def made_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    store = AuditStore.from_url(url)
    store.create_schema()
    KeyStore(store.engine).create_schema()
    store.append("key_created", {"key_id": "k"})
    store.close()
    return url


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{dir}/missing/audit.db",
        "sqlite:///{dir}/audit.db",
        "sqlite:///file:{dir}/audit.db?uri=true",
        "sqlite:///file:{dir}/audit.db?mode=rwc&uri=true",
    ],
)
def test_a_missing_sqlite_file_is_refused_without_creating_it(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreMissing) as refused:
        open_existing(url.format(dir=tmp_path), TABLES)
    assert str(tmp_path) in str(refused.value) and "nothing was created" in str(refused.value)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_never_an_existing_store(url: str) -> None:
    with pytest.raises(StoreMissing, match="no audit store at :memory:"):
        open_existing(url, TABLES)


def test_an_existing_store_opens_and_reads_in_every_url_form(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    made_store(path)
    for appended, url in enumerate((f"sqlite:///{path}", f"sqlite:///file:{path}?uri=true")):
        store = AuditStore(open_existing(url, TABLES))
        try:
            assert store.verify().checked == 1 + appended
            assert store_location(store.engine) == str(path)
            store.append("key_revoked", {"key_id": "k"})  # and appends
        finally:
            store.close()


def test_the_opened_engine_cannot_create_the_file_either(tmp_path: Path) -> None:
    """The file was there when checked and is gone when the engine connects: still no file."""
    path = tmp_path / "audit.db"
    made_store(path)
    engine = open_existing(f"sqlite:///{path}", TABLES)
    for extra in tmp_path.iterdir():
        extra.unlink()
    with pytest.raises(sa.exc.OperationalError):
        engine.connect().close()
    engine.dispose()
    assert files_in(tmp_path) == []


def test_missing_tables_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = AuditStore.from_url(f"sqlite:///{path}")
    store.create_schema()
    store.close()
    before = files_in(tmp_path)
    open_existing(f"sqlite:///{path}", ("audit_records",)).dispose()
    with pytest.raises(StoreMissing, match="no api_keys table"):
        open_existing(f"sqlite:///{path}", TABLES)
    assert files_in(tmp_path) == before


def test_a_file_that_is_not_a_database_is_unavailable_not_missing(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_text("not a database " * 100)
    with pytest.raises(StoreUnavailable, match=f"{path}") as refused:
        open_existing(f"sqlite:///{path}", TABLES)
    assert not isinstance(refused.value, StoreMissing)
    assert files_in(tmp_path) == ["audit.db"]


def test_what_and_setting_name_another_store(tmp_path: Path) -> None:
    with pytest.raises(StoreMissing) as refused:
        open_existing(
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            ("registered_models",),
            what="model registry",
            setting="RISKSCREEN_TRACKING_URI",
            made_by="riskscreen train",
        )
    message = str(refused.value)
    assert message.startswith(f"no model registry at {tmp_path / 'mlflow.db'}")
    assert "RISKSCREEN_TRACKING_URI" in message and "`riskscreen train`" in message


@pytest.mark.postgres
def test_postgresql_tables_absent_is_missing_and_stays_absent(pg_database_url: str) -> None:
    with pytest.raises(StoreMissing, match="no audit_records table") as refused:
        open_existing(pg_database_url, TABLES)
    password = sa.make_url(pg_database_url).password
    assert not password or str(password) not in str(refused.value)
    engine = sa.create_engine(pg_database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        store = AuditStore(engine)
        store.create_schema()
        KeyStore(engine).create_schema()
        store.close()
        reopened = AuditStore(open_existing(pg_database_url, TABLES))
        assert reopened.verify().checked == 0
        reopened.close()
    finally:
        engine.dispose()
