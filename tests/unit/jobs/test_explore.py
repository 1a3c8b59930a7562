"""The notebooks' tables: card parsing, censoring counts, grouped explanations, API records."""

from __future__ import annotations

from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import STATUSES
from riskscreen.jobs.explore import (
    additivity_error,
    calibration_targets,
    comparison_table,
    contribution_groups,
    intake_records,
    label_status_by_year,
)
from riskscreen.model.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.model.config import TrainConfig
from riskscreen.model.scoring import Scorer, score_frame
from riskscreen.synth.generate import generate_cohort

FIELDS = (
    "age",
    "years_of_schooling",
    "literacy",
    "self_rated_health",
    "depression_symptoms",
    "occupation_group",
)


@pytest.fixture(scope="module")
def intake() -> pd.DataFrame:
    """A few hundred canonical intake rows (occupation_group has missing values)."""
    return generate_cohort(300, 5).intake


@pytest.fixture(scope="module")
def bundle(intake: pd.DataFrame) -> ModelBundle:
    """Tiny trees on six fields from four explanation groups, with a non-trivial calibration."""
    spec = FeatureSpec(FIELDS)
    x = encode_frame(intake, spec)
    rng = np.random.default_rng(0)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(0.05 * (x[:, 1] - 8)))).astype(float)
    params = {"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 5, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=15)
    return ModelBundle(booster, spec, Calibration(1.3, -0.2), Thresholds(0.6, 0.4))


def test_calibration_targets_split_target_and_source_tag() -> None:
    card = "\n".join(
        [
            "# Data card",
            "",
            "| quantity | target | realised |",
            "|---|---|---|",
            "| men, overall | 50-58% [V] | 55.1% |",
            "| in work by 27 months, women | about 41% [V, local] | 40.2% |",
            "| untagged | anything | 1 |",
            "",
            "## Parameters",
            "| not | this | table |",
        ]
    )
    table = calibration_targets(card)
    assert table.to_dict("records") == [
        {"quantity": "men, overall", "target": "50-58%", "source": "V", "realised": "55.1%"},
        {
            "quantity": "in work by 27 months, women",
            "target": "about 41%",
            "source": "V, local",
            "realised": "40.2%",
        },
        {"quantity": "untagged", "target": "anything", "source": "", "realised": "1"},
    ]


def test_calibration_targets_read_a_generated_card() -> None:
    table = calibration_targets(generate_cohort(200, 3).data_card)
    assert len(table) > 10
    assert set(table["source"]) <= {"V", "S", "A", "V, local"}
    assert (table["realised"] != "").all()


def test_calibration_targets_refuse_a_card_without_the_table() -> None:
    with pytest.raises(ValueError, match="no calibration table"):
        calibration_targets("# Data card\n\nnothing here\n")


def test_label_status_by_year_lists_every_status_with_totals() -> None:
    labels = pd.DataFrame(
        {
            "intake_year": [2020, 2020, 2020, 2021, 2023],
            "status": pd.Categorical(
                ["labelled", "lost", "labelled", "support_excluded", "recent"],
                categories=STATUSES,
            ),
        }
    )
    table = label_status_by_year(labels)
    assert list(table.columns) == [*STATUSES, "total", "labelled_share"]
    assert list(table.index) == [2020, 2021, 2023]
    counts = ["labelled", "lost", "support_excluded", "recent", "total"]
    assert table.loc[2020, counts].tolist() == [2, 1, 0, 0, 3]
    assert table.loc[2020, "labelled_share"] == pytest.approx(2 / 3)
    assert table.loc[2023, "recent"] == 1 and table.loc[2023, "labelled_share"] == 0


def test_comparison_table_has_one_column_per_comparator() -> None:
    """A stand-in result with the few attributes the report's metrics section reads."""
    frame = pd.DataFrame(
        {
            "y": [0.0, 1.0, 0.0, 1.0, 1.0, 0.0],
            "weight": [1.0, 1.2, 1.0, 1.5, 1.0, 1.1],
            "probability": [0.1, 0.8, 0.3, 0.6, 0.7, 0.2],
            "logreg": [0.2, 0.7, 0.4, 0.5, 0.6, 0.3],
            "oracle": [0.15, 0.75, 0.35, 0.65, 0.55, 0.25],
            "years_of_schooling": [12, 3, 9, 5, 2, 14],
            "work_experience_years": [5.0, 0.0, 2.0, 0.5, 0.0, 8.0],
            "self_rated_health": [4, 2, 3, 1, 2, 5],
            "disability": ["none", "physical", "none", "none", "psychiatric", "none"],
        }
    )
    result = SimpleNamespace(
        test_frame=frame,
        evaluation=SimpleNamespace(
            metrics={"test_share_flagged": 0.5, "test_roc_auc": 0.93, "test_oracle_roc_auc": 0.95}
        ),
    )
    table = comparison_table(result, TrainConfig(config_version=2))  # type: ignore[arg-type]
    assert list(table.columns) == [
        "Model",
        "Checklist baseline",
        "Logistic regression",
        "Oracle (true probability)",
    ]
    assert table.loc["ROC AUC", "Model"] == "0.9300"
    assert table.loc["ROC AUC", "Oracle (true probability)"] == "0.9500"
    assert table.loc["Brier score (lower is better)", "Checklist baseline"] == "n/a"


def test_contribution_groups_sum_fields_and_add_up(
    intake: pd.DataFrame, bundle: ModelBundle
) -> None:
    scored = score_frame(intake, bundle)
    groups = contribution_groups(scored, bundle.spec.fields)
    # Groups in declaration order (schema.GROUPS), only those the fields use.
    groups_in_use = ["age", "schooling", "work", "health"]
    assert list(groups.columns) == ["base", *groups_in_use, "log_odds", "probability"]
    expected_health = (
        scored["contribution_self_rated_health"] + scored["contribution_depression_symptoms"]
    )
    np.testing.assert_allclose(groups["health"], expected_health)
    total = groups.drop(columns=["log_odds", "probability"]).sum(axis=1)
    np.testing.assert_allclose(total, groups["log_odds"], atol=1e-9)


def test_additivity_error_is_tiny_for_exact_shap(intake: pd.DataFrame, bundle: ModelBundle) -> None:
    assert additivity_error(intake, bundle) < 1e-9


def test_intake_records_are_api_records_and_score_like_the_frame(
    intake: pd.DataFrame, bundle: ModelBundle
) -> None:
    records = intake_records(intake)
    assert len(records) == len(intake) and "case_ref" not in records[0]
    missing = intake["occupation_group"].isna().to_numpy()
    assert missing.any()
    assert all(r["occupation_group"] is None for r, m in zip(records, missing, strict=True) if m)
    assert type(records[0]["age"]) is int and type(records[0]["depression_symptoms"]) is bool
    scorer = Scorer(bundle)
    served = [scorer.score(r).probability for r in records]
    np.testing.assert_allclose(served, score_frame(intake, bundle)["probability"], rtol=1e-12)
