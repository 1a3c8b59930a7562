"""The synthetic cohort generator: determinism, the data contract, and an exact oracle."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest
import yaml
from typer.testing import CliRunner

from riskscreen.cli import app
from riskscreen.contract.identity import CASE_REF_PATTERN, looks_like_personal_number
from riskscreen.contract.schema import (
    FIELDS_BY_NAME,
    INTAKE_COLUMNS,
    INTAKE_FIELDS,
    OUTCOME_COLUMNS,
    IntakeField,
)
from riskscreen.synth.card import Tally
from riskscreen.synth.generate import (
    Cohort,
    SynthConfig,
    generate_cohort,
    load_synth_config,
    write_cohort,
)
from riskscreen.synth.outcomes import horizon_days

FILES = ("intake.parquet", "outcomes.parquet", "oracle.parquet", "DATA_CARD.md")


@pytest.fixture(scope="module")
def config() -> SynthConfig:
    return load_synth_config()


@pytest.fixture(scope="module")
def small_chunks(config: SynthConfig) -> SynthConfig:
    """The defaults with tiny chunks, so that small cohorts still span several chunks."""
    generation = config.generation.model_copy(update={"chunk_size": 1_000})
    return config.model_copy(update={"generation": generation})


@pytest.fixture(scope="module")
def cohort(config: SynthConfig) -> Cohort:
    return generate_cohort(100_000, 11, config)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


# --- determinism and files ------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(
    tmp_path: Path, small_chunks: SynthConfig
) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_cohort(tmp_path / name, n=2_500, seed=seed, config=small_chunks)
    a, b, c = (_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert all(a[name] != c[name] for name in FILES)


def test_written_files_hold_the_generated_cohort(tmp_path: Path, small_chunks: SynthConfig) -> None:
    """Streaming chunk by chunk to Parquet gives exactly the in-memory cohort, dtypes included."""
    summary = write_cohort(tmp_path, n=2_500, seed=5, horizon_months=18, config=small_chunks)
    cohort = generate_cohort(2_500, 5, small_chunks, horizon_months=18)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "intake.parquet"), cohort.intake)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "outcomes.parquet"), cohort.outcomes)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "oracle.parquet"), cohort.oracle)
    card = (tmp_path / "DATA_CARD.md").read_text(encoding="utf-8")
    assert "2,500" in card and "seed: 5" in card and "horizon: 18 months" in card
    assert "[A]" in card and "Tinghög" in card
    assert "2,500" in summary and "\n" in summary and len(summary) < 600


def test_failed_write_leaves_no_cohort_behind(
    tmp_path: Path, small_chunks: SynthConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cohort(tmp_path, n=1_500, seed=1, config=small_chunks)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)  # no temporary files

    def fail_on_second_chunk(self: Tally, *arrays: object) -> None:
        self.n += 1
        if self.n > 1:
            raise RuntimeError("disk full")

    monkeypatch.setattr(Tally, "add", fail_on_second_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        write_cohort(tmp_path / "failed", n=2_500, seed=1, config=small_chunks)
    assert list((tmp_path / "failed").iterdir()) == []


def test_cli_synth_writes_the_four_files(tmp_path: Path) -> None:
    args = ["synth", "--out", str(tmp_path), "--n", "3000", "--seed", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).stat().st_size > 0 for name in FILES)
    assert "3,000 people" in result.output
    assert len(pd.read_parquet(tmp_path / "intake.parquet")) == 3_000


def test_rejects_impossible_sizes_and_seeds(config: SynthConfig) -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_cohort(0, 1, config)
    with pytest.raises(ValueError, match="seed"):
        generate_cohort(10, -1, config)
    with pytest.raises(ValueError, match="identity-number"):
        generate_cohort(10, 1_234_567_890, config)
    refs = generate_cohort(10, 20_240_601, config).intake["case_ref"]
    assert refs.iloc[0] == "S20240601-000000001"


# --- config ---------------------------------------------------------------------------------


def _raw_defaults() -> dict:
    path = Path(__file__).parents[3] / "src/riskscreen/synth/synth.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_packaged_defaults_equal_the_repository_file(config: SynthConfig) -> None:
    assert config == SynthConfig.model_validate(_raw_defaults())
    assert config.config_version == 1


def test_every_section_states_its_source(config: SynthConfig) -> None:
    for name in SynthConfig.model_fields:
        if name != "config_version":
            source = getattr(config, name).source
            assert re.search(r"\[(V|S|A)", source), name


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(unknown_key=1),
        lambda d: d["settlement"]["log_hazard_ratios"].update(femal=-0.1),
        lambda d: d["permit_type"]["shares"].update(asylum=0.6),  # shares no longer sum to 1
        lambda d: d["sex"]["male_share_by_permit"].update(refugee=0.5),  # not a schema category
        lambda d: d["calendar"]["year_weights"].pop(2016),
        lambda d: d["age"]["band_shares"].pop("50-64"),
    ],
)
def test_load_rejects_bad_configs(tmp_path: Path, edit: Callable[[dict], object]) -> None:
    raw = _raw_defaults()
    edit(raw)
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(pydantic.ValidationError):
        load_synth_config(path)


# --- the data contract ------------------------------------------------------------------------


def _canonical_dtype(f: IntakeField) -> object:
    return {
        "date": np.dtype("datetime64[us]"),
        "integer": np.dtype("int64"),
        "number": np.dtype("float64"),
        "boolean": np.dtype("bool"),
        "string": pd.StringDtype(na_value=np.nan),
    }.get(f.kind, pd.CategoricalDtype(list(f.categories), ordered=f.ordered))


def test_columns_and_dtypes_are_canonical(cohort: Cohort) -> None:
    assert tuple(cohort.intake.columns) == INTAKE_COLUMNS
    for f in INTAKE_FIELDS:
        column = cohort.intake[f.name]
        assert column.dtype == _canonical_dtype(f), f.name
        if f.kind == "category":
            assert tuple(column.cat.categories) == f.categories, f.name
    outcomes = cohort.outcomes
    assert tuple(outcomes.columns) == OUTCOME_COLUMNS
    assert outcomes["case_ref"].dtype == pd.StringDtype(na_value=np.nan)
    for name in ("settled_date", "lost_to_followup_date", "extract_date"):
        assert outcomes[name].dtype == np.dtype("datetime64[us]"), name
    assert outcomes["received_intensified_support"].dtype == np.dtype("bool")
    assert list(cohort.oracle.columns) == ["case_ref", "p_long_settlement"]
    assert cohort.oracle["p_long_settlement"].dtype == np.dtype("float64")
    assert cohort.latent["time_to_settlement_days"].dtype == np.dtype("float64")
    assert cohort.latent["diagnosed_ptsd"].dtype == np.dtype("bool")


def test_values_within_the_schema(cohort: Cohort) -> None:
    for f in INTAKE_FIELDS:
        column = cohort.intake[f.name]
        if not f.nullable:
            assert column.notna().all(), f.name
        if f.minimum is not None:
            assert column.min() >= f.minimum and column.max() <= f.maximum, f.name
    dates = pd.concat([cohort.intake["intake_date"], cohort.outcomes["settled_date"].dropna()])
    assert (dates == dates.dt.normalize()).all()


def test_occupation_null_iff_no_work_experience(cohort: Cohort) -> None:
    intake = cohort.intake
    assert (intake["occupation_group"].isna() == (intake["work_experience_years"] == 0)).all()


def test_case_refs_unique_valid_and_aligned(cohort: Cohort) -> None:
    refs = cohort.intake["case_ref"]
    assert refs.is_unique
    assert refs.str.fullmatch(CASE_REF_PATTERN.strip("^$")).all()
    assert not any(looks_like_personal_number(r) for r in refs.iloc[:: len(refs) // 500])
    for frame in (cohort.outcomes, cohort.oracle, cohort.latent):
        assert frame["case_ref"].equals(refs)


def test_traits_hang_together(cohort: Cohort) -> None:
    intake = cohort.intake
    quota = intake["permit_type"] == "quota_refugee"
    assert (intake.loc[quota, "swedish_level"] == "none").mean() > 0.95
    levels = intake.groupby("education_level", observed=True)["years_of_schooling"]
    assert levels.max().iloc[:-1].to_numpy().tolist() < levels.min().iloc[1:].to_numpy().tolist()
    parents = intake["children_under_6"] + intake["children_6_to_17"] > 0
    assert not intake.loc[~parents, "single_parent"].any()
    single_women = intake.loc[intake["single_parent"], "sex"] == "female"
    assert single_women.mean() > 0.7


def test_intake_years_and_a_changing_labour_market(cohort: Cohort) -> None:
    intake = cohort.intake
    years = intake["intake_date"].dt.year
    assert years.nunique() >= 8
    assert (cohort.outcomes["extract_date"] == cohort.outcomes["extract_date"].iloc[0]).all()
    assert (intake["intake_date"] <= cohort.outcomes["extract_date"]).all()
    unemployment = intake.groupby(years)["local_unemployment_rate"].mean()
    assert unemployment[2020] > unemployment[2019] + 1
    settled_24 = cohort.oracle["p_long_settlement"].groupby(years).mean()
    assert settled_24[2020] > settled_24[2019] + 0.03  # the downturn year's risk is higher


# --- outcomes and the oracle ------------------------------------------------------------------


def test_horizon_days_follow_calendar_months() -> None:
    days = np.array(["2016-01-31", "2016-02-29", "2015-03-31", "2019-06-15"], "datetime64[D]")
    assert horizon_days(days.astype(np.int64), 1).tolist() == [29, 29, 30, 30]  # clipped ends
    assert horizon_days(days.astype(np.int64), 24).tolist() == [731, 730, 731, 731]


def test_outcome_dates_follow_the_latent_times(cohort: Cohort) -> None:
    intake, outcomes, latent = cohort.intake, cohort.outcomes, cohort.latent
    extract = outcomes["extract_date"]
    settle_day = np.floor(latent["time_to_settlement_days"])
    lost_day = np.floor(latent["lost_days"])
    settle_at = intake["intake_date"] + pd.to_timedelta(np.minimum(settle_day, 20_000), unit="D")
    lost_at = intake["intake_date"] + pd.to_timedelta(np.minimum(lost_day, 20_000), unit="D")
    seen = (settle_day <= lost_day) & (settle_at <= extract)
    assert (outcomes["settled_date"].notna() == seen).all()
    assert (outcomes["settled_date"][seen] == settle_at[seen]).all()
    assert (outcomes["lost_to_followup_date"].notna() == (lost_at <= extract)).all()
    both = outcomes["settled_date"].notna() & outcomes["lost_to_followup_date"].notna()
    assert both.any()  # a loss is recorded also after a settlement


def _linear_predictor(row: pd.Series, dx: bool, cfg: SynthConfig) -> float:
    """The log relative hazard of one person, recomputed by hand from the readable intake row."""
    b = cfg.settlement.log_hazard_ratios
    female, male = row["sex"] == "female", row["sex"] == "male"
    young, short = row["children_under_6"] > 0, row["years_of_schooling"] < 7
    swedish = FIELDS_BY_NAME["swedish_level"].categories
    terms = [
        b.female * female,
        b.age_per_year_over_30 * (row["age"] - 30),
        b.schooling_per_year_over_10 * (row["years_of_schooling"] - 10),
        b.short_schooling_under_7 * short,
        {"limited": b.literacy_limited, "none": b.literacy_none}.get(row["literacy"], 0.0),
        b.work_experience_log1p_years * math.log1p(row["work_experience_years"]),
        b.swedish_per_level * swedish.index(row["swedish_level"]),
        {"basic": b.english_basic, "good": b.english_good}.get(row["english_level"], 0.0),
        {
            "quota_refugee": b.permit_quota_refugee,
            "family_reunification": b.permit_family_reunification,
        }.get(row["permit_type"], 0.0),
        b.depression_symptoms * row["depression_symptoms"],
        b.anxiety_symptoms * row["anxiety_symptoms"],
        b.ptsd_symptoms * row["ptsd_symptoms"],
        b.diagnosed_ptsd * dx,
        b.self_rated_health_per_step_over_3 * (row["self_rated_health"] - 3),
        b.chronic_condition * row["chronic_condition"],
        b.disability[row["disability"]],
        b.young_children_female * (female and young),
        b.young_children_male * (male and young),
        b.children_6_to_17_per_child * row["children_6_to_17"],
        b.single_parent_with_young_children * (row["single_parent"] and young),
        b.short_schooling_no_swedish * (short and row["swedish_level"] == "none"),
        b.driving_licence * row["driving_licence"],
        b.unemployment_per_pp_over_7 * (row["local_unemployment_rate"] - 7),
        b.municipality_type[row["municipality_type"]],
        b.region_of_origin[row["region_of_origin"]],
        math.log(cfg.labour_market.hazard_multiplier_by_year[row["intake_date"].year]),
    ]
    return float(sum(terms))


def test_oracle_is_the_closed_form_survival_at_the_horizon(
    cohort: Cohort, config: SynthConfig
) -> None:
    p = cohort.oracle["p_long_settlement"]
    assert ((p > 0) & (p < 1)).all()
    s = config.settlement
    for i in range(0, len(p), len(p) // 25):
        row = cohort.intake.iloc[i]
        lp = _linear_predictor(row, bool(cohort.latent["diagnosed_ptsd"].iloc[i]), config)
        assert lp == pytest.approx(cohort.latent["linear_predictor"].iloc[i], abs=1e-9)
        h = (row["intake_date"] + pd.DateOffset(months=24) - row["intake_date"]).days
        expected = math.exp(-(((h + 1) / s.weibull_scale_days) ** s.weibull_shape) * math.exp(lp))
        assert p.iloc[i] == pytest.approx(expected, rel=1e-12)


def test_oracle_matches_the_sampled_times(cohort: Cohort) -> None:
    """Label 1 iff T >= h + 1: the share among everyone under usual care, and among people
    without support under the care they got, equals the mean oracle (sampling error ~0.002)."""
    latent, p = cohort.latent, cohort.oracle["p_long_settlement"]
    h1 = latent["horizon_days"] + 1
    long_usual = latent["time_to_settlement_usual_days"] >= h1
    assert long_usual.mean() == pytest.approx(p.mean(), abs=0.008)
    usual = ~cohort.outcomes["received_intensified_support"]
    long_without = (latent["time_to_settlement_days"] >= h1)[usual]
    assert long_without.mean() == pytest.approx(p[usual].mean(), abs=0.008)
    for _, group in p.groupby(pd.qcut(p, 5), observed=True):
        idx = group.index
        realised = (latent["time_to_settlement_usual_days"] >= h1)[idx].mean()
        assert realised == pytest.approx(group.mean(), abs=0.015)


def test_support_goes_to_high_risk_and_speeds_them_up(cohort: Cohort, config: SynthConfig) -> None:
    support = cohort.outcomes["received_intensified_support"]
    p = cohort.oracle["p_long_settlement"]
    assert 0.08 <= support.mean() <= 0.16
    by_fifth = support.groupby(pd.qcut(p, 5), observed=True).mean()
    assert by_fifth.is_monotonic_increasing and by_fifth.iloc[-1] > 3 * by_fifth.iloc[0]
    latent = cohort.latent
    ratio = latent["time_to_settlement_days"] / latent["time_to_settlement_usual_days"]
    speed_up = config.support.hazard_multiplier ** (-1 / config.settlement.weibull_shape)
    assert np.allclose(ratio[support], speed_up) and np.allclose(ratio[~support], 1.0)
