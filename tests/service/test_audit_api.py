"""The auditor's endpoints: paging and filtering the log, replaying scores, finding tampering."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import Service, sqlite_url
from typer.testing import CliRunner

from riskscreen.audit.records import record_hash
from riskscreen.cli import app as cli
from riskscreen.jobs.casework import score_payload
from riskscreen.model.bundle import LEAF_TABLES, PRED_CONTRIB, Calibration
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import Registration, client, register
from riskscreen.settings import Settings
from service.schemas import ScoreRequest

DECISION = {"support": "usual", "agrees_with_flag": True, "reason_code": "other"}


def _pages(service: Service, **params: Any) -> Iterator[dict[str, Any]]:
    after = None
    while True:
        query = {**params, **({"after_seq": after} if after is not None else {})}
        response = service.client.get(
            "/v1/audit/records", params=query, headers=service.auth("auditor")
        )
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        after = page["next_after_seq"]
        if after is None:
            return


@pytest.fixture(scope="module")
def logged(service: Service, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seven scores and a decision, the whole log of this module's service so far."""
    scores = [service.score(b) for b in bodies[:7]]
    response = service.client.post(
        f"/v1/scores/{scores[0]['score_id']}/decision", json=DECISION, headers=service.auth("cm")
    )
    assert response.status_code == 201
    return scores


def test_pages_cover_the_log_once_in_order(service: Service, logged: list[dict[str, Any]]) -> None:
    pages = list(_pages(service, limit=3))
    seqs = [r["seq"] for p in pages for r in p["records"]]
    assert seqs == list(range(1, service.audit_count() + 1))
    assert all(len(p["records"]) == 3 for p in pages[:-1])
    assert pages[0]["next_after_seq"] == 3
    records = [r for p in pages for r in p["records"]]
    assert [r["record_id"] for r in records if r["kind"] == "score"][:7] == [
        s["score_id"] for s in logged
    ]
    first = records[0]
    assert first["payload"]["outputs"]["probability"] == logged[0]["probability"]
    assert first["prev_hash"] == "0" * 64 and records[1]["prev_hash"] == first["hash"]


def test_time_filters_are_inclusive_then_exclusive(
    service: Service, logged: list[dict[str, Any]]
) -> None:
    records = [r for p in _pages(service, limit=1000) for r in p["records"]]
    middle = records[3]["created_at"]
    since = [r["seq"] for p in _pages(service, since=middle) for r in p["records"]]
    until = [r["seq"] for p in _pages(service, until=middle) for r in p["records"]]
    assert since == [r["seq"] for r in records[3:]]
    assert until == [1, 2, 3]
    window = [
        r["seq"]
        for p in _pages(service, since=records[1]["created_at"], until=middle)
        for r in p["records"]
    ]
    assert window == [2, 3]


def test_a_time_without_zone_is_422_not_500(service: Service) -> None:
    for name in ("since", "until"):
        response = service.client.get(
            "/v1/audit/records",
            params={name: "2024-01-01T00:00:00"},
            headers=service.auth("auditor"),
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == f"query.{name}"


def test_the_version_filter(service: Service, logged: list[dict[str, Any]]) -> None:
    version = logged[0]["model"]["version"]
    mine = [r for p in _pages(service, model_version=version) for r in p["records"]]
    assert {r["kind"] for r in mine} == {"score", "decision"}  # a decision names its model
    assert all(r["payload"]["model"]["version"] == version for r in mine)
    assert [p["records"] for p in _pages(service, model_version="999")] == [[]]


def test_verify_reports_an_intact_chain(service: Service, logged: list[dict[str, Any]]) -> None:
    response = service.client.get("/v1/audit/verify", headers=service.auth("auditor"))
    body = response.json()
    assert body["ok"] is True and body["first_bad_seq"] is None and body["reason"] is None
    assert body["checked"] == body["head_seq"] == service.audit_count()
    assert body["head_hash"] == service.state.audit.head()[1]  # type: ignore[index]


def _replay(service: Service, record_id: str) -> dict[str, Any]:
    response = service.client.get(
        f"/v1/audit/records/{record_id}/replay", headers=service.auth("auditor")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_replay_recomputes_every_field_identically(
    service: Service, logged: list[dict[str, Any]]
) -> None:
    features = service.state.model.loaded.bundle.spec.fields
    for score in logged:
        replay = _replay(service, score["score_id"])
        assert replay["matches"] is True
        assert replay["model_version"] == score["model"]["version"]
        fields = {f["name"]: f for f in replay["fields"]}
        assert all(f["equal"] and f["logged"] == f["replayed"] for f in fields.values())
        expected = {"probability", "log_odds", "base_log_odds", "band", "flagged", "threshold"}
        assert set(fields) == expected | {f"contributions.{f}" for f in features}
        for name in expected:
            assert fields[name]["replayed"] == score[name]
        for c in score["contributions"]:
            assert fields[f"contributions.{c['field']}"]["replayed"] == c["contribution"]


def test_replay_recomputes_with_the_explainer_the_record_names(
    service: Service, logged: list[dict[str, Any]], bodies: list[dict[str, Any]]
) -> None:
    # The two exact explainers agree only to float rounding, so replay must use the one that
    # made the record; records from before the explainer was named came from pred_contrib.
    record = service.state.audit.get(logged[0]["score_id"])
    assert record is not None and record.payload["model"]["explainer"] == LEAF_TABLES
    served = service.state.model
    key = service.keys["cm"]
    intake = ScoreRequest.model_validate(bodies[50]).intake.model_dump()  # type: ignore[attr-defined]
    result = served.scorer.score(intake, explainer=PRED_CONTRIB)
    legacy = score_payload(key, "LEGACY-1", intake, result, served.loaded)
    del legacy["model"]["explainer"]
    old = service.state.audit.append("score", legacy)
    replay = _replay(service, old.record_id)
    assert replay["matches"] is True, [f for f in replay["fields"] if not f["equal"]]


def test_only_score_records_replay(service: Service, logged: list[dict[str, Any]]) -> None:
    decision = service.state.audit.list(kind="decision", limit=1)[0]
    for record_id in (decision.record_id, str(uuid.uuid4())):
        response = service.client.get(
            f"/v1/audit/records/{record_id}/replay", headers=service.auth("auditor")
        )
        assert response.status_code == 404


# --- a new champion does not change how old scores replay --------------------------------------


@pytest.fixture
def second_champion(
    registered: tuple[Settings, Registration],
    trained: TrainingResult,
    small_config: TrainConfig,
) -> Iterator[Registration]:
    """Register a recalibrated model and make it champion; the alias is moved back afterwards.

    The session's registry is shared with other tests of this process (which run one at a
    time), so the alias must be where it was when this fixture ends.
    """
    settings, first = registered
    shifted = Calibration(
        trained.bundle.calibration.slope, trained.bundle.calibration.intercept + 0.4
    )
    bundle = dataclasses.replace(
        trained.bundle, calibration=shifted, provenance=dict(trained.bundle.provenance)
    )
    second = register(dataclasses.replace(trained, bundle=bundle), small_config, settings)
    try:
        assert second.champion
        yield second
    finally:
        client(settings).set_registered_model_alias("riskscreen", "champion", first.version)


def test_replay_uses_the_version_named_in_the_record(
    service_factory: Callable[..., Service],
    bodies: list[dict[str, Any]],
    registered: tuple[Settings, Registration],
    second_champion: Registration,
    tmp_path: Path,
) -> None:
    # The app started before the alias moved still serves the first version ...
    settings, first = registered
    client(settings).set_registered_model_alias("riskscreen", "champion", first.version)
    service = service_factory()
    old = service.score(bodies[40])
    assert old["model"]["version"] == first.version
    # ... until an admin reloads: then new scores come from the new champion.
    client(settings).set_registered_model_alias("riskscreen", "champion", second_champion.version)
    reload = service.client.post("/v1/admin/reload", headers=service.auth("admin"))
    assert reload.json()["version"] == second_champion.version
    new = service.score(bodies[40])
    assert new["model"]["version"] == second_champion.version
    assert new["probability"] != old["probability"]

    replay = _replay(service, old["score_id"])
    assert replay["matches"] is True and replay["model_version"] == first.version
    probability = next(f for f in replay["fields"] if f["name"] == "probability")
    assert probability["replayed"] == old["probability"]
    assert _replay(service, new["score_id"])["matches"] is True
    # Reading the old score back still names the model that made it.
    again = service.client.get(f"/v1/scores/{old['score_id']}", headers=service.auth("cm"))
    assert again.json() == old
    filtered = service.client.get(
        "/v1/audit/records",
        params={"model_version": second_champion.version},
        headers=service.auth("auditor"),
    ).json()["records"]
    assert [r["record_id"] for r in filtered if r["kind"] == "score"] == [new["score_id"]]

    # The auditor's command line replays both, each with its own version.
    result = CliRunner().invoke(
        cli,
        ["audit", "replay", "--all"],
        env={
            "RISKSCREEN_DATA_DIR": str(settings.data_dir),
            "RISKSCREEN_AUDIT_URL": service.settings.audit_url,
        },
    )
    assert result.exit_code == 0, result.output
    assert "replayed 2 score(s): 2 identical, 0 differ" in result.output


# --- tampering, found by the endpoint and by the command line -----------------------------------


@pytest.fixture(scope="module")
def chain(
    service_factory: Callable[..., Service], bodies: list[dict[str, Any]]
) -> tuple[Path, int]:
    """A SQLite audit file holding six scores and two decisions: (path, record count)."""
    service = service_factory()
    scores = [service.score(b) for b in bodies[50:56]]
    for s in scores[:2]:
        path = f"/v1/scores/{s['score_id']}/decision"
        assert (
            service.client.post(path, json=DECISION, headers=service.auth("cm")).status_code == 201
        )
    url = service.settings.audit_url
    assert url is not None
    return Path(url.removeprefix("sqlite:///")), service.audit_count()


def _edit(db: sqlite3.Connection) -> None:
    db.execute(
        "UPDATE audit_records SET payload = json_set(payload, '$.case_ref', 'X9') WHERE seq = 4"
    )


def _delete(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM audit_records WHERE seq = 4")


def _insert(db: sqlite3.Connection) -> None:
    """A forged record at position 4 with a correct hash and link: the next record breaks."""
    db.execute("UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 4")
    db.execute("UPDATE audit_records SET seq = seq - 999 WHERE seq >= 1000")
    prev_hash = db.execute("SELECT hash FROM audit_records WHERE seq = 3").fetchone()[0]
    forged = {
        "seq": 4,
        "record_id": "00000000-0000-0000-0000-000000000000",
        "kind": "decision",
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "payload_json": '{"case_ref":"X9"}',
        "prev_hash": prev_hash,
    }
    db.execute(
        "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*forged.values(), record_hash(**forged)),  # type: ignore[arg-type]
    )


def _reorder(db: sqlite3.Connection) -> None:
    db.execute("UPDATE audit_records SET seq = -1 WHERE seq = 4")
    db.execute("UPDATE audit_records SET seq = 4 WHERE seq = 5")
    db.execute("UPDATE audit_records SET seq = 5 WHERE seq = -1")


# (tampering, first bad position, words in the reason)
TAMPERING = {
    "edited": (_edit, 4, "hash does not match"),
    "deleted": (_delete, 4, "missing record"),
    "inserted": (_insert, 5, "prev_hash does not match"),
    "reordered": (_reorder, 4, "prev_hash does not match"),
}


@pytest.fixture(params=list(TAMPERING))
def tampered(
    request: pytest.FixtureRequest, chain: tuple[Path, int], tmp_path: Path
) -> tuple[str, int, str]:
    """A tampered copy of the chain: (audit URL, first bad position, words in the reason)."""
    source, count = chain
    change, position, reason = TAMPERING[request.param]
    target = tmp_path / "audit.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dump = "SELECT seq, record_id, payload, hash FROM audit_records ORDER BY seq"
    db = sqlite3.connect(target)
    try:
        before = db.execute(dump).fetchall()
        change(db)
        db.commit()
        assert db.execute(dump).fetchall() != before
    finally:
        db.close()
    assert count >= 6
    return sqlite_url(tmp_path), position, reason


def test_verify_endpoint_names_the_first_broken_record(
    service_factory: Callable[..., Service], tampered: tuple[str, int, str]
) -> None:
    url, position, reason = tampered
    service = service_factory(url)
    body = service.client.get("/v1/audit/verify", headers=service.auth("auditor")).json()
    assert body["ok"] is False
    assert body["first_bad_seq"] == position
    assert body["checked"] == position - 1 == body["head_seq"]
    assert reason in body["reason"]


def test_verify_command_exits_1_naming_the_position(
    tampered: tuple[str, int, str], tmp_path: Path
) -> None:
    url, position, reason = tampered
    env = {"RISKSCREEN_DATA_DIR": str(tmp_path), "RISKSCREEN_AUDIT_URL": url}
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 1, result.output
    assert f"BROKEN at record {position}:" in result.output
    assert reason in result.output


def test_verify_command_passes_the_untouched_chain(chain: tuple[Path, int], tmp_path: Path) -> None:
    env = {
        "RISKSCREEN_DATA_DIR": str(tmp_path),
        "RISKSCREEN_AUDIT_URL": sqlite_url(chain[0].parent),
    }
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert f"OK: {chain[1]} records verify" in result.output
