"""The audit log's guarantees, on SQLite and on a real PostgreSQL.

Tampering is done the way an attacker with the owner's rights would: raw SQL, with the
PostgreSQL append-only trigger switched off first.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from riskscreen.audit import chain as audit
from riskscreen.audit.chain import AuditStore, AuditUnavailable, grant_service_role
from riskscreen.audit.records import GENESIS_HASH, AuditRecord, record_hash
from riskscreen.audit.verify import VerifyResult

TEXT_COLUMNS = ["record_id", "kind", "created_at", "payload", "prev_hash", "hash"]


def fill(store: AuditStore, n: int) -> list[AuditRecord]:
    return [
        store.append(
            "score" if i % 2 == 0 else "decision",
            {"i": i, "model": {"name": "m", "version": str(1 + i % 3)}, "p": i / 7},
        )
        for i in range(n)
    ]


def tamper(store: AuditStore, sql: str, **params: Any) -> None:
    """Run raw SQL as the table owner, with the append-only trigger disabled on PostgreSQL."""
    postgres = store.engine.dialect.name == "postgresql"
    with store.engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql("ALTER TABLE audit_records DISABLE TRIGGER USER")
        for statement in sql.split(";"):
            conn.execute(sa.text(statement), params)
        if postgres:
            conn.exec_driver_sql("ALTER TABLE audit_records ENABLE TRIGGER USER")


def stored(store: AuditStore, seq: int, column: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT {column} FROM audit_records WHERE seq = :seq"), {"seq": seq}
        ).scalar_one()


def count_rows(store: AuditStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM audit_records").scalar_one())


def assert_broken_at(result: VerifyResult, seq: int, reason: str) -> None:
    assert not result.ok
    assert result.first_bad_seq == seq, result
    assert result.checked == seq - 1
    assert result.reason is not None and reason in result.reason, result.reason


# --- append, get, list -------------------------------------------------------------------------


def test_append_get_and_chain_links(store: AuditStore) -> None:
    first, second = fill(store, 2)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert second.payload == {"i": 1, "model": {"name": "m", "version": "2"}, "p": 1 / 7}
    assert store.get(second.record_id) == second
    assert store.get("no-such-id") is None
    assert store.head() == (2, second.hash)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", first.created_at)


def test_payload_is_canonical_and_floats_round_trip(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    store.create_schema()
    record = store.append("score", {"b": 0.1 + 0.2, "a": "åäö", "c": [1e-300, 5e-324, -0.0]})
    assert record.payload_json == '{"a":"åäö","b":0.30000000000000004,"c":[1e-300,5e-324,-0.0]}'
    assert stored(store, 1, "payload") == record.payload_json
    assert record.payload["b"] == 0.1 + 0.2


def test_hash_can_be_recomputed_without_this_code(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    store.create_schema()
    record = store.append("score", {"text": 'quote " backslash \\ newline \n', "n": 1})
    material = {
        "seq": record.seq,
        "record_id": record.record_id,
        "kind": record.kind,
        "created_at": record.created_at,
        "payload": record.payload_json,
        "prev_hash": record.prev_hash,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == record.hash


@pytest.mark.parametrize(
    ("kind", "payload", "error"),
    [
        ("score", {"p": float("nan")}, ValueError),
        ("score", {"p": [1, {"q": float("-inf")}]}, ValueError),
        ("score", {"p": ("a", MappingProxyType({"q": np.float64("nan")}))}, ValueError),
        ("score", {1: "non-string key"}, TypeError),
        ("score", {"x": object()}, TypeError),
        ("Score!", {"p": 1}, ValueError),
        ("", {"p": 1}, ValueError),
    ],
)
def test_unacceptable_appends_write_nothing(
    tmp_path: Path, kind: str, payload: dict[Any, Any], error: type[Exception]
) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    store.create_schema()
    with pytest.raises(error):
        store.append(kind, payload)
    assert store.head() is None


def test_list_filters_and_keyset_pages(store: AuditStore) -> None:
    records = fill(store, 25)
    seen: list[int] = []
    after = None
    while page := store.list(limit=10, after_seq=after):
        seen += [r.seq for r in page]
        after = page[-1].seq
    assert seen == list(range(1, 26))
    assert {r.seq for r in store.list(kind="decision")} == set(range(2, 26, 2))
    assert [r.seq for r in store.list(model_version="3")] == list(range(3, 26, 3))
    since = datetime.fromisoformat(records[9].created_at)
    until = datetime.fromisoformat(records[19].created_at)
    assert [r.seq for r in store.list(since=since, until=until)] == list(range(10, 20))
    assert [r.seq for r in store.list(since=since, kind="score", limit=3)] == [11, 13, 15]


def test_list_refuses_ambiguous_arguments(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    store.create_schema()
    with pytest.raises(ValueError, match="aware"):
        store.list(since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=0)


# --- verify ------------------------------------------------------------------------------------


def test_verify_clean_chain(store: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.verify() == VerifyResult(ok=True, checked=0)
    fill(store, 10)
    monkeypatch.setattr(audit, "VERIFY_BATCH", 3)  # cross batch boundaries
    result = store.verify(expected_head=store.head())
    assert result.ok and result.checked == 10 and result.head == store.head()
    assert store.verify(expected_head=(4, stored(store, 4, "hash"))).ok


@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_verify_detects_an_edited_field(
    store: AuditStore, column: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, 8)
    value = stored(store, 5, column)
    edited = (
        value.replace('"i":4', '"i":5')
        if column == "payload"
        else value[:-1] + ("0" if value[-1] != "0" else "1")
    )
    tamper(store, f"UPDATE audit_records SET {column} = :v WHERE seq = 5", v=edited)
    monkeypatch.setattr(audit, "VERIFY_BATCH", 3)
    expected = "prev_hash" if column == "prev_hash" else "stored hash"
    assert_broken_at(store.verify(), 5, expected)


def test_verify_detects_a_deleted_record(store: AuditStore) -> None:
    fill(store, 6)
    tamper(store, "DELETE FROM audit_records WHERE seq = 3")
    assert_broken_at(store.verify(), 3, "missing record")


def test_verify_detects_a_moved_seq(store: AuditStore) -> None:
    fill(store, 6)
    tamper(store, "UPDATE audit_records SET seq = 99 WHERE seq = 1")
    assert_broken_at(store.verify(), 1, "missing record")


def test_verify_detects_an_inserted_record(store: AuditStore) -> None:
    fill(store, 6)
    # A well-forged record at 4: later records renumbered, its own hash and link correct.
    tamper(
        store,
        "UPDATE audit_records SET seq = -seq WHERE seq >= 4;"
        "UPDATE audit_records SET seq = 1 - seq WHERE seq < 0",
    )
    forged = {
        "seq": 4,
        "record_id": "00000000-0000-4000-8000-000000000000",
        "kind": "score",
        "created_at": stored(store, 3, "created_at"),
        "payload_json": '{"i":99}',
        "prev_hash": stored(store, 3, "hash"),
    }
    tamper(
        store,
        "INSERT INTO audit_records (seq, record_id, kind, created_at, payload, prev_hash, hash) "
        "VALUES (:seq, :record_id, :kind, :created_at, :payload_json, :prev_hash, :hash)",
        **forged,
        hash=record_hash(**forged),
    )
    assert_broken_at(store.verify(), 5, "prev_hash")


def test_verify_detects_a_record_inserted_before_genesis(store: AuditStore) -> None:
    fill(store, 3)
    tamper(
        store,
        "INSERT INTO audit_records (seq, record_id, kind, created_at, payload, prev_hash, hash) "
        "VALUES (0, 'x', 'score', 'now', '{}', :h, :h)",
        h=GENESIS_HASH,
    )
    assert_broken_at(store.verify(), 1, "out-of-sequence")


def test_verify_detects_two_swapped_records(store: AuditStore) -> None:
    fill(store, 6)
    columns = ["record_id", "kind", "created_at", "payload", "prev_hash", "hash"]
    tamper(
        store,
        "UPDATE audit_records SET seq = -seq WHERE seq IN (3, 4);"
        "UPDATE audit_records SET seq = 4 WHERE seq = -3;"
        "UPDATE audit_records SET seq = 3 WHERE seq = -4",
    )
    assert [stored(store, 3, c) for c in columns] != [stored(store, 4, c) for c in columns]
    assert_broken_at(store.verify(), 3, "prev_hash")


def test_verify_detects_truncation_below_a_published_head(store: AuditStore) -> None:
    fill(store, 8)
    published = store.head()
    tamper(store, "DELETE FROM audit_records WHERE seq > 5")
    assert store.verify().ok  # a shorter chain is consistent in itself...
    assert_broken_at(store.verify(expected_head=published), 6, "truncated")  # ...but not this


def test_verify_detects_a_rewritten_tail_against_a_published_head(store: AuditStore) -> None:
    fill(store, 5)
    published = store.head()
    tamper(store, "DELETE FROM audit_records WHERE seq = 5")
    store.append("score", {"i": 4, "forged": True})
    assert store.verify().ok
    assert_broken_at(store.verify(expected_head=published), 5, "published head")


# --- concurrency -------------------------------------------------------------------------------


def _append_many(url: str, count: int, start: Event) -> None:
    store = AuditStore.from_url(url)
    start.wait(60)
    for i in range(count):
        store.append("score", {"i": i, "writer": "process"})
    store.close()


def test_concurrent_processes_and_threads_keep_one_chain(store: AuditStore, store_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_append_many, args=(store_url, 250, start)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    start.set()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_thread_appends, store, 100) for _ in range(4)]
        for future in futures:
            future.result()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    result = store.verify()
    assert result.ok and result.checked == 4 * 250 + 4 * 100
    with store.engine.connect() as conn:
        seqs = conn.exec_driver_sql("SELECT seq FROM audit_records ORDER BY seq").scalars().all()
    assert seqs == list(range(1, 1401))


def _thread_appends(store: AuditStore, count: int) -> None:
    for i in range(count):
        store.append("decision", {"i": i, "writer": "thread"})


# --- fail closed -------------------------------------------------------------------------------


def test_read_only_sqlite_fails_closed_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    writable = AuditStore.from_url(f"sqlite:///{path}")
    writable.create_schema()
    fill(writable, 2)
    read_only = AuditStore.from_url(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(AuditUnavailable):
        read_only.append("score", {"p": 0.5})
    assert read_only.verify().checked == 2  # it can still be audited
    assert count_rows(writable) == 2


def test_missing_directory_fails_closed(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'absent' / 'audit.db'}")
    with pytest.raises(AuditUnavailable):
        store.append("score", {"p": 0.5})
    with pytest.raises(AuditUnavailable):
        store.head()
    assert not (tmp_path / "absent").exists()


def test_unreachable_postgres_fails_closed() -> None:
    store = AuditStore.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(AuditUnavailable):
        store.append("score", {"p": 0.5})


@pytest.mark.postgres
def test_postgres_role_without_insert_fails_closed(
    pg_database_url: str, pg_login_role: tuple[str, str]
) -> None:
    owner = AuditStore.from_url(pg_database_url)
    owner.create_schema()
    role, role_url = pg_login_role
    with owner.engine.begin() as conn:
        conn.exec_driver_sql(f'GRANT SELECT ON audit_records TO "{role}"')
    service = AuditStore.from_url(role_url)
    with pytest.raises(AuditUnavailable):
        service.append("score", {"p": 0.5})
    assert count_rows(owner) == 0
    service.close()
    owner.close()


# --- PostgreSQL hardening ----------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_service_role_may_only_read_and_append(
    pg_database_url: str, pg_login_role: tuple[str, str]
) -> None:
    owner = AuditStore.from_url(pg_database_url)
    owner.create_schema()
    role, role_url = pg_login_role
    grant_service_role(owner.engine, role)
    service = AuditStore.from_url(role_url)
    service.create_schema()  # what the service does at start-up: no DDL needed, none tried
    record = service.append("score", {"p": 0.5})
    assert service.get(record.record_id) == record and service.verify().ok
    for statement in [
        "UPDATE audit_records SET kind = 'x'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
    ]:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            service.engine.begin() as conn,
        ):
            conn.exec_driver_sql(statement)
    assert count_rows(owner) == 1
    with owner.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_records DISABLE TRIGGER USER")
    with pytest.raises(AuditUnavailable):
        service.create_schema()  # it will not start with the protection switched off
    owner.create_schema()  # the owner can switch it back on
    service.create_schema()
    service.close()
    owner.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_records SET kind = 'x'", "DELETE FROM audit_records", "TRUNCATE audit_records"],
)
def test_postgres_trigger_holds_back_the_owner(pg_database_url: str, statement: str) -> None:
    owner = AuditStore.from_url(pg_database_url)
    owner.create_schema()
    owner.create_schema()  # idempotent, trigger included
    fill(owner, 2)
    with (
        pytest.raises(sa.exc.ProgrammingError, match="append-only"),
        owner.engine.begin() as conn,
    ):
        conn.exec_driver_sql(statement)
    assert owner.verify().checked == 2
    owner.close()


def test_grants_are_postgres_only(tmp_path: Path) -> None:
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="PostgreSQL"):
        grant_service_role(store.engine, "service")


# --- properties --------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_payloads = st.dictionaries(st.text(max_size=8), _json_values, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(_payloads, min_size=1, max_size=5),
    kind=st.sampled_from(["score", "decision"]),
    data=st.data(),
)
def test_any_appends_verify_and_any_single_byte_edit_is_detected(
    payloads: list[dict[str, Any]], kind: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = AuditStore.from_url(f"sqlite:///{directory}/audit.db")
        store.create_schema()
        records = [store.append(kind, payload) for payload in payloads]
        assert [r.payload for r in records] == payloads
        assert store.verify().ok
        seq = data.draw(st.integers(1, len(records)), label="seq")
        column = data.draw(st.sampled_from(TEXT_COLUMNS), label="column")
        raw = stored(store, seq, column).encode()
        position = data.draw(st.integers(0, len(raw) - 1), label="position")
        byte = data.draw(st.integers(1, 255).filter(lambda b: b != raw[position]), label="byte")
        try:
            edited = (raw[:position] + bytes([byte]) + raw[position + 1 :]).decode()
        except UnicodeDecodeError:
            assume(False)
        tamper(store, f"UPDATE audit_records SET {column} = :v WHERE seq = :s", v=edited, s=seq)
        result = store.verify()
        store.close()
    assert not result.ok and result.first_bad_seq == seq
