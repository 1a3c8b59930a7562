"""The versioned training configuration (configs/train.yaml), validated before anything runs.

Unknown keys are errors: a misspelt gate that silently falls back to its default would let a
model through that the config's author meant to stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskscreen.contract.schema import DEFAULT_FEATURES, FIELDS_BY_NAME
from riskscreen.model.gate_rules import GateSettings

# 2: gates are decided on intervals (model/gates.py); max_ece gave way to the calibration
# intercept and slope.
CONFIG_VERSION = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticSource(_Strict):
    n: int = Field(400_000, ge=1_000)
    seed: int = 7


class DataConfig(_Strict):
    """Where the cohort comes from; `mapping` reads a municipality's own export through it."""

    source: Literal["synthetic", "files"] = "synthetic"
    synthetic: SyntheticSource = SyntheticSource()
    intake_path: Path | None = None
    outcomes_path: Path | None = None
    mapping: Path | None = None

    @model_validator(mode="after")
    def _files_named(self) -> DataConfig:
        if self.source == "files" and (self.intake_path is None or self.outcomes_path is None):
            raise ValueError("source 'files' needs intake_path and outcomes_path")
        if self.mapping is not None and self.source != "files":
            raise ValueError("a mapping reads files: it needs source 'files'")
        return self


class SplitConfig(_Strict):
    """Newest fully followed-up intake years go to test, then validation, then calibration."""

    test_years: int = Field(2, ge=1)
    validation_years: int = Field(1, ge=1)
    calibration_years: int = Field(1, ge=1)


class TreeCandidate(_Strict):
    num_trees: int = Field(ge=10, le=5000)
    num_leaves: int = Field(ge=2, le=255)


class ModelConfig(_Strict):
    """Gradient-boosted trees; capacity is chosen among candidates by validation AUC and cost."""

    candidates: tuple[TreeCandidate, ...] = (
        TreeCandidate(num_trees=300, num_leaves=7),
        TreeCandidate(num_trees=300, num_leaves=15),
        TreeCandidate(num_trees=300, num_leaves=31),
    )
    # The cheapest candidate to explain whose validation AUC is within this of the best wins.
    auc_tolerance: float = Field(0.002, ge=0, le=0.05)
    learning_rate: float = Field(0.1, gt=0, le=1)
    min_data_in_leaf: int = Field(100, ge=1)
    lambda_l2: float = Field(1.0, ge=0)
    monotone_constraints: bool = True
    seed: int = 7
    num_threads: int = Field(2, ge=1)


class ChecklistConfig(_Strict):
    """The four-factor manual checklist the model must beat."""

    max_years_of_schooling: int = 6
    max_work_experience_years: float = 1.0
    max_self_rated_health: int = 2
    any_disability: bool = True


class FairnessConfig(_Strict):
    # attribute -> reference group; age_band is derived from age for the audit.
    reference_groups: dict[str, str] = {
        "sex": "male",
        "age_band": "30-39",
        "region_of_origin": "middle_east",
        "disability": "none",
        "permit_type": "asylum",
    }
    min_group_size: int = Field(200, ge=1)
    bootstrap: int = Field(200, ge=10)
    seed: int = 7


class TrainConfig(_Strict):
    config_version: Literal[2]
    data: DataConfig = DataConfig()
    horizon_months: int = Field(24, ge=1, le=120)
    support_handling: Literal["exclude", "keep"] = "exclude"
    features: tuple[str, ...] = DEFAULT_FEATURES
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    capacity: float = Field(0.25, gt=0, lt=1)
    elevated_share: float = Field(0.25, ge=0, lt=1)
    checklist: ChecklistConfig = ChecklistConfig()
    fairness: FairnessConfig = FairnessConfig()
    gates: GateSettings = GateSettings()
    model_name: str = "riskscreen"
    experiment: str = "riskscreen"

    @model_validator(mode="after")
    def _features_allowed(self) -> TrainConfig:
        for name in self.features:
            field = FIELDS_BY_NAME.get(name)
            if field is None or field.role in ("key", "date"):
                raise ValueError(f"{name!r} cannot be a model feature")
        if self.capacity + self.elevated_share >= 1:
            raise ValueError("capacity + elevated_share must leave room for the low band")
        return self


def load_train_config(path: Path | None) -> TrainConfig:
    """Read a YAML config (None means all defaults); errors name the offending key."""
    raw = yaml.safe_load(path.read_text()) if path else {"config_version": CONFIG_VERSION}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the config must be a mapping")
    return TrainConfig.model_validate(raw)
