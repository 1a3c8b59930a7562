"""An answer that is not known for one person is a value the model learns from, never imputed.

The schema declares which fields may be unknown (explicit null). A version trained on data with
unknown schooling and driving licence learns from them and accepts null there, shows it as "not
known" in the reasons and keeps additivity; a field it never saw unknown is refused with a 422
that says why, since the trees would otherwise treat null as some default value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from http_support import UNLIMITED, Service, running, sqlite_url

from riskscreen.contract.schema import FIELDS_BY_NAME, MAY_BE_UNKNOWN
from riskscreen.explain.reasons import GroupReason, reason_sentence
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.registry import register
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort

UNKNOWN = ("years_of_schooling", "driving_licence")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, small_cohort: Cohort, small_config: TrainConfig
) -> Iterator[Service]:
    intake = small_cohort.intake.copy()
    blank = np.random.default_rng(3).random(len(intake)) < 0.15
    intake["years_of_schooling"] = intake["years_of_schooling"].astype("Int64").mask(blank)
    intake["driving_licence"] = intake["driving_licence"].astype("boolean").mask(~blank)
    result = run_training(
        TrainingData(intake, small_cohort.outcomes, small_cohort.oracle, "synthetic"), small_config
    )
    assert result.bundle.unknown_fields == UNKNOWN
    data_dir: Path = tmp_path_factory.mktemp("unknowns")
    settings = Settings(data_dir=data_dir)
    assert register(result, small_config, settings).champion
    with running(settings.model_copy(update={"audit_url": sqlite_url(data_dir), **UNLIMITED})) as s:
        yield s


def _with(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {**body, "intake": {**body["intake"], **values}}


def test_a_learned_unknown_is_scored_and_shown_as_not_known(
    served: Service, bodies: list[dict[str, Any]]
) -> None:
    known = served.score(bodies[0], params={"lang": "sv"})
    unknown = served.score(_with(bodies[0], years_of_schooling=None), params={"lang": "sv"})
    contributions = {c["field"]: c for c in unknown["contributions"]}
    assert contributions["years_of_schooling"]["value"] is None
    assert unknown["log_odds"] == pytest.approx(
        unknown["base_log_odds"] + sum(c["contribution"] for c in unknown["contributions"]),
        abs=1e-9,
    )
    assert unknown["probability"] != known["probability"]
    label_sv = FIELDS_BY_NAME["years_of_schooling"].label_sv
    schooling = [r for r in unknown["reasons"] if f"{label_sv}: uppgift saknas" in r]
    english = served.score(_with(bodies[0], years_of_schooling=None), params={"lang": "en"})
    stated = [r for r in english["reasons"] if "Years of schooling: not known" in r]
    # Whether schooling is among the strongest reasons depends on the person; the wording
    # when it is, does not.
    assert bool(schooling) == bool(stated)
    for person in bodies[1:40]:
        served.score(_with(person, years_of_schooling=None, driving_licence=None))


def test_a_field_never_seen_unknown_is_refused_with_the_reason(
    served: Service, bodies: list[dict[str, Any]]
) -> None:
    assert "self_rated_health" in MAY_BE_UNKNOWN
    response = served.client.post(
        "/v1/scores", json=_with(bodies[1], self_rated_health=None), headers=served.auth("cm")
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "intake.self_rated_health"
    assert "may not be unknown" in error["message"]
    schema = served.client.get("/openapi.json").json()["components"]["schemas"]["IntakeRecord"]
    assert "null" in str(schema["properties"]["years_of_schooling"])
    assert "null" not in str(schema["properties"]["self_rated_health"])


def test_the_reason_wording_for_unknowns_in_both_languages() -> None:
    values: dict[str, Any] = {"years_of_schooling": None, "education_level": "primary"}
    reason = GroupReason("schooling", 0.4, ("years_of_schooling", "education_level"))
    label_sv = FIELDS_BY_NAME["years_of_schooling"].label_sv
    assert f"{label_sv}: uppgift saknas" in reason_sentence(reason, values, "sv")
    assert "Years of schooling: not known" in reason_sentence(reason, values, "en")
    assert "–" in reason_sentence(  # null occupation means no work experience, not unknown
        GroupReason("work", 0.4, ("occupation_group",)), {"occupation_group": None}, "en"
    )
