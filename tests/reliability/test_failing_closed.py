"""Fail closed, with the store really failing: no audit record, no score.

- SQLite: the log's files made immutable under a running server process (`chattr +i`: the
  test runs as root, which chmod would not stop), then writable again.
- PostgreSQL, read-only: the service role's INSERT revoked while the app runs.
- PostgreSQL, unavailable: the app reaches the server through a loopback TCP proxy, which is
  cut and then restored.
- An explanation that does not add up: an error that says what to do, and no score.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from reliability_servers import Zygote, free_port, server_env
from reliability_support import add_keys, audit_count, client, score_body, sqlite_url

from riskscreen.audit import chain as audit
from riskscreen.audit import keys
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.audit.switch import ScoringSwitchStore
from riskscreen.settings import Settings

SCORE_FIELDS = ("probability", "log_odds", "contributions", "band")


def assert_no_score(response: httpx.Response, status: int = 503) -> None:
    assert response.status_code == status, response.text
    for word in SCORE_FIELDS:
        assert word not in response.text
    assert response.json()["detail"]


@contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    present = [p for p in paths if p.exists()]
    subprocess.run(["chattr", "+i", *map(str, present)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, present)], check=True)


def test_immutable_sqlite_log_under_a_running_server(
    forker: Zygote, model_settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    url = sqlite_url(folder)
    tokens = add_keys(url).tokens
    auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
    env = server_env(model_settings.model_copy(update={"audit_url": url}))
    with (
        forker.server(env, tmp_path / "server.log") as (_, base),
        httpx.Client(base_url=base, headers=auth, timeout=60) as c,
    ):
        assert c.post("/v1/scores", json=score_body("before")).status_code == 201
        before = audit_count(url)
        files = [folder, *folder.glob("audit.db*")]
        with immutable(files):
            assert_no_score(c.post("/v1/scores", json=score_body("during")))
            batch = {"records": [score_body(f"b-{i}") for i in range(3)]}
            assert_no_score(c.post("/v1/scores/batch", json=batch))
            # /readyz is not asked here: its probe writes and rolls back, which SQLite keeps
            # in memory, so it cannot see files that refuse only the commit.
            assert c.get("/healthz").status_code == 200
        assert audit_count(url) == before
        assert c.post("/v1/scores", json=score_body("after")).status_code == 201
        assert c.get("/readyz").status_code == 200


def _grant_service(owner_url: str, role: str) -> None:
    for store in (AuditStore.from_url(owner_url), KeyStore.from_url(owner_url)):
        store.create_schema()
        store.close()
    owner = sa.create_engine(owner_url)
    try:
        ScoringSwitchStore(owner).create_schema()
        audit.grant_service_role(owner, role)
        keys.grant_service_role(owner, role)
        with owner.begin() as conn:
            conn.exec_driver_sql(f'GRANT SELECT ON scoring_switch TO "{role}"')
    finally:
        owner.dispose()


@pytest.mark.postgres
def test_postgres_log_made_read_only_for_the_service(
    model_settings: Settings, pg_database_url: str, pg_login_role: tuple[str, str]
) -> None:
    role, role_url = pg_login_role
    _grant_service(pg_database_url, role)
    tokens = add_keys(pg_database_url).tokens
    auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
    owner = sa.create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    try:
        with client(model_settings.model_copy(update={"audit_url": role_url})) as c:
            assert c.post("/v1/scores", json=score_body("a"), headers=auth).status_code == 201
            before = audit_count(pg_database_url)
            with owner.connect() as conn:
                conn.exec_driver_sql(f'REVOKE INSERT ON audit_records FROM "{role}"')
            response = c.post("/v1/scores", json=score_body("b"), headers=auth)
            assert_no_score(response)  # type: ignore[arg-type]
            assert "manual intake" in response.json()["detail"]
            assert c.get("/readyz").status_code == 503
            assert audit_count(pg_database_url) == before
            with owner.connect() as conn:
                conn.exec_driver_sql(f'GRANT INSERT ON audit_records TO "{role}"')
            assert c.post("/v1/scores", json=score_body("c"), headers=auth).status_code == 201
    finally:
        owner.dispose()


class Proxy:
    """A loopback TCP proxy that can be cut (every connection closed, nothing accepted)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.up = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self.listener = listener
        self.up.set()
        self.thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while self.up.is_set():
            try:
                downstream, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [downstream, upstream]
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.up.clear()
        if self.thread is not None:
            self.thread.join(5)
        if self.listener is not None:
            self.listener.close()
        with self.lock:
            for s in self.sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()


@pytest.mark.postgres
def test_postgres_unreachable_then_back(model_settings: Settings, pg_database_url: str) -> None:
    tokens = add_keys(pg_database_url).tokens
    auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
    real = sa.make_url(pg_database_url)
    proxy = Proxy((real.host or "127.0.0.1", real.port or 5432))
    proxy.start()
    via_proxy = real.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        with client(model_settings.model_copy(update={"audit_url": via_proxy})) as c:
            assert c.post("/v1/scores", json=score_body("a"), headers=auth).status_code == 201
            before = audit_count(pg_database_url)
            proxy.cut()
            assert_no_score(c.post("/v1/scores", json=score_body("b"), headers=auth))  # type: ignore[arg-type]
            assert c.get("/readyz").status_code == 503
            assert audit_count(pg_database_url) == before
            proxy.start()
            assert c.post("/v1/scores", json=score_body("c"), headers=auth).status_code == 201
    finally:
        proxy.cut()


def test_an_unexplainable_score_is_an_error_to_act_on(
    model_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path)
    tokens = add_keys(url).tokens
    auth = {"Authorization": f"Bearer {tokens['case_manager']}"}
    with client(model_settings.model_copy(update={"audit_url": url})) as c:
        bundle = c.app.state.riskscreen.model.loaded.bundle  # type: ignore[attr-defined]
        exact = bundle.contributions

        def drifted(x: np.ndarray, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
            base, contributions = exact(x, *args, **kwargs)
            return base, contributions + 1e-3  # the parts no longer add up to the score

        monkeypatch.setattr(bundle, "contributions", drifted)
        before = audit_count(url)
        response = c.post("/v1/scores", json=score_body(), headers=auth)
        assert_no_score(response, 500)  # type: ignore[arg-type]
        detail = response.json()["detail"]
        assert "not served" in detail and "operator" in detail
        assert audit_count(url) == before
        status = c.app.openapi()["paths"]["/v1/scores"]["post"]["responses"]  # type: ignore[attr-defined]
        assert "500" in status, "an answer the service gives must be declared"
