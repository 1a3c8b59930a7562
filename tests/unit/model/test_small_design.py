"""The small-cohort design on a ~3,000-person cohort: a served bundle whose explanations add up,
out-of-fold predictions of exactly the newest years, calibration and thresholds taken from them,
the simpler family where the data cannot tell families apart, clear refusals, and the same
numbers every time."""

from __future__ import annotations

import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.model.config import SmallDesignConfig, SmallTreesConfig
from riskscreen.model.folds import (
    OutOfFold,
    TooFewPeople,
    calibrate,
    forward_folds,
    out_of_fold,
)
from riskscreen.model.linear import LinearModel, PenalizedLogistic
from riskscreen.model.small_design import (
    SmallFit,
    choose_family,
    fit_small_design,
    weighted_auc,
)
from riskscreen.model.small_trees import fit_small_trees
from riskscreen.model.train import capacity_thresholds
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)
CAPACITY, ELEVATED = 0.25, 0.25


def _labelled(n: int, seed: int) -> pd.DataFrame:
    """The labelled people of the fully followed-up years, as `pipeline._labelled` keeps them."""
    cohort = generate_cohort(n, seed)
    labels = make_labels(cohort.intake, cohort.outcomes)
    frame = cohort.intake.reset_index(drop=True).copy()
    frame["y"] = labels["long_settlement"].to_numpy(dtype=float, na_value=np.nan)
    frame["weight"] = labels["ipcw_weight"].to_numpy()
    partial = labels.loc[labels["status"] == "recent", "intake_year"].unique()
    keep = (labels["status"] == "labelled") & ~labels["intake_year"].isin(partial)
    return frame[keep.to_numpy()]


def _fit(frame: pd.DataFrame, cfg: SmallDesignConfig) -> SmallFit:
    return fit_small_design(frame, SPEC, cfg, capacity=CAPACITY, elevated_share=ELEVATED)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _labelled(3000, 11)


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> SmallFit:
    return _fit(frame, SmallDesignConfig())


@pytest.fixture(scope="module")
def trees(frame: pd.DataFrame) -> SmallFit:
    return _fit(frame, SmallDesignConfig(candidates=("trees",)))


@pytest.mark.parametrize("which", ["fitted", "trees"])
def test_the_served_log_odds_are_base_plus_the_contributions(
    which: str, frame: pd.DataFrame, request: pytest.FixtureRequest
) -> None:
    fit: SmallFit = request.getfixturevalue(which)
    x = encode_frame(frame, SPEC)
    base, contributions = fit.bundle.contributions(x, num_threads=0)
    np.testing.assert_allclose(
        base + contributions.sum(axis=1), fit.bundle.log_odds(x, num_threads=0), atol=1e-9
    )


def test_the_out_of_fold_rows_are_exactly_the_newest_years(
    fitted: SmallFit, frame: pd.DataFrame
) -> None:
    years = frame["intake_date"].dt.year.to_numpy()
    newest = sorted(set(years.tolist()))[-3:]
    oof = fitted.oof
    assert sorted(oof["row"].tolist()) == np.flatnonzero(np.isin(years, newest)).tolist()
    np.testing.assert_array_equal(oof["year"], years[oof["row"]])
    np.testing.assert_array_equal(oof["y"], frame["y"].to_numpy()[oof["row"]])
    np.testing.assert_array_equal(oof["weight"], frame["weight"].to_numpy()[oof["row"]])
    assert oof["probability"].between(0, 1).all()


def test_the_thresholds_flag_the_capacity_share_of_the_out_of_fold_people(
    fitted: SmallFit,
) -> None:
    p, w = fitted.oof["probability"].to_numpy(), fitted.oof["weight"].to_numpy()
    assert fitted.bundle.thresholds == capacity_thresholds(p, w, CAPACITY, ELEVATED)
    flagged = np.average(p >= fitted.bundle.thresholds.flag, weights=w)
    assert flagged == pytest.approx(CAPACITY, abs=0.01)


def test_linear_is_calibrated_on_its_own_out_of_fold_log_odds_and_refitted_on_every_row(
    frame: pd.DataFrame,
) -> None:
    cfg = SmallDesignConfig(candidates=("linear",))
    fit = _fit(frame, cfg)
    x = encode_frame(frame, SPEC)
    y, w = frame["y"].to_numpy(), frame["weight"].to_numpy()
    folds = forward_folds(
        frame["intake_date"].dt.year.to_numpy(),
        test_years=cfg.test_years,
        min_per_year=cfg.min_per_year,
        min_train=cfg.min_train,
    )
    oof = out_of_fold(
        lambda x, y, w: (
            PenalizedLogistic(spec=SPEC, random_state=cfg.seed).fit(x, y, w).model_.log_odds
        ),
        x,
        y,
        w,
        folds,
    )
    expected = calibrate(oof, y, w)
    # the slope from the out-of-fold predictions; the evaluation uses their own calibration
    assert fit.bundle.calibration.slope == pytest.approx(expected.slope, abs=1e-9)
    # the evaluation: each predicted year calibrated on the other predicted years only
    for year in np.unique(oof.year):
        mine = oof.year == year
        other = calibrate(OutOfFold(oof.rows[~mine], oof.year[~mine], oof.log_odds[~mine]), y, w)
        calibrated = other.slope * oof.log_odds[mine] + other.intercept
        np.testing.assert_allclose(
            fit.oof["probability"].to_numpy()[mine], 1 / (1 + np.exp(-calibrated)), atol=1e-12
        )
        assert other != expected
    served = PenalizedLogistic(spec=SPEC, random_state=cfg.seed).fit(x, y, w).model_
    assert isinstance(fit.bundle.model, LinearModel)
    np.testing.assert_allclose(fit.bundle.model.coef, served.coef, atol=1e-12)
    # the intercept: the served mean risk equals the observed rate over every labelled person
    p = 1 / (1 + np.exp(-fit.bundle.log_odds(x)))
    assert np.average(p, weights=w) == pytest.approx(np.average(y, weights=w), abs=1e-9)
    assert fit.family == "linear"
    assert fit.reason.startswith("linear chosen: the only candidate")


def test_the_chosen_family_is_a_candidate_and_the_reason_names_it(fitted: SmallFit) -> None:
    table = fitted.candidates
    assert list(table.columns) == [
        "family",
        "oof_auc",
        "oof_log_loss",
        "auc_se_vs_best",
        "fit_seconds",
        "chosen",
    ]
    assert table["family"].tolist() == ["linear", "ebm", "trees"]
    assert table.loc[table["chosen"], "family"].tolist() == [fitted.family]
    assert fitted.bundle.family.name == fitted.family
    assert fitted.reason.startswith(f"{fitted.family} chosen: ")
    assert table["oof_auc"].between(0.6, 0.85).all()
    assert (table["auc_se_vs_best"] >= 0).all() and (table["fit_seconds"] > 0).all()


def test_trees_alone_serve_trees_with_the_declared_directions(
    trees: SmallFit, frame: pd.DataFrame
) -> None:
    assert trees.family == "trees"
    assert isinstance(trees.bundle.model, lgb.Booster)
    # More schooling never raises the risk: the monotone constraint reached the served trees.
    row = encode_frame(frame.head(1), SPEC).repeat(23, axis=0)
    row[:, SPEC.fields.index("years_of_schooling")] = np.arange(23)
    assert (np.diff(trees.bundle.log_odds(row, num_threads=0)) <= 1e-12).all()


def _oof(scores: dict[str, np.ndarray]) -> dict[str, OutOfFold]:
    n = len(next(iter(scores.values())))
    rows, year = np.arange(n), np.full(n, 2023)
    return {name: OutOfFold(rows, year, s) for name, s in scores.items()}


def test_the_simpler_family_wins_within_noise_and_loses_beyond_it() -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-signal))).astype(float)
    w = rng.uniform(1.0, 1.5, 2000)
    # Linear ranks worse than trees: ΔAUC 0.013 with a bootstrap SE of 0.006 (2.4 SE).
    oofs = _oof({"trees": signal, "linear": signal + rng.normal(scale=0.4, size=2000)})
    table, chosen, reason = choose_family(oofs, y, w, SmallDesignConfig(noise_z=4.0))
    assert chosen == "linear"
    assert re.fullmatch(r"linear chosen: within noise of trees \(ΔAUC 0\.0\d+ ± 0\.00\d+\)", reason)
    assert table.set_index("family")["auc_se_vs_best"]["trees"] == 0.0
    _, chosen, reason = choose_family(oofs, y, w, SmallDesignConfig(noise_z=1.0))
    assert chosen == "trees"
    assert reason.startswith("trees chosen: best out-of-fold AUC") and "linear (ΔAUC" in reason
    # Trees that rank exactly as the EBM does tie with it, and a tie goes to the simpler.
    oofs = _oof({"linear": rng.normal(size=2000), "ebm": signal, "trees": 2 * signal})
    _, chosen, reason = choose_family(oofs, y, w, SmallDesignConfig())
    assert chosen == "ebm"
    assert reason.startswith("ebm chosen: best out-of-fold AUC") and "linear (ΔAUC" in reason


def test_weighted_auc_is_sklearns_for_every_bootstrap_row_ties_included() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.4).astype(float)
    score = np.round(rng.normal(size=300) + y, 1)  # many ties
    weights = rng.uniform(0.5, 2.0, (4, 300)) * rng.integers(0, 3, (4, 300))
    expected = [roc_auc_score(y, score, sample_weight=row) for row in weights]
    np.testing.assert_allclose(weighted_auc(y, score, weights), expected, atol=1e-12)


def test_too_few_people_is_refused_naming_the_year() -> None:
    with pytest.raises(TooFewPeople, match=r"year 20\d\d has \d+ labelled people"):
        _fit(_labelled(300, 11), SmallDesignConfig())


def test_trees_refuse_a_single_year_they_cannot_stop_early_on(frame: pd.DataFrame) -> None:
    one = frame[frame["intake_date"].dt.year == 2020]
    with pytest.raises(TooFewPeople, match=r"all \d+ are from 2020"):
        fit_small_trees(
            encode_frame(one, SPEC),
            one["y"].to_numpy(),
            one["weight"].to_numpy(),
            one["intake_date"].dt.year.to_numpy(),
            SPEC,
            SmallTreesConfig(),
            seed=7,
            num_threads=1,
        )


def test_the_config_rejects_unknown_keys_and_repeated_or_unknown_families() -> None:
    with pytest.raises(ValidationError):
        SmallDesignConfig.model_validate({"test_year": 3})
    with pytest.raises(ValidationError):
        SmallDesignConfig(candidates=("linear", "linear"))
    with pytest.raises(ValidationError):
        SmallDesignConfig.model_validate({"candidates": ["forest"]})


def test_the_same_inputs_give_the_same_bundle(fitted: SmallFit, frame: pd.DataFrame) -> None:
    again = _fit(frame, SmallDesignConfig())
    assert again.bundle.model_text() == fitted.bundle.model_text()
    assert again.bundle.calibration == fitted.bundle.calibration
    assert again.bundle.thresholds == fitted.bundle.thresholds
    assert again.reason == fitted.reason
    pd.testing.assert_frame_equal(again.oof, fitted.oof)
    timings = ["fit_seconds"]
    pd.testing.assert_frame_equal(
        again.candidates.drop(columns=timings), fitted.candidates.drop(columns=timings)
    )
