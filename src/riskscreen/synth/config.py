"""The validated configuration of the synthetic cohort generator (synth/synth.yaml).

Every number the generator uses lives here, with the source of its value beside it (a `source`
string per section, tagged [V] read in a primary source, [S] second-hand, [A] our assumption),
so a municipality or researcher can recalibrate without touching code. Unknown keys are
rejected: a misspelt parameter must fail loudly, not silently fall back to a default.
Category names in the file are checked against the one schema declaration (schema.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskscreen.contract.schema import FIELDS_BY_NAME

_SHARE_TOLERANCE = 1e-6


class _Section(BaseModel):
    """A config section: strict about unknown keys, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_categories(mapping: dict[str, Any], field_name: str, what: str) -> None:
    expected = set(FIELDS_BY_NAME[field_name].categories)
    if set(mapping) != expected:
        raise ValueError(f"{what}: keys must be exactly {sorted(expected)}, got {sorted(mapping)}")


def _check_shares(mapping: dict[str, float], what: str) -> None:
    if any(v < 0 for v in mapping.values()) or abs(sum(mapping.values()) - 1) > _SHARE_TOLERANCE:
        raise ValueError(f"{what}: shares must be non-negative and sum to 1")


class Calendar(_Section):
    source: str
    intake_start: dt.date
    intake_end: dt.date
    extract_date: dt.date
    year_weights: dict[int, float]

    @model_validator(mode="after")
    def _consistent(self) -> Calendar:
        if not self.intake_start <= self.intake_end <= self.extract_date:
            raise ValueError("need intake_start <= intake_end <= extract_date")
        years = set(range(self.intake_start.year, self.intake_end.year + 1))
        if set(self.year_weights) != years or min(self.year_weights.values()) < 0:
            raise ValueError(f"year_weights: need a weight >= 0 for each of {sorted(years)}")
        return self

    @property
    def years(self) -> list[int]:
        return list(range(self.intake_start.year, self.intake_end.year + 1))


class LabourMarket(_Section):
    source: str
    unemployment_by_year: dict[int, float]
    unemployment_offset_by_municipality: dict[str, float]
    unemployment_noise_sd: float = Field(ge=0)
    hazard_multiplier_by_year: dict[int, float]

    @model_validator(mode="after")
    def _keys(self) -> LabourMarket:
        _check_categories(
            self.unemployment_offset_by_municipality,
            "municipality_type",
            "unemployment_offset_by_municipality",
        )
        if min(self.hazard_multiplier_by_year.values()) <= 0:
            raise ValueError("hazard_multiplier_by_year: multipliers must be positive")
        return self


class Shares(_Section):
    """Shares over the categories of one schema field (which field: the section's name)."""

    source: str
    shares: dict[str, float]


class Sex(_Section):
    source: str
    male_share_by_permit: dict[str, float]
    other_share: float = Field(ge=0, le=0.05)
    missing_share: float = Field(ge=0, le=0.05)

    @model_validator(mode="after")
    def _keys(self) -> Sex:
        _check_categories(self.male_share_by_permit, "permit_type", "male_share_by_permit")
        return self


class Age(_Section):
    """Shares of age bands ("18-24": 0.2, ...) tiling the schema's age range; uniform within."""

    source: str
    band_shares: dict[str, float]

    @model_validator(mode="after")
    def _tiles(self) -> Age:
        _check_shares(self.band_shares, "age.band_shares")
        ages = [a for lo, hi in self.bands for a in range(lo, hi + 1)]
        field = FIELDS_BY_NAME["age"]
        if ages != list(range(int(field.minimum or 0), int(field.maximum or 0) + 1)):
            raise ValueError("age.band_shares: bands must tile the schema's age range in order")
        return self

    @property
    def bands(self) -> list[tuple[int, int]]:
        """The bands as (first, last) ages, in file order."""
        out = []
        for key in self.band_shares:
            lo, sep, hi = key.partition("-")
            if not (sep and lo.isdigit() and hi.isdigit()):
                raise ValueError(f"age band {key!r}: write it as first-last, e.g. 18-24")
            out.append((int(lo), int(hi)))
        return out


class Schooling(_Section):
    source: str
    mean_years: float
    sd_years: float = Field(gt=0)
    max_years: int = Field(ge=1, le=25)
    female_shift: float
    region_shift: dict[str, float]
    level_min_years: dict[str, int]

    @model_validator(mode="after")
    def _keys(self) -> Schooling:
        _check_categories(self.region_shift, "region_of_origin", "region_shift")
        _check_categories(self.level_min_years, "education_level", "level_min_years")
        order = [self.level_min_years[c] for c in FIELDS_BY_NAME["education_level"].categories]
        if order[0] != 0 or order != sorted(set(order)):
            raise ValueError("level_min_years: must start at 0 and rise strictly along the levels")
        return self


class Literacy(_Section):
    source: str
    none_share_under_3_years: float = Field(ge=0, le=1)
    limited_share_under_3_years: float = Field(ge=0, le=1)
    limited_share_3_to_6_years: float = Field(ge=0, le=1)
    limited_share_7_plus_years: float = Field(ge=0, le=1)


class Work(_Section):
    source: str
    participation_logit_male: float
    participation_logit_female: float
    participation_per_school_year_female: float
    school_start_age: int
    fraction_beta_a: float = Field(gt=0)
    fraction_beta_b: float = Field(gt=0)
    occupation_intercepts: list[float] = Field(min_length=10, max_length=10)
    occupation_school_slopes: list[float] = Field(min_length=10, max_length=10)


class OrderedProbit(_Section):
    """An ordinal trait: latent = mean + loading * (years_of_schooling - 10) / 4 + N(0, 1)."""

    source: str
    mean_by_permit: dict[str, float]
    schooling_loading: float
    cut_points: list[float]

    @model_validator(mode="after")
    def _keys(self) -> OrderedProbit:
        _check_categories(self.mean_by_permit, "permit_type", "mean_by_permit")
        if self.cut_points != sorted(self.cut_points):
            raise ValueError("cut_points must be increasing")
        return self


class MentalHealth(_Section):
    source: str
    depression_share: float = Field(gt=0, lt=1)
    anxiety_share: float = Field(gt=0, lt=1)
    ptsd_symptoms_share: float = Field(gt=0, lt=1)
    factor_loading: float = Field(ge=0, lt=1)
    diagnosed_ptsd_share: float = Field(gt=0, lt=1)
    diagnosed_ptsd_loading: float = Field(ge=0, lt=1)


class PhysicalHealth(_Section):
    source: str
    chronic_share: float = Field(gt=0, lt=1)
    chronic_age_loading: float = Field(ge=0, lt=1)
    disability_share: float = Field(gt=0, lt=1)
    disability_age_loading: float = Field(ge=0, lt=1)
    disability_mental_loading: float = Field(ge=0, lt=1)
    disability_type_weights: dict[str, float]
    disability_type_age_slope_physical: float
    disability_type_mental_slope_psychiatric: float
    health_mental_loading: float
    health_age_loading: float
    health_chronic_shift: float
    health_disability_shift: float
    health_cut_points: list[float] = Field(min_length=4, max_length=4)

    @model_validator(mode="after")
    def _valid(self) -> PhysicalHealth:
        if self.disability_age_loading**2 + self.disability_mental_loading**2 >= 1:
            raise ValueError("disability loadings: the sum of their squares must stay below 1")
        expected = set(FIELDS_BY_NAME["disability"].categories) - {"none"}
        if set(self.disability_type_weights) != expected:
            raise ValueError(f"disability_type_weights: keys must be exactly {sorted(expected)}")
        return self


class Family(_Section):
    source: str
    under_6_mean_by_sex: dict[str, float]
    under_6_peak_age: float
    under_6_width_years: float = Field(gt=0)
    age_6_17_mean_by_sex: dict[str, float]
    age_6_17_peak_age: float
    age_6_17_width_years: float = Field(gt=0)
    single_parent_share_by_sex: dict[str, float]

    @model_validator(mode="after")
    def _keys(self) -> Family:
        for name in ("under_6_mean_by_sex", "age_6_17_mean_by_sex", "single_parent_share_by_sex"):
            _check_categories(getattr(self, name), "sex", name)
        return self


class DrivingLicence(_Section):
    source: str
    logit_by_sex: dict[str, float]
    per_school_year: float
    per_year_of_age_under_25: float

    @model_validator(mode="after")
    def _keys(self) -> DrivingLicence:
        _check_categories(self.logit_by_sex, "sex", "logit_by_sex")
        return self


class LogHazardRatios(_Section):
    """Log hazard ratios of settlement (first work or studies); positive means faster."""

    female: float
    age_per_year_over_30: float
    schooling_per_year_over_10: float
    short_schooling_under_7: float
    literacy_limited: float
    literacy_none: float
    work_experience_log1p_years: float
    swedish_per_level: float
    english_basic: float
    english_good: float
    permit_quota_refugee: float
    permit_family_reunification: float
    depression_symptoms: float
    anxiety_symptoms: float
    ptsd_symptoms: float
    diagnosed_ptsd: float
    self_rated_health_per_step_over_3: float
    chronic_condition: float
    disability: dict[str, float]
    young_children_female: float
    young_children_male: float
    children_6_to_17_per_child: float
    single_parent_with_young_children: float
    short_schooling_no_swedish: float
    driving_licence: float
    unemployment_per_pp_over_7: float
    municipality_type: dict[str, float]
    region_of_origin: dict[str, float]

    @model_validator(mode="after")
    def _keys(self) -> LogHazardRatios:
        _check_categories(self.disability, "disability", "disability")
        _check_categories(self.municipality_type, "municipality_type", "municipality_type")
        _check_categories(self.region_of_origin, "region_of_origin", "region_of_origin")
        return self


class Settlement(_Section):
    source: str
    weibull_shape: float = Field(gt=0)
    weibull_scale_days: float = Field(gt=0)
    log_hazard_ratios: LogHazardRatios


class Support(_Section):
    source: str
    logit_intercept: float
    logit_slope_on_risk: float = Field(ge=0)
    hazard_multiplier: float = Field(gt=0)


class LossToFollowup(_Section):
    source: str
    annual_rate: float = Field(ge=0, lt=1)


class Generation(_Section):
    source: str
    chunk_size: int = Field(ge=1_000, le=2_000_000)
    case_ref_prefix: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")


class SynthConfig(_Section):
    """The whole generator configuration, as parsed from synth/synth.yaml."""

    config_version: int = Field(ge=1, le=1)
    calendar: Calendar
    labour_market: LabourMarket
    municipality_type: Shares
    permit_type: Shares
    region_of_origin: Shares
    sex: Sex
    age: Age
    schooling: Schooling
    literacy: Literacy
    work: Work
    swedish_level: OrderedProbit
    english_level: OrderedProbit
    mental_health: MentalHealth
    physical_health: PhysicalHealth
    family: Family
    driving_licence: DrivingLicence
    settlement: Settlement
    support: Support
    loss_to_followup: LossToFollowup
    generation: Generation

    @model_validator(mode="after")
    def _cross_checks(self) -> SynthConfig:
        for name in ("municipality_type", "permit_type", "region_of_origin"):
            section: Shares = getattr(self, name)
            _check_categories(section.shares, name, f"{name}.shares")
            _check_shares(section.shares, f"{name}.shares")
        years = set(self.calendar.years)
        for name in ("unemployment_by_year", "hazard_multiplier_by_year"):
            if not years <= set(getattr(self.labour_market, name)):
                raise ValueError(f"labour_market.{name}: need a value for each of {sorted(years)}")
        n_swedish = len(FIELDS_BY_NAME["swedish_level"].categories)
        n_english = len(FIELDS_BY_NAME["english_level"].categories)
        if len(self.swedish_level.cut_points) != n_swedish - 1:
            raise ValueError(f"swedish_level.cut_points: need {n_swedish - 1} cut points")
        if len(self.english_level.cut_points) != n_english - 1:
            raise ValueError(f"english_level.cut_points: need {n_english - 1} cut points")
        return self
