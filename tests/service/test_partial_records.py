"""A version that does not use a field does not ask for it: the request schema is the served
version's, built at start-up and again at reload.

A municipality that does not record `driving_licence` or the depression screen trains a version
without them. Scoring that version must not make anyone invent the values; a version that uses
them must refuse a record without them (422 naming the field); a client that sends them anyway
keeps working, and what it sent for them is not stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import UNLIMITED, Service, running, sqlite_url

from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult, run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.registry import register
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort

NOT_RECORDED = ("driving_licence", "depression_symptoms")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    small_cohort: Cohort,
    small_config: TrainConfig,
    trained: TrainingResult,
) -> Iterator[Service]:
    """An app serving the full model first; the version without NOT_RECORDED is registered
    as champion after start-up, for the tests to reload."""
    data_dir: Path = tmp_path_factory.mktemp("partial")
    settings = Settings(data_dir=data_dir)
    assert register(trained, small_config, settings).champion
    features = tuple(f for f in small_config.features if f not in NOT_RECORDED)
    partial_cfg = small_config.model_copy(update={"features": features})
    data = TrainingData(
        small_cohort.intake, small_cohort.outcomes, small_cohort.oracle, "synthetic"
    )
    partial = run_training(data, partial_cfg)
    with running(settings.model_copy(update={"audit_url": sqlite_url(data_dir), **UNLIMITED})) as s:
        assert register(partial, partial_cfg, settings).champion
        yield s


def _intake_schema(service: Service) -> dict[str, Any]:
    schemas = service.client.get("/openapi.json").json()["components"]["schemas"]
    intake: dict[str, Any] = schemas["IntakeRecord"]
    return intake


def _without(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {**body, "intake": {k: v for k, v in body["intake"].items() if k not in fields}}


def test_partial_versions_take_records_without_their_unused_fields(
    served: Service, bodies: list[dict[str, Any]]
) -> None:
    # Before the reload, the full version serves: it uses the fields and says so.
    assert set(NOT_RECORDED) <= set(_intake_schema(served)["required"])
    refused = served.client.post(
        "/v1/scores", json=_without(bodies[0], NOT_RECORDED), headers=served.auth("cm")
    )
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {f"intake.{f}" for f in NOT_RECORDED}
    assert all(e["rule"] == "missing" for e in refused.json()["errors"])

    reloaded = served.client.post("/v1/admin/reload", headers=served.auth("admin"))
    assert reloaded.status_code == 200, reloaded.text
    schema = _intake_schema(served)
    assert not set(NOT_RECORDED) & set(schema["required"])
    assert {"intake_date", "age", "years_of_schooling"} <= set(schema["required"])
    model = served.client.get("/v1/model", headers=served.auth("cm")).json()
    assert not set(NOT_RECORDED) & {f["field"] for f in model["features"]}

    score = served.score(_without(bodies[1], NOT_RECORDED), params={"lang": "en"})
    assert not set(NOT_RECORDED) & {c["field"] for c in score["contributions"]}
    batch = served.client.post(
        "/v1/scores/batch",
        json={"records": [_without(b, NOT_RECORDED) for b in bodies[2:4]]},
        headers=served.auth("cm"),
    )
    assert batch.status_code == 201, batch.text

    sent_anyway = served.score(bodies[4])  # an existing client sends every field
    record = served.state.audit.get(sent_anyway["score_id"])
    assert record is not None
    assert not set(NOT_RECORDED) & set(record.payload["inputs"])
    assert not set(NOT_RECORDED) & set(record.payload["audit_attributes"])
    wrong = _without(bodies[5], ()) | {"intake": {**bodies[5]["intake"], "driving_licence": 3}}
    response = served.client.post("/v1/scores", json=wrong, headers=served.auth("cm"))
    assert response.status_code == 422  # still checked against the contract when sent
    assert [e["field"] for e in response.json()["errors"]] == ["intake.driving_licence"]
