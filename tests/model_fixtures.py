"""Session fixtures shared by the model and service tiers: one small cohort, one trained model.

Training is the expensive part (a few seconds), so each test process trains once and registers
the result in a throw-away MLflow store under a temporary data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult, run_training
from riskscreen.model.training_data import TrainingData
from riskscreen.registry import Registration, register
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort, generate_cohort

SMALL_N = 60_000

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"


@pytest.fixture(scope="session")
def small_config() -> TrainConfig:
    """Defaults, made small: one cheap candidate, few bootstrap draws, gates that hold."""
    return TrainConfig.model_validate(
        {
            "config_version": 2,
            "data": {"synthetic": {"n": SMALL_N, "seed": 11}},
            "design": {"kind": "split"},
            "model": {"candidates": [{"num_trees": 120, "num_leaves": 7}]},
            "fairness": {"bootstrap": 30, "min_group_size": 100},
            "gates": {
                "min_auc_gain_over_checklist": 0.0,
                "max_calibration_intercept": 5.0,
                "max_calibration_slope_deviation": 0.99,
                "min_tpr_ratio": 0.0,
                "max_group_calibration_gap": 1.0,
                "bootstrap": 100,
            },
        }
    )


@pytest.fixture(scope="session")
def small_cohort() -> Cohort:
    return generate_cohort(SMALL_N, 11)


@pytest.fixture(scope="session")
def trained(small_cohort: Cohort, small_config: TrainConfig) -> TrainingResult:
    data = TrainingData(
        small_cohort.intake, small_cohort.outcomes, small_cohort.oracle, "synthetic"
    )
    return run_training(data, small_config)


@pytest.fixture(scope="session")
def registered(
    tmp_path_factory: pytest.TempPathFactory, trained: TrainingResult, small_config: TrainConfig
) -> tuple[Settings, Registration]:
    """A data directory whose MLflow store holds the trained model as `champion`."""
    data_dir: Path = tmp_path_factory.mktemp("riskscreen-data")
    settings = Settings(data_dir=data_dir)
    registration = register(trained, small_config, settings)
    assert registration.champion
    return settings, registration
