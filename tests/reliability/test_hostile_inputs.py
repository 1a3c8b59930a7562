"""Hostile inputs, one test each: a 4xx that names the problem, the process stays up, nothing is
written to the audit log, and no submitted health or disability value (nor an identity number)
comes back in the answer or reaches the logs.

The corpus (reliability_hostile.py) is derived from the schema declaration. It runs in process,
case by case with the logs captured, and then whole against a real `riskscreen serve` process,
whose structured logs are read back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from reliability_hostile import SCORE_REF, Hostile, corpus
from reliability_servers import command_server, free_port, riskscreen_cli, server_env
from reliability_support import (
    Keys,
    add_keys,
    assert_no_special_values,
    audit_count,
    client,
    score_body,
    sqlite_url,
)

from riskscreen.settings import Settings

CASES = corpus()


@dataclass
class Target:
    client: TestClient
    url: str
    keys: Keys
    score_id: str


@pytest.fixture(scope="module")
def target(model_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("hostile")
    settings = model_settings.model_copy(
        update={
            "audit_url": sqlite_url(folder),
            "rate_limit_per_minute": 10**9,
            "rate_limit_burst": 10**9,
        }
    )
    keys = add_keys(settings.resolved_audit_url)
    with client(settings) as c:
        r = c.post("/v1/scores", json=score_body(), headers=keys.auth("case_manager"))
        assert r.status_code == 201, r.text
        yield Target(c, settings.resolved_audit_url, keys, r.json()["score_id"])


def send(c: httpx.Client | TestClient, case: Hostile, token: str, score_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    path = case.path.replace(SCORE_REF, score_id)
    content: bytes | Iterator[bytes] = case.body
    if case.chunked:
        body = case.body
        content = iter([body[i : i + 8192] for i in range(0, len(body), 8192)])
    return c.post(path, content=content, headers=headers)


def check_answer(case: Hostile, response: httpx.Response) -> None:
    assert response.status_code == case.status, (case.id, response.status_code, response.text)
    if case.status >= 400:
        problem = response.json()
        assert problem["detail"]
        text = response.text
        for name in case.names:
            assert name in text, (case.id, name, text)
        for error in problem.get("errors", []):
            assert set(error) == {"field", "location", "rule", "message"}  # never the input
        assert_no_special_values(text, case.intake)
        for secret in case.secrets:
            assert secret not in text


def _log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in records)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input(target: Target, case: Hostile, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    before = audit_count(target.url)
    response = send(target.client, case, target.keys.tokens["case_manager"], target.score_id)
    check_answer(case, response)
    written = audit_count(target.url) - before
    assert written == (case.writes if case.status == 201 else 0)
    logs = _log_text(caplog.records)
    if case.status >= 400:
        assert_no_special_values(logs, case.intake)
    for secret in case.secrets:
        assert secret not in logs
    assert target.client.get("/healthz").status_code == 200
    assert target.client.get("/readyz").status_code == 200


def test_the_corpus_covers_every_kind_of_attack() -> None:
    ids = " ".join(c.id for c in CASES)
    for needle in (
        "NaN",
        "Infinity",
        "1e309",
        '"NaN"',
        "null",
        "unknown",
        "nested",
        "over the limit",
        "NUL",
        "surrogate",
        "case_ref 1990",
        "comment 1990",
        "case_ref 19850101_1234",  # issue 16, Why 2: separators and invisible characters
        "comment 8501 01-1234",
        "comment '850101\\u2013",
        "bidi override in a comment",
        "zero-width space in a comment",
        "C1 control in a comment",
        "batch of",
        "empty body",
        "content type",
    ):
        assert needle in ids, needle
    assert len(CASES) > 300


def test_a_real_server_survives_the_corpus_and_logs_nothing_sensitive(
    model_settings: Settings, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    url = sqlite_url(tmp_path)
    keys = add_keys(url)
    settings = model_settings.model_copy(
        update={"audit_url": url, "rate_limit_per_minute": 10**9, "rate_limit_burst": 10**9}
    )
    port = free_port()
    argv = [riskscreen_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "server.log"
    with (
        command_server(argv, server_env(settings), port, log) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as c,
    ):
        r = c.post("/v1/scores", json=score_body(), headers=keys.auth("case_manager"))
        assert r.status_code == 201
        score_id = r.json()["score_id"]
        before = audit_count(url)
        accepted = 0
        for case in CASES:
            check_answer(case, send(c, case, keys.tokens["case_manager"], score_id))
            accepted += case.writes if case.status == 201 else 0
        assert audit_count(url) - before == accepted
        assert c.get("/readyz").status_code == 200
        assert server.alive()
        r = c.post("/v1/scores", json=score_body("after-all"), headers=keys.auth("case_manager"))
        assert r.status_code == 201
    logs = server.log_text()
    assert logs.count('"route"') >= len(CASES)  # the access log did record every request
    secrets = {s for c in CASES for s in c.secrets}
    assert not [s for s in secrets if s in logs]
    assert_no_special_values(logs, score_body()["intake"])
    record_property(
        "figures",
        f"hostile inputs: {len(CASES)} cases in process and against a real server; "
        f"{sum(c.status >= 400 for c in CASES)} refused with a 4xx naming the problem, "
        "nothing written, logged or echoed",
    )
