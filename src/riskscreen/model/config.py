"""The versioned training configuration (configs/train.yaml), validated before anything runs.

Unknown keys are errors: a misspelt gate that silently falls back to its default would let a
model through that the config's author meant to stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    # Files written by `riskscreen synth`: its oracle.parquet (the generator's true
    # probabilities). The model is then judged against the truth, as on generated data: the
    # share of the achievable ranking, ECE against the truth, and group gates against the
    # truth's own group metrics. A municipality's data have no oracle.
    oracle_path: Path | None = None

    @model_validator(mode="after")
    def _files_named(self) -> DataConfig:
        if self.source == "files" and (self.intake_path is None or self.outcomes_path is None):
            raise ValueError("source 'files' needs intake_path and outcomes_path")
        if self.mapping is not None and self.source != "files":
            raise ValueError("a mapping reads files: it needs source 'files'")
        if self.oracle_path is not None and (self.source != "files" or self.mapping is not None):
            raise ValueError(
                "oracle_path names the truth of synthetic files: source 'files', no mapping"
            )
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


class SmallTreesConfig(BaseModel):
    """How much the trees may learn at this size (see the module docstring).

    Four leaves, the fewest the design allows for trees: on the synthetic cohorts of 2,000 and
    10,000 people fewer leaves ranked better (the truth is nearly additive), and a family that can
    learn interactions is the reason to keep trees among the candidates at all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_leaves: int = Field(4, ge=2, le=8)
    # min_data_in_leaf = max(min_data_in_leaf, min_leaf_share × training rows): at 2,000 rows
    # 20 people, at 20,000 rows 200, so a leaf's risk stays an estimate, not an anecdote.
    min_data_in_leaf: int = Field(20, ge=1)
    min_leaf_share: float = Field(0.01, ge=0, lt=0.5)
    learning_rate: float = Field(0.05, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    max_trees: int = Field(1000, ge=10, le=5000)
    early_stopping_rounds: int = Field(50, ge=5)


FamilyName = Literal["linear", "ebm", "trees"]


class SmallDesignConfig(BaseModel):
    """Forward-chaining folds, the candidate families and how the choice between them is made.

    The defaults suit 2,000 people over about ten intake years (some 150 labelled a year): three
    predicted years give some 450 out-of-fold people, and the first model still sees six years.
    The minimum sizes let through 500 labelled people over ten years (about 50 a year), the
    smallest cohort the design is meant for; below that no year's AUC or calibration means much.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_years: int = Field(3, ge=1)  # k: the newest years, each predicted from those before
    min_per_year: int = Field(50, ge=1)  # fewest labelled people in each predicted year
    min_train: int = Field(300, ge=1)  # fewest labelled people in the first training window
    candidates: tuple[FamilyName, ...] = ("linear", "ebm", "trees")
    # A simpler family wins when its AUC is below the best by less than noise_z bootstrap SEs.
    noise_z: float = Field(1.0, ge=0)
    bootstrap: int = Field(200, ge=20)
    seed: int = 7
    trees: SmallTreesConfig = SmallTreesConfig()

    @field_validator("candidates")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("candidates must name at least one family, each once")
        return value


class DesignConfig(_Strict):
    """Which design trains: a held-out split of intake years for large cohorts, forward-chaining
    folds for small ones (`small_cohort_up_to` labelled people or fewer, when `kind` is auto).

    The default boundary is where the split design stops losing to it: at 37,700 labelled people
    (a 50,000-person synthetic cohort, seed 11) the split design's served refit reached 0.973 of
    the achievable ranking and the small-cohort design 0.980; at 300,000 the split design reaches
    0.984 in a third of the time (DESIGN.md, "Small cohorts"; bench/README.md).
    """

    kind: Literal["auto", "split", "small_cohort"] = "auto"
    small_cohort_up_to: int = Field(50_000, ge=0)
    folds: SmallDesignConfig = SmallDesignConfig()


class TrainConfig(_Strict):
    config_version: Literal[2]
    data: DataConfig = DataConfig()
    horizon_months: int = Field(24, ge=1, le=120)
    support_handling: Literal["exclude", "keep"] = "exclude"
    features: tuple[str, ...] = DEFAULT_FEATURES
    design: DesignConfig = DesignConfig()
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
