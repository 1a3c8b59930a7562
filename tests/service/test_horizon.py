"""A score says which horizon it answers for: the response, its notice and `GET /v1/model`.

Trains a small model at a 12-month horizon (the session's model is at 24), so a horizon that
is read from the wrong place, or written into a text, shows up as a wrong number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import UNLIMITED, Service, running, score_body, sqlite_url

from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.registry import register
from riskscreen.settings import Settings
from riskscreen.synth.generate import generate_cohort

HORIZON = 12


@pytest.fixture(scope="module")
def twelve_months(
    tmp_path_factory: pytest.TempPathFactory, small_config: TrainConfig
) -> Iterator[tuple[Service, dict[str, Any]]]:
    """A served 12-month champion, and one valid score body."""
    cohort = generate_cohort(20_000, 5, horizon_months=HORIZON)
    cfg = small_config.model_copy(update={"horizon_months": HORIZON})
    data = TrainingData(cohort.intake, cohort.outcomes, cohort.oracle, "synthetic")
    result = run_training(data, cfg)
    data_dir: Path = tmp_path_factory.mktemp("horizon-12")
    settings = Settings(data_dir=data_dir)
    assert register(result, cfg, settings).champion
    served = settings.model_copy(update={"audit_url": sqlite_url(data_dir), **UNLIMITED})
    with running(served) as service:
        yield service, score_body(cohort.intake.iloc[0].to_dict())


def test_the_model_states_its_horizon(twelve_months: tuple[Service, dict[str, Any]]) -> None:
    service, _ = twelve_months
    info = service.client.get("/v1/model", headers=service.auth("cm")).json()
    assert info["horizon_months"] == HORIZON


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "within 12 months of intake"), ("sv", "inom 12 månader")]
)
def test_every_score_states_its_horizon(
    twelve_months: tuple[Service, dict[str, Any]], lang: str, words: str
) -> None:
    service, body = twelve_months
    score = service.score(body, params={"lang": lang})
    assert score["horizon_months"] == HORIZON
    assert score["model"]["horizon_months"] == HORIZON
    assert words in score["notice"]
    again = service.client.get(
        f"/v1/scores/{score['score_id']}", headers=service.auth("cm"), params={"lang": lang}
    ).json()
    assert again["horizon_months"] == HORIZON and words in again["notice"]
