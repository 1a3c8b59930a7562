"""What a served score says: every field, exact additivity, banding, language, no caching."""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from http_support import UNLIMITED, Service, running, sqlite_url

from riskscreen.audit.chain import AuditUnavailable
from riskscreen.contract.identity import REFERENCE_REFUSAL
from riskscreen.contract.schema import FIELDS_BY_NAME, GROUPS_BY_NAME
from riskscreen.jobs.casework import notice
from riskscreen.registry import Registration
from riskscreen.settings import Settings
from service.app import create_app
from service.schemas import ScoreResponse
from service.state import KEY_CACHE_SECONDS

ISSUE_FIELDS = {
    "score_id",
    "case_ref",
    "probability",
    "log_odds",
    "base_log_odds",
    "band",
    "flagged",
    "threshold",
    "contributions",
    "reasons",
    "horizon_months",
    "model",
    "audit_record_id",
    "notice",
}
VERBS = {"en": ("raised the risk", "lowered the risk"), "sv": ("höjde risken", "sänkte risken")}


@pytest.fixture(scope="module")
def model_info(service: Service) -> dict[str, Any]:
    response = service.client.get("/v1/model", headers=service.auth("cm"))
    assert response.status_code == 200
    info: dict[str, Any] = response.json()
    return info


@pytest.fixture(scope="module")
def batch(service: Service, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """60 scores in English, served in one batch."""
    response = service.client.post(
        "/v1/scores/batch",
        json={"records": bodies[:60]},
        headers=service.auth("cm"),
        params={"lang": "en"},
    )
    assert response.status_code == 201, response.text
    scores: list[dict[str, Any]] = response.json()["scores"]
    return scores


def test_every_served_body_is_exactly_the_documented_model(
    service: Service, bodies: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    # The routes return JSON bytes built from plain data, so FastAPI does not check them against
    # their response_model; this does: same fields, same types, nothing extra.
    single = service.score(bodies[1])
    again = service.client.get(f"/v1/scores/{single['score_id']}", headers=service.auth("cm"))
    for body in (single, again.json(), *batch):
        assert ScoreResponse.model_validate(body, strict=True).model_dump(mode="json") == body
    assert again.json() == single


def test_a_warm_score_takes_no_trip_to_the_thread_pool(
    service: Service, bodies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The route scores on the event loop and awaits its commit; the key comes from memory once
    # read. A sync dependency slipped in later would cost a thread hop on every request.
    service.score(bodies[2])  # reads the key and the stop switch
    trips: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(getattr(func, "func", func), "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    started = time.monotonic()
    for body in bodies[3:8]:
        service.score(body)
    seconds = time.monotonic() - started
    # At most the once-a-second refreshes of the key and the switch, never one per request.
    assert len(trips) <= 2 * (1 + int(seconds / KEY_CACHE_SECONDS)), (trips, seconds)
    assert set(trips) <= {"KeyStore.authenticate", "AppState.scoring_enabled"}, trips


def test_a_score_carries_every_promised_field(
    service: Service, bodies: list[dict[str, Any]], model_info: dict[str, Any]
) -> None:
    score = service.score(bodies[0], params={"lang": "en"})
    assert set(score) >= ISSUE_FIELDS
    assert score["case_ref"] == bodies[0]["case_ref"]
    assert score["audit_record_id"] == score["score_id"]
    assert score["notice"] == notice("en", 24)
    assert score["notice"].startswith("Risk of no work or studies within 24 months of intake.")
    assert score["horizon_months"] == model_info["horizon_months"] == 24
    assert score["model"] == {
        "name": "riskscreen",
        "version": model_info["version"],
        "data_kind": "synthetic",
        "trained_at": model_info["trained_at"],
        "horizon_months": 24,
    }
    record = service.state.audit.get(score["score_id"])
    assert record is not None and record.kind == "score"
    assert record.payload["outputs"]["probability"] == score["probability"]
    assert record.payload["model"]["artifact_sha256"] == model_info["artifact_sha256"]


def test_contributions_add_up_to_the_served_log_odds(
    batch: list[dict[str, Any]], model_info: dict[str, Any]
) -> None:
    features = [f["field"] for f in model_info["features"]]
    for score in batch:
        contributions = [c["contribution"] for c in score["contributions"]]
        assert score["base_log_odds"] + math.fsum(contributions) == pytest.approx(
            score["log_odds"], abs=1e-6
        )
        assert score["probability"] == pytest.approx(
            1 / (1 + math.exp(-score["log_odds"])), rel=1e-12, abs=0
        )
        assert sorted(c["field"] for c in score["contributions"]) == sorted(features)
        sizes = [abs(c) for c in contributions]
        assert sizes == sorted(sizes, reverse=True)


def test_flag_and_band_follow_the_thresholds(
    batch: list[dict[str, Any]], model_info: dict[str, Any]
) -> None:
    flag, elevated = model_info["threshold"], model_info["elevated_threshold"]
    assert 0 < elevated < flag < 1
    for score in batch:
        p = score["probability"]
        assert score["threshold"] == flag
        assert score["flagged"] == (p >= flag)
        assert score["band"] == ("high" if p >= flag else "elevated" if p >= elevated else "low")
    assert {s["band"] for s in batch} == {"low", "elevated", "high"}


def test_contribution_values_and_labels_come_from_the_intake(
    batch: list[dict[str, Any]], bodies: list[dict[str, Any]]
) -> None:
    for score, body in zip(batch, bodies, strict=False):
        for c in score["contributions"]:
            assert c["value"] == body["intake"][c["field"]]
            assert c["label"] == FIELDS_BY_NAME[c["field"]].label_en


def _group_sums(score: dict[str, Any]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for c in score["contributions"]:
        group = FIELDS_BY_NAME[c["field"]].group
        sums[group] = sums.get(group, 0.0) + c["contribution"]
    return sums


def _group_label(group: str, lang: str) -> str:
    return GROUPS_BY_NAME[group].label_sv if lang == "sv" else GROUPS_BY_NAME[group].label_en


def _check_reasons(score: dict[str, Any], lang: str) -> None:
    """Each sentence names a group and the direction its summed contribution pushes."""
    sums = _group_sums(score)
    assert score["reasons"], score
    up, down = VERBS[lang]
    for sentence in score["reasons"]:
        group = max(
            (g for g in sums if sentence.startswith(_group_label(g, lang) + " ")),
            key=lambda g: len(_group_label(g, lang)),
        )
        assert sentence.startswith(f"{_group_label(group, lang)} {up if sums[group] > 0 else down}")


@pytest.mark.parametrize(
    ("params", "headers", "lang"),
    [
        ({"lang": "sv"}, {}, "sv"),
        ({"lang": "en"}, {}, "en"),
        ({}, {"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.8"}, "sv"),
        ({}, {"Accept-Language": "en-GB,en;q=0.9"}, "en"),
        ({}, {"Accept-Language": "de-DE, en;q=0.5"}, "en"),
        ({"lang": "sv"}, {"Accept-Language": "en"}, "sv"),
        ({}, {}, "sv"),
    ],
)
def test_reasons_in_swedish_or_english(
    service: Service,
    bodies: list[dict[str, Any]],
    params: dict[str, str],
    headers: dict[str, str],
    lang: str,
) -> None:
    response = service.client.post(
        "/v1/scores", json=bodies[1], params=params, headers={**service.auth("cm"), **headers}
    )
    assert response.status_code == 201
    score = response.json()
    assert score["lang"] == lang and score["notice"] == notice(lang, 24)
    assert ("24 månader" if lang == "sv" else "24 months") in score["notice"]
    _check_reasons(score, lang)
    other = "en" if lang == "sv" else "sv"
    assert not any(v in s for s in score["reasons"] for v in VERBS[other])
    for c in score["contributions"]:
        field = FIELDS_BY_NAME[c["field"]]
        assert c["label"] == (field.label_sv if lang == "sv" else field.label_en)


def test_an_unknown_language_is_422(service: Service, bodies: list[dict[str, Any]]) -> None:
    response = service.client.post(
        "/v1/scores", json=bodies[1], params={"lang": "de"}, headers=service.auth("cm")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.lang"


@pytest.mark.parametrize("case_ref", ["240101-0012", "85-01-01-1234", "2024-001234"])
def test_a_case_ref_read_as_an_identity_number_is_422_saying_why(
    service: Service, bodies: list[dict[str, Any]], case_ref: str
) -> None:
    before = service.audit_count()
    body = {**bodies[1], "case_ref": case_ref}
    for path, sent, field in (
        ("/v1/scores", body, "case_ref"),
        ("/v1/scores/batch", {"records": [bodies[2], body]}, "records.1.case_ref"),
    ):
        response = service.client.post(path, json=sent, headers=service.auth("cm"))
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {
                "field": field,
                "location": ["body"],
                "rule": "value_error",
                "message": f"Value error, {REFERENCE_REFUSAL}",
            }
        ]
        assert case_ref not in response.text
    assert service.audit_count() == before
    assert "cannot be told apart from a personal identity number" in REFERENCE_REFUSAL


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_a_score_reads_back_exactly_as_it_was_served(
    service: Service, bodies: list[dict[str, Any]], lang: str
) -> None:
    served = [service.score(b, params={"lang": lang}) for b in bodies[20:30]]
    for score in served:
        for who in ("cm", "auditor"):
            again = service.client.get(
                f"/v1/scores/{score['score_id']}", params={"lang": lang}, headers=service.auth(who)
            )
            assert again.status_code == 200
            assert again.json() == score


def test_every_response_carrying_a_score_is_not_cached(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    cm, auditor = service.auth("cm"), service.auth("auditor")
    created = service.client.post("/v1/scores", json=bodies[2], headers=cm)
    score_id = created.json()["score_id"]
    responses = {
        "score": created,
        "batch": service.client.post("/v1/scores/batch", json={"records": bodies[3:5]}, headers=cm),
        "read (owner)": service.client.get(f"/v1/scores/{score_id}", headers=cm),
        "read (auditor)": service.client.get(f"/v1/scores/{score_id}", headers=auditor),
        "decision": service.client.post(
            f"/v1/scores/{score_id}/decision",
            json={"support": "usual", "agrees_with_flag": True, "reason_code": "other"},
            headers=cm,
        ),
        "audit records": service.client.get("/v1/audit/records", headers=auditor),
        "replay": service.client.get(f"/v1/audit/records/{score_id}/replay", headers=auditor),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 201), (name, response.text)
        assert response.headers.get("cache-control") == "no-store", name


def test_start_up_objects_are_frozen_out_of_the_collector_while_serving(
    registered: tuple[Settings, Registration], tmp_path: Path, bodies: list[dict[str, Any]]
) -> None:
    def collected(obj: object) -> bool:  # in a generation the collector scans
        return any(o is obj for o in gc.get_objects())

    base, _ = registered
    gc.unfreeze()  # whatever an app started earlier in this process froze
    with running(base.model_copy(update={"audit_url": sqlite_url(tmp_path), **UNLIMITED})) as app:
        bundle = app.state.model.loaded.bundle  # loaded at start-up
        assert gc.is_tracked(bundle) and not collected(bundle)
        app.score(bodies[0])  # serving goes on as before
    assert gc.get_freeze_count() == 0 and collected(bundle)


def test_a_server_stopped_by_an_error_still_closes_its_audit_log(
    registered: tuple[Settings, Registration], tmp_path: Path
) -> None:
    base, _ = registered
    app = create_app(base.model_copy(update={"audit_url": sqlite_url(tmp_path)}))

    async def serve_then_fail() -> None:
        async with app.router.lifespan_context(app):
            raise RuntimeError("the server stops on an error")

    with pytest.raises(RuntimeError, match="stops on an error"):
        anyio.run(serve_then_fail)
    with pytest.raises(AuditUnavailable, match="closed"):
        app.state.riskscreen.audit.append("score", {"case_ref": "AFTER-STOP"})
    assert gc.get_freeze_count() == 0
