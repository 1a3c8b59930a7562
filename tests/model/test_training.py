"""Behaviour of a fitted model and of the training flow (tests/model tier)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.schema import OUTCOME_COLUMNS, SWEDISH_LEVELS
from riskscreen.explain.reasons import group_contributions
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult, _labelled
from riskscreen.model.training_data import TrainingData
from riskscreen.synth.generate import Cohort


def test_no_test_person_is_trained_on(small_cohort: Cohort, small_config: TrainConfig) -> None:
    data = TrainingData(
        small_cohort.intake, small_cohort.outcomes, small_cohort.oracle, "synthetic"
    )
    frame, split, _ = _labelled(data, small_config)
    by_split = {
        name: set(frame.loc[frame["split"] == name, "case_ref"])
        for name in ("train", "calibration", "validation", "test")
    }
    assert all(by_split.values())
    names = list(by_split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not by_split[a] & by_split[b], f"{a} and {b} share people"
    years = frame.groupby("split")["intake_date"].agg(lambda d: (d.dt.year.min(), d.dt.year.max()))
    assert years["train"][1] < years["calibration"][0] <= years["calibration"][1]
    assert years["calibration"][1] < years["validation"][0]
    assert years["validation"][1] < years["test"][0]
    assert max(split.train) < min(split.test)


def test_no_outcome_field_can_be_a_feature() -> None:
    for name in OUTCOME_COLUMNS:
        if name == "case_ref":
            continue
        with pytest.raises(ValueError):
            FeatureSpec((name,))
    with pytest.raises(ValueError):
        FeatureSpec(("case_ref",))
    with pytest.raises(ValueError):
        FeatureSpec(("intake_date",))


def test_contributions_add_up_to_the_calibrated_log_odds(trained: TrainingResult) -> None:
    bundle = trained.bundle
    x = encode_frame(trained.test_frame, bundle.spec)
    base, contrib = bundle.contributions(x)
    log_odds = bundle.log_odds(x)
    assert len(x) > 5000
    np.testing.assert_allclose(base + contrib.sum(axis=1), log_odds, rtol=0, atol=1e-6)
    names, grouped = group_contributions(contrib, bundle.spec.fields)
    assert grouped.shape == (len(x), len(names)) and len(names) < len(bundle.spec.fields)
    np.testing.assert_allclose(base + grouped.sum(axis=1), log_odds, rtol=0, atol=1e-6)


def _with(frame: pd.DataFrame, **changes: object) -> pd.DataFrame:
    out = frame.copy()
    for k, v in changes.items():
        out[k] = v
    return out


def _risk(trained: TrainingResult, frame: pd.DataFrame) -> np.ndarray:
    bundle = trained.bundle
    return 1 / (1 + np.exp(-bundle.log_odds(encode_frame(frame, bundle.spec))))


def test_more_schooling_never_raises_the_risk(trained: TrainingResult) -> None:
    frame = trained.test_frame.head(3000)
    base = _risk(trained, frame)
    more = _with(frame, years_of_schooling=np.minimum(frame["years_of_schooling"] + 3, 25))
    assert np.all(_risk(trained, more) <= base + 1e-12)
    assert _risk(trained, more).mean() < base.mean()


def test_more_swedish_never_raises_the_risk(trained: TrainingResult) -> None:
    frame = trained.test_frame.head(3000)
    base = _risk(trained, frame)
    codes = frame["swedish_level"].cat.codes.to_numpy()
    up = pd.Categorical.from_codes(
        np.minimum(codes + 2, len(SWEDISH_LEVELS) - 1), dtype=frame["swedish_level"].dtype
    )
    assert np.all(_risk(trained, _with(frame, swedish_level=up)) <= base + 1e-12)


def test_sex_and_region_never_change_a_score(trained: TrainingResult) -> None:
    frame = trained.test_frame.head(2000)
    base = _risk(trained, frame)
    flipped_sex = frame["sex"].map({"female": "male", "male": "female", "other": "female"})
    other = _with(
        frame,
        sex=flipped_sex.astype(frame["sex"].dtype),
        region_of_origin=pd.Categorical(
            ["europe_non_eu"] * len(frame), dtype=frame["region_of_origin"].dtype
        ),
    )
    np.testing.assert_array_equal(_risk(trained, other), base)


def test_a_clearly_high_risk_profile_is_flagged(trained: TrainingResult) -> None:
    profile = trained.test_frame.head(1).copy()
    high = _with(
        profile,
        age=58,
        years_of_schooling=0,
        education_level="none",
        literacy="none",
        work_experience_years=0.0,
        occupation_group=None,
        swedish_level="none",
        english_level="none",
        self_rated_health=1,
        depression_symptoms=True,
        anxiety_symptoms=True,
        ptsd_symptoms=True,
        chronic_condition=True,
        disability="psychiatric",
        permit_type="quota_refugee",
        driving_licence=False,
    )
    for col in (
        "education_level",
        "literacy",
        "swedish_level",
        "english_level",
        "disability",
        "permit_type",
        "occupation_group",
    ):
        high[col] = high[col].astype(profile[col].dtype)
    assert _risk(trained, high)[0] >= trained.bundle.thresholds.flag
    assert trained.bundle.thresholds.band(float(_risk(trained, high)[0])) == "high"


def test_model_beats_the_checklist_and_tracks_the_oracle(trained: TrainingResult) -> None:
    m = trained.evaluation.metrics
    assert m["test_roc_auc"] > m["test_checklist_roc_auc"] + 0.05
    assert m["test_oracle_gap"] < 0.03
    assert m["test_recall_at_capacity"] > m["test_checklist_recall_at_capacity"]
    assert 0.2 < m["test_share_flagged"] < 0.3  # threshold chosen for 25% on validation


def test_the_served_model_learns_from_every_eligible_year(
    trained: TrainingResult, small_cohort: Cohort, small_config: TrainConfig
) -> None:
    """The split design evaluates a model that never saw the test years, then serves the chosen
    capacity refitted on all of them (model/refit.py): its intercept is re-solved on every
    labelled person, so their weighted mean risk is their weighted observed rate."""
    provenance = trained.bundle.provenance
    assert set(provenance["test_years"]) <= set(provenance["train_years"])
    assert max(provenance["evaluated_train_years"]) < min(provenance["test_years"])
    data = TrainingData(
        small_cohort.intake, small_cohort.outcomes, small_cohort.oracle, "synthetic"
    )
    frame, _, _ = _labelled(data, small_config)
    served = 1.0 / (
        1.0 + np.exp(-trained.bundle.log_odds(encode_frame(frame, trained.bundle.spec)))
    )
    w = frame["weight"].to_numpy()
    assert np.average(served, weights=w) == pytest.approx(
        np.average(frame["y"], weights=w), abs=1e-9
    )
    test = trained.test_frame
    refit = 1.0 / (1.0 + np.exp(-trained.bundle.log_odds(encode_frame(test, trained.bundle.spec))))
    held_out = test["probability"].to_numpy()
    assert np.max(np.abs(refit - held_out)) > 1e-3  # another model: the refit saw these people
    assert np.corrcoef(refit, held_out)[0, 1] > 0.95
