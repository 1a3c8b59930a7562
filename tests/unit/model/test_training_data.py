"""Synthetic files trained through `data.source: files` keep their truth (`data.oracle_path`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from riskscreen.model.config import TrainConfig
from riskscreen.model.training_data import load_training_data
from riskscreen.synth.generate import write_cohort


def _config(folder: Path, oracle: Path | None) -> TrainConfig:
    data = {
        "source": "files",
        "intake_path": str(folder / "intake.parquet"),
        "outcomes_path": str(folder / "outcomes.parquet"),
    }
    if oracle is not None:
        data["oracle_path"] = str(oracle)
    return TrainConfig.model_validate({"config_version": 2, "data": data})


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    one, other = tmp_path_factory.mktemp("seed1"), tmp_path_factory.mktemp("seed2")
    write_cohort(one, n=800, seed=1)
    write_cohort(other, n=800, seed=2)
    return one, other


def test_files_with_their_oracle_are_synthetic_data(cohorts: tuple[Path, Path]) -> None:
    folder = cohorts[0]
    data = load_training_data(_config(folder, folder / "oracle.parquet"))
    assert data.data_kind == "synthetic" and data.oracle is not None
    expected = pd.read_parquet(folder / "oracle.parquet")
    pd.testing.assert_series_equal(
        data.oracle["p_long_settlement"], expected["p_long_settlement"], check_names=False
    )
    assert load_training_data(_config(folder, None)).data_kind == "real"


def test_the_truth_of_other_people_is_refused(cohorts: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="is not the truth of"):
        load_training_data(_config(cohorts[0], cohorts[1] / "oracle.parquet"))


def test_an_oracle_needs_files_and_no_mapping(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="oracle_path"):
        TrainConfig.model_validate(
            {"config_version": 2, "data": {"oracle_path": str(tmp_path / "oracle.parquet")}}
        )
