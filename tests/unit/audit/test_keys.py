"""API keys: shown once, stored only as a hash, and refused quietly when wrong or revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore, KeyStoreUnavailable, grant_service_role

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    store = KeyStore.from_url(url)
    store.create_schema()
    yield store
    store.close()


def test_token_authenticates_its_key(keys: KeyStore) -> None:
    key, token = keys.create("case_manager", "Anna, intake Malmö")
    assert token.startswith(f"rs_{key.key_id}_") and len(token) == 3 + 16 + 1 + 43
    assert keys.authenticate(token) == key
    assert (key.role, key.name, key.revoked_at) == ("case_manager", "Anna, intake Malmö", None)
    assert key.created_at.utcoffset() is not None
    assert keys.list() == [key] and keys.count() == 1


def test_only_a_hash_of_the_secret_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    keys = KeyStore.from_url(f"sqlite:///{path}")
    keys.create_schema()
    key, token = keys.create("admin", "operator")
    secret = token.split("_", 2)[2]
    with keys.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT * FROM api_keys").one()
    assert secret not in "".join(str(value) for value in row)
    assert row.secret_hash == hashlib.sha256(f"{key.key_id}:{secret}".encode()).hexdigest()
    keys.close()  # checkpoints the WAL into the file
    files = [p for p in tmp_path.iterdir() if p.name.startswith("audit.db")]
    assert files and all(secret.encode() not in p.read_bytes() for p in files)
    assert key.key_id.encode() in path.read_bytes()  # the search itself works


def test_wrong_secret_and_unknown_key_are_refused(keys: KeyStore) -> None:
    key, token = keys.create("auditor", "audit office")
    other_key, other_token = keys.create("auditor", "second")
    secret = token.split("_", 2)[2]
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert keys.authenticate(f"rs_{key.key_id}_{wrong}") is None
    assert keys.authenticate(f"rs_{other_key.key_id}_{secret}") is None
    assert keys.authenticate(f"rs_{'0' * 16}_{secret}") is None
    assert keys.authenticate(other_token) == other_key


@pytest.mark.parametrize(
    "token",
    [None, "", "rs_", "Bearer rs_x", "rs_ZZZZ_x", "x" * 100_000, "rs_é_ü", "\x00", 42],
)
def test_malformed_tokens_are_refused_without_raising(keys: KeyStore, token: object) -> None:
    assert keys.authenticate(token) is None  # type: ignore[arg-type]


def test_almost_right_tokens_are_refused(keys: KeyStore) -> None:
    _, token = keys.create("case_manager", "a")
    for variant in [token + "x", token[:-1], " " + token, token + "\n", token.upper()]:
        assert keys.authenticate(variant) is None


def test_revoked_key_is_refused(keys: KeyStore) -> None:
    key, token = keys.create("case_manager", "leaver")
    revoked = keys.revoke(key.key_id)
    assert revoked is not None and revoked.revoked_at is not None
    assert keys.authenticate(token) is None
    assert keys.count() == 0 and keys.count(include_revoked=True) == 1
    assert keys.revoke(key.key_id) == revoked  # the first revocation time stays
    assert keys.revoke("0" * 16) is None


def test_a_key_is_remembered_for_cache_seconds_only(keys: KeyStore) -> None:
    now = [100.0]
    remembering = KeyStore(keys.engine, cache_seconds=1.0, clock=lambda: now[0])
    key, token = remembering.create("case_manager", "Anna")
    _, other_token = remembering.create("auditor", "Bo")
    assert remembering.recently_authenticated(token) is None  # never read yet
    assert remembering.authenticate(token) == key
    assert remembering.recently_authenticated(token) == key
    assert remembering.recently_authenticated(other_token) is None
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert remembering.recently_authenticated(wrong) is None  # same key id, wrong secret
    assert remembering.recently_authenticated("rs_nonsense") is None
    # Revoked by another process: still remembered until the second is over, then refused.
    keys.revoke(key.key_id)
    now[0] += 0.999
    assert remembering.recently_authenticated(token) == key
    now[0] += 0.001
    assert remembering.recently_authenticated(token) is None
    assert remembering.authenticate(token) is None


def test_revoking_through_the_same_store_forgets_at_once(keys: KeyStore) -> None:
    remembering = KeyStore(keys.engine, cache_seconds=60.0)
    key, token = remembering.create("case_manager", "Anna")
    assert remembering.authenticate(token) == key
    assert remembering.revoke(key.key_id) is not None
    assert remembering.recently_authenticated(token) is None
    assert remembering.authenticate(token) is None


def test_without_cache_seconds_nothing_is_remembered(keys: KeyStore) -> None:
    key, token = keys.create("case_manager", "Anna")
    assert keys.authenticate(token) == key
    assert keys.recently_authenticated(token) is None


def test_bad_role_or_name_is_refused(keys: KeyStore) -> None:
    with pytest.raises(ValueError, match="role"):
        keys.create("superuser", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        keys.create("admin", " ")
    assert keys.count(include_revoked=True) == 0


def test_key_events_go_into_the_audit_log_without_the_secret(tmp_path: Path) -> None:
    keys = KeyStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    keys.create_schema()
    audit = AuditStore(keys.engine)
    audit.create_schema()
    key, token = keys.create("admin", "operator")
    record = audit.append("key_created", key.as_payload())
    assert record.payload["key_id"] == key.key_id
    assert token.split("_", 2)[2] not in record.payload_json
    assert audit.verify().ok


def test_unreadable_store_raises_rather_than_letting_anyone_in(tmp_path: Path) -> None:
    keys = KeyStore.from_url(f"sqlite:///{tmp_path / 'absent' / 'audit.db'}")
    with pytest.raises(KeyStoreUnavailable):
        keys.authenticate("rs_0123456789abcdef_" + "a" * 43)


@pytest.mark.postgres
def test_postgres_service_role_cannot_delete_or_rewrite_keys(
    pg_database_url: str, pg_login_role: tuple[str, str]
) -> None:
    owner = KeyStore.from_url(pg_database_url)
    owner.create_schema()
    role, role_url = pg_login_role
    grant_service_role(owner.engine, role)
    service = KeyStore.from_url(role_url)
    service.create_schema()  # no DDL when the table exists
    key, token = service.create("case_manager", "via service")
    assert service.authenticate(token) == key
    assert service.revoke(key.key_id) is not None
    for statement in ["DELETE FROM api_keys", "UPDATE api_keys SET role = 'admin'"]:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            service.engine.begin() as conn,
        ):
            conn.exec_driver_sql(statement)
    service.close()
    owner.close()
