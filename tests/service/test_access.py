"""Who may do what, through HTTP: every endpoint, every role, the owner rule, and bad tokens."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from http_support import Service

from riskscreen.audit.keys import KeyStore
from service.state import KEY_CACHE_SECONDS

# (method, path template, allowed roles). {score} and {record} are filled with real ids.
ENDPOINTS: list[tuple[str, str, frozenset[str]]] = [
    ("POST", "/v1/scores", frozenset({"case_manager"})),
    ("POST", "/v1/scores/batch", frozenset({"case_manager"})),
    ("GET", "/v1/scores/{score}", frozenset({"case_manager", "auditor"})),
    ("POST", "/v1/scores/{score}/decision", frozenset({"case_manager"})),
    ("GET", "/v1/audit/records", frozenset({"auditor"})),
    ("GET", "/v1/audit/verify", frozenset({"auditor"})),
    ("GET", "/v1/audit/records/{score}/replay", frozenset({"auditor"})),
    ("GET", "/v1/model", frozenset({"case_manager", "auditor", "admin"})),
    ("POST", "/v1/admin/reload", frozenset({"admin"})),
    ("POST", "/v1/admin/scoring", frozenset({"admin"})),
]
ROLE_OF = {"cm": "case_manager", "auditor": "auditor", "admin": "admin"}
DECISION = {"support": "intensified", "agrees_with_flag": True, "reason_code": "other"}


@pytest.fixture(scope="module")
def scored(service: Service, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """One score made by the case manager `cm`."""
    return service.score(bodies[0])


def _body(path: str, bodies: list[dict[str, Any]]) -> dict[str, Any] | None:
    if path == "/v1/scores":
        return bodies[1]
    if path == "/v1/scores/batch":
        return {"records": bodies[2:4]}
    if path.endswith("/decision"):
        return DECISION
    if path == "/v1/admin/scoring":
        return {"enabled": True}
    return None


def call(
    service: Service,
    method: str,
    template: str,
    score_id: str,
    bodies: list[dict[str, Any]],
    headers: dict[str, str],
) -> Any:
    path = template.format(score=score_id)
    return service.client.request(method, path, json=_body(template, bodies), headers=headers)


@pytest.mark.parametrize("who", ["cm", "auditor", "admin"])
def test_each_role_reaches_exactly_its_endpoints(
    service: Service, scored: dict[str, Any], bodies: list[dict[str, Any]], who: str
) -> None:
    for method, template, roles in ENDPOINTS:
        response = call(service, method, template, scored["score_id"], bodies, service.auth(who))
        if ROLE_OF[who] in roles:
            assert response.status_code in (200, 201), (template, response.text)
        else:
            assert response.status_code == 403, (template, response.text)
            assert "role" in response.json()["detail"]


def _revoked(service: Service) -> str:
    key, token = service.state.keys.create("auditor", "leaver")
    service.state.keys.revoke(key.key_id)
    return f"Bearer {token}"


def test_a_key_revoked_by_another_process_is_refused_within_a_second(service: Service) -> None:
    key, token = service.state.keys.create("auditor", "leaver elsewhere")
    headers = {"Authorization": f"Bearer {token}"}
    assert service.client.get("/v1/audit/verify", headers=headers).status_code == 200
    # As `riskscreen keys revoke` does: its own store on the same database.
    KeyStore(service.state.audit.engine).revoke(key.key_id)
    revoked_at = time.monotonic()
    while service.client.get("/v1/audit/verify", headers=headers).status_code != 401:
        assert time.monotonic() - revoked_at < KEY_CACHE_SECONDS + 2.0, "still let in"
        time.sleep(0.05)
    assert service.client.get("/v1/audit/verify", headers=headers).status_code == 401


def _wrong_secret(service: Service) -> str:
    key_id = service.keys["cm"].key_id
    return f"Bearer rs_{key_id}_{secrets.token_urlsafe(32)}"


BAD_AUTH: dict[str, Callable[[Service], str | None]] = {
    "none": lambda s: None,
    "malformed": lambda s: "Bearer not-a-token",
    "unknown": lambda s: f"Bearer rs_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}",
    "wrong-secret": _wrong_secret,
    "revoked": _revoked,
    "not-bearer": lambda s: f"Basic {s.tokens['cm']}",
}


@pytest.mark.parametrize("kind", list(BAD_AUTH))
def test_every_protected_endpoint_answers_401_to_a_bad_token(
    service: Service, scored: dict[str, Any], bodies: list[dict[str, Any]], kind: str
) -> None:
    value = BAD_AUTH[kind](service)
    headers = {"Authorization": value} if value else {}
    before = service.audit_count()
    for method, template, _ in ENDPOINTS:
        response = call(service, method, template, scored["score_id"], bodies, headers)
        assert response.status_code == 401, (template, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "probability" not in response.text
    assert service.audit_count() == before


def test_a_case_manager_reads_only_their_own_scores(
    service: Service, scored: dict[str, Any]
) -> None:
    path = f"/v1/scores/{scored['score_id']}"
    mine = service.client.get(path, headers=service.auth("cm"))
    assert mine.status_code == 200 and mine.json()["score_id"] == scored["score_id"]
    theirs = service.client.get(path, headers=service.auth("cm2"))
    assert theirs.status_code == 404
    assert "probability" not in theirs.text and scored["case_ref"] not in theirs.text
    assert service.client.get(path, headers=service.auth("auditor")).status_code == 200
    unknown = service.client.get(f"/v1/scores/{uuid.uuid4()}", headers=service.auth("cm"))
    assert unknown.status_code == 404
    # What another case manager gets for a real id is indistinguishable from a missing one.
    assert theirs.json() == unknown.json()


def test_only_the_owner_records_a_decision(service: Service, bodies: list[dict[str, Any]]) -> None:
    score = service.score(bodies[5])
    path = f"/v1/scores/{score['score_id']}/decision"
    assert service.client.post(path, json=DECISION, headers=service.auth("cm2")).status_code == 404
    assert (
        service.client.post(path, json=DECISION, headers=service.auth("auditor")).status_code == 403
    )
    before = service.audit_count()
    decided = service.client.post(path, json=DECISION, headers=service.auth("cm"))
    assert decided.status_code == 201, decided.text
    body = decided.json()
    assert body["score_id"] == score["score_id"]
    assert {k: body[k] for k in DECISION} == DECISION
    assert service.audit_count() == before + 1
    record = service.state.audit.get(body["audit_record_id"])
    assert record is not None and record.kind == "decision"
    assert record.payload["score_id"] == score["score_id"]
    assert record.payload["key_id"] == service.keys["cm"].key_id
    missing = service.client.post(
        f"/v1/scores/{uuid.uuid4()}/decision", json=DECISION, headers=service.auth("cm")
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"comment": "klient 19850312-1234 avböjde"}, "comment"),
        ({"comment": "klient 850312-12 34 avböjde"}, "comment"),  # issue 16, Why 2
        ({"comment": "klient 850312\u200b-1234 avböjde"}, "comment"),
        ({"comment": "klient \u202eavböjde"}, "comment"),
        ({"comment": "x" * 501}, "comment"),
        ({"reason_code": "gut_feeling"}, "reason_code"),
        ({"support": "less"}, "support"),
        ({"agrees_with_flag": "yes"}, "agrees_with_flag"),
        ({"note": "extra"}, "note"),
    ],
)
def test_invalid_decisions_are_422_and_not_logged(
    service: Service, scored: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    before = service.audit_count()
    response = service.client.post(
        f"/v1/scores/{scored['score_id']}/decision",
        json={**DECISION, **change},
        headers=service.auth("cm"),
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert "850312" not in response.text  # the rejected value is never echoed
    assert service.audit_count() == before


def test_a_comment_of_500_characters_is_accepted(service: Service, scored: dict[str, Any]) -> None:
    response = service.client.post(
        f"/v1/scores/{scored['score_id']}/decision",
        json={**DECISION, "comment": "å" * 500},
        headers=service.auth("cm"),
    )
    assert response.status_code == 201, response.text


def test_batch_of_100_is_scored_and_logged(service: Service, bodies: list[dict[str, Any]]) -> None:
    before = service.audit_count()
    response = service.client.post(
        "/v1/scores/batch", json={"records": bodies[:100]}, headers=service.auth("cm")
    )
    assert response.status_code == 201, response.text
    scores = response.json()["scores"]
    assert [s["case_ref"] for s in scores] == [b["case_ref"] for b in bodies[:100]]
    assert len({s["score_id"] for s in scores}) == 100
    assert service.audit_count() == before + 100


def _bad_record(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = [dict(b) for b in bodies[:5]]
    records[3] = {**records[3], "intake": {**records[3]["intake"], "self_rated_health": 9}}
    return records


@pytest.mark.parametrize(
    "records",
    [
        pytest.param(lambda b: b[:101], id="101-records"),
        pytest.param(lambda b: [], id="empty"),
        pytest.param(_bad_record, id="one-bad-record"),
    ],
)
def test_an_invalid_batch_is_422_and_writes_nothing(
    service: Service, bodies: list[dict[str, Any]], records: Callable[..., Any]
) -> None:
    before = service.audit_count()
    response = service.client.post(
        "/v1/scores/batch", json={"records": records(bodies)}, headers=service.auth("cm")
    )
    assert response.status_code == 422, response.text
    assert "probability" not in response.text
    assert service.audit_count() == before


def test_a_bad_record_in_a_batch_is_named_without_its_value(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    response = service.client.post(
        "/v1/scores/batch", json={"records": _bad_record(bodies)}, headers=service.auth("cm")
    )
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["records.3.intake.self_rated_health"]
    assert '"input"' not in response.text and ": 9" not in response.text


def test_any_role_may_read_the_model(service: Service) -> None:
    for who in ("cm", "auditor", "admin"):
        response = service.client.get("/v1/model", headers=service.auth(who))
        assert response.status_code == 200
        body = response.json()
        assert (
            body["name"] == "riskscreen" and body["version"] == service.state.model.loaded.version
        )
        assert body["features"] and body["metrics"]["test_roc_auc"] > 0.5
        assert set(body["gates"].values()) == {True}


def test_the_stop_switch_stops_scoring_until_switched_on(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    switch = "/v1/admin/scoring"
    off = service.client.post(switch, json={"enabled": False}, headers=service.auth("admin"))
    try:
        assert off.status_code == 200 and off.json()["enabled"] is False
        before = service.audit_count()
        for path, body in (
            ("/v1/scores", bodies[7]),
            ("/v1/scores/batch", {"records": bodies[7:9]}),
        ):
            stopped = service.client.post(path, json=body, headers=service.auth("cm"))
            assert stopped.status_code == 503
            assert "intake proceeds manually" in stopped.json()["detail"]
            assert "probability" not in stopped.text
        assert service.audit_count() == before
        ready = service.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["scoring_enabled"] is False
    finally:
        on = service.client.post(switch, json={"enabled": True}, headers=service.auth("admin"))
    assert on.status_code == 200 and on.json()["enabled"] is True
    service.score(bodies[7])
    actions = [r.payload["action"] for r in service.state.audit.list(kind="admin", limit=1000)][-2:]
    assert actions == ["scoring_disabled", "scoring_enabled"]


def test_reload_serves_the_champion_and_is_logged(service: Service) -> None:
    response = service.client.post("/v1/admin/reload", headers=service.auth("admin"))
    assert response.status_code == 200
    assert response.json()["version"] == service.state.model.loaded.version
    last = service.state.audit.list(kind="admin", limit=1000)[-1]
    assert last.payload["action"] == "reload"
    assert last.payload["model"]["artifact_sha256"] == response.json()["artifact_sha256"]


def test_probes_need_no_key(service: Service) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    ready = service.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "model_loaded": True,
        "audit_writable": True,
        "scoring_enabled": True,
    }
    assert service.client.get("/metrics").status_code == 200


def test_metrics_hold_no_case_reference_and_no_intake_value(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    made = service.score(bodies[11])
    read = service.client.get(f"/v1/scores/{made['score_id']}", headers=service.auth("cm"))
    assert read.status_code == 200
    text = service.client.get("/metrics").text
    assert re.search(r'route="/v1/scores/\{score_id[^}"]*\}"', text)  # templates, not paths
    assert made["score_id"] not in text
    for body in bodies[:12]:
        assert body["case_ref"] not in text
    intake_words = {
        str(v)
        for b in bodies[:12]
        for v in b["intake"].values()
        if isinstance(v, str) and not v.isdigit()
    }
    intake_words |= set(bodies[0]["intake"])  # field names, too: no value rides on a label
    leaked = sorted(w for w in intake_words if w in text)
    assert leaked == []
