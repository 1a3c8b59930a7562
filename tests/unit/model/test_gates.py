"""Interval gates on cohorts with a known truth, scored as if the truth were a model: no training.

Cohorts: `generate_cohort(size, seed)` for sizes 2,000, 10,000 and 50,000 and seeds 0-19.
The generator makes 50,000 people in about 0.15 s, so the 60 cohorts are generated outright
(about 5 s, once per module) rather than subsampled from a few big ones: every sample is then
a whole cohort with its own censoring weights, as a municipality's would be.

Rows: in the small-cohort design the gates are decided on out-of-fold predictions of the newest
intake years, every labelled person in them. Here that is every labelled person (24-month
horizon, supported people left out) of the cohort's newest 4 labelled intake years, about a
third of the cohort: some 660, 3,300 and 16,600 people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from riskscreen.contract.labels import make_labels
from riskscreen.model.config import ChecklistConfig
from riskscreen.model.evaluate import (
    checklist_factors,
    expected_calibration_error,
    sensitive_frame,
    weighted_top_share_cut,
)
from riskscreen.model.gate_rules import Criterion, GateOutcome, GateSettings, Outcome
from riskscreen.model.gate_statistics import (
    Interval,
    auc_gain,
    calibration_intercept,
    calibration_slope,
    group_mean_gaps,
    log_odds,
)
from riskscreen.model.gates import (
    calibration_gates,
    champion_allowed,
    decide_gates,
    group_gates,
)
from riskscreen.synth.generate import generate_cohort

SIZES = (2_000, 10_000, 50_000)
SEEDS = range(20)
SETTINGS = GateSettings()


@dataclass(frozen=True)
class GateRows:
    """The people a gate is decided on, with the truth as the model's probabilities."""

    y: np.ndarray
    w: np.ndarray
    truth: np.ndarray
    sensitive: pd.DataFrame
    checklist: np.ndarray

    def threshold(self, p: np.ndarray) -> float:
        """The capacity threshold (top 25%) of scores p on these people."""
        return weighted_top_share_cut(p, self.w, 0.25)


def _gate_rows(size: int, seed: int) -> GateRows:
    cohort = generate_cohort(size, seed)
    labels = make_labels(cohort.intake, cohort.outcomes, horizon_months=24, support="exclude")
    labelled = labels["status"] == "labelled"
    newest = labels.loc[labelled, "intake_year"].max()
    rows = (labelled & (labels["intake_year"] > newest - 4)).to_numpy()
    assert (cohort.oracle["case_ref"] == cohort.intake["case_ref"]).all()
    intake = cohort.intake[rows].reset_index(drop=True)
    return GateRows(
        y=labels["long_settlement"].to_numpy(dtype=float, na_value=np.nan)[rows],
        w=labels["ipcw_weight"].to_numpy()[rows],
        truth=cohort.oracle["p_long_settlement"].to_numpy()[rows],
        sensitive=sensitive_frame(intake),
        checklist=checklist_factors(intake, ChecklistConfig()),
    )


@pytest.fixture(scope="module")
def cohorts() -> dict[int, list[GateRows]]:
    return {size: [_gate_rows(size, seed) for seed in SEEDS] for size in SIZES}


def _shift_for_true_ece(p: np.ndarray, w: np.ndarray, ece: float) -> float:
    """The log-odds shift s with weighted mean(expit(logit p + s) − p) = ece (Newton)."""
    s, x = 0.0, log_odds(p)
    for _ in range(20):
        q = expit(x + s)
        s -= (np.average(q - p, weights=w) - ece) / np.average(q * (1 - q), weights=w)
    return s


def _outcomes(outcomes: list[GateOutcome]) -> dict[str, str]:
    return {o.name: o.outcome for o in outcomes}


@pytest.mark.parametrize("size", SIZES)
def test_calibration_gate_fails_miscalibration_and_not_noise(
    cohorts: dict[int, list[GateRows]], size: int
) -> None:
    """(i) truth and (ii) a true ECE of 0.02 fail in at most 1 of 20; (iii) +0.5 fails in all."""
    failed = {"truth": 0, "true ECE 0.02": 0}
    for rows in cohorts[size]:
        x = log_odds(rows.truth)
        shifted = expit(x + _shift_for_true_ece(rows.truth, rows.w, 0.02))
        assert expected_calibration_error(rows.truth, shifted, rows.w) == pytest.approx(0.02)
        for case, p in (("truth", rows.truth), ("true ECE 0.02", shifted)):
            gates = calibration_gates(rows.y, p, rows.w, SETTINGS)
            failed[case] += "fail" in _outcomes(gates).values()
        broken = _outcomes(calibration_gates(rows.y, expit(x + 0.5), rows.w, SETTINGS))
        assert broken["calibration_intercept"] == "fail", (size, broken)
    assert failed["truth"] <= 1 and failed["true ECE 0.02"] <= 1, failed


def test_calibration_gate_passes_the_truth_when_the_cohort_can_show_it(
    cohorts: dict[int, list[GateRows]],
) -> None:
    """At 50,000 the truth's intervals fit inside both criteria; at 2,000 (660 people) the
    intercept's cannot: its half-width, about 0.14, exceeds the tolerance of 0.12."""
    for rows in cohorts[50_000]:
        gates = calibration_gates(rows.y, rows.truth, rows.w, SETTINGS)
        assert {o.outcome for o in gates} == {"pass"}, gates
    for rows in cohorts[2_000]:
        gates = _outcomes(calibration_gates(rows.y, rows.truth, rows.w, SETTINGS))
        assert gates["calibration_intercept"] == "not_assessable", gates
        assert gates["calibration_slope"] != "fail", gates


def test_slope_gate_fails_overconfident_and_timid_scores(
    cohorts: dict[int, list[GateRows]],
) -> None:
    """The truth's log-odds × 1.6 (a slope of 0.62) and × 0.6 (1.67) fail at 10,000."""
    for rows in cohorts[10_000]:
        for scale in (0.6, 1.6):
            p = expit(scale * log_odds(rows.truth))
            slope = calibration_gates(rows.y, p, rows.w, SETTINGS)[1]
            assert slope.outcome == "fail", slope


def test_group_disparity_fails_fairness_gate_and_truth_does_not(
    cohorts: dict[int, list[GateRows]],
) -> None:
    """(iv) the largest region group's true log-odds +0.7, at 50,000, judged against the truth."""
    region_gates = {"tpr_ratio_region_of_origin", "calibration_gap_region_of_origin"}
    for rows in cohorts[50_000]:
        shift = 0.7 * (rows.sensitive["region_of_origin"] == "middle_east").to_numpy()
        biased = expit(log_odds(rows.truth) + shift)
        failed = {}
        for case, p in (("truth", rows.truth), ("biased", biased)):
            gates = group_gates(
                rows.y,
                p,
                rows.w,
                threshold=rows.threshold(p),
                sensitive_features=rows.sensitive,
                oracle_p=rows.truth,
                settings=SETTINGS,
            )
            failed[case] = {o.name for o in gates if o.outcome == "fail"}
        assert not failed["truth"] and region_gates <= failed["biased"], failed


def _real_data_gates(rows: GateRows, p: np.ndarray) -> list[GateOutcome]:
    """The group gates as real data get them: no oracle, p as the model's probabilities."""
    return group_gates(
        rows.y,
        p,
        rows.w,
        threshold=rows.threshold(p),
        sensitive_features=rows.sensitive,
        settings=SETTINGS,
    )


@pytest.mark.parametrize("size", SIZES)
def test_real_data_group_gates_do_not_fail_the_truth(
    cohorts: dict[int, list[GateRows]], size: int
) -> None:
    """Real data have no oracle, and the checklist is no yardstick for the TPR ratio: a ranking
    by true risk flags the groups with more need more (TPR ratio by region about 0.42 at 50,000,
    the checklist's 0.71), so against the checklist the truth itself failed on 6 of 20 seeds.
    The benchmark is the ratio the model's own probabilities imply on the same flags. The
    calibration gap to the observed rate carries label noise; its interval absorbs it."""
    failed = []
    for rows in cohorts[size]:
        failed.append({o.name for o in _real_data_gates(rows, rows.truth) if o.outcome == "fail"})
    assert sum(bool(f) for f in failed) <= 1, failed


def test_real_data_group_gates_fail_a_group_disparity(cohorts: dict[int, list[GateRows]]) -> None:
    """The largest region's log-odds +0.7 in the model, not in the world, at 50,000, without
    the truth: the region's risks go beyond what its labels show, and the version fails."""
    for rows in cohorts[50_000]:
        shift = 0.7 * (rows.sensitive["region_of_origin"] == "middle_east").to_numpy()
        biased = expit(log_odds(rows.truth) + shift)
        gates = _real_data_gates(rows, biased)
        outcome = {o.name: o.outcome for o in gates}
        assert outcome["calibration_gap_region_of_origin"] == "fail"
        # The implied benchmark moves with the model's own inflated risks: the TPR gate cannot
        # tell here (measured: not assessable on all 20 seeds), and never passes it.
        assert outcome["tpr_ratio_region_of_origin"] != "pass"


def test_decide_gates_and_the_champion_verdict(cohorts: dict[int, list[GateRows]]) -> None:
    def decide(rows: GateRows, p: np.ndarray) -> list[GateOutcome]:
        return decide_gates(
            rows.y,
            p,
            rows.w,
            threshold=rows.threshold(p),
            checklist=rows.checklist,
            sensitive_features=rows.sensitive,
            oracle_p=rows.truth,
        )

    large, small = cohorts[50_000][0], cohorts[2_000][0]
    gates = decide(large, large.truth)
    assert [o.name for o in gates] == [
        "calibration_intercept",
        "calibration_slope",
        "auc_gain_over_checklist",
        "tpr_ratio_sex",
        "calibration_gap_sex",
        "tpr_ratio_region_of_origin",
        "calibration_gap_region_of_origin",
    ]
    assert champion_allowed(gates) == "yes"
    assert champion_allowed(decide(small, small.truth)) == "needs_approval"
    assert champion_allowed(decide(small, expit(log_odds(small.truth) + 0.5))) == "no"
    text = json.dumps([o.to_dict() for o in decide(small, small.truth)], allow_nan=False)
    tpr_sex = json.loads(text)[3]
    assert tpr_sex["details"]["truth_tpr_ratio"] == pytest.approx(
        tpr_sex["details"]["model_tpr_ratio"]
    )


def test_criterion_decides_on_the_whole_interval() -> None:
    within = Criterion(-0.1, 0.1)
    assert within.decide(Interval(0.0, -0.05, 0.08)) == "pass"
    assert within.decide(Interval(0.2, 0.12, 0.3)) == "fail"
    assert within.decide(Interval(-0.2, -0.3, -0.11)) == "fail"
    assert within.decide(Interval(0.1, 0.05, 0.15)) == "not_assessable"
    assert within.decide(Interval(np.nan, np.nan, np.nan)) == "not_assessable"
    assert Criterion(at_least=0.05).decide(Interval(0.06, 0.049, 0.07)) == "not_assessable"
    assert Criterion(at_least=0.05).decide(Interval(0.03, 0.01, 0.049)) == "fail"
    assert [str(within), str(Criterion(at_least=0.05)), str(Criterion(at_most=1))] == [
        "in [-0.1, 0.1]",
        ">= 0.05",
        "<= 1",
    ]


def test_champion_allowed_needs_every_gate_shown() -> None:
    def gate(outcome: Outcome) -> GateOutcome:
        return GateOutcome("g", outcome, "s", 0.0, 0.0, 0.0, "c", 1, 0.9)

    assert champion_allowed([gate("pass"), gate("pass")]) == "yes"
    assert champion_allowed([gate("pass"), gate("not_assessable")]) == "needs_approval"
    assert champion_allowed([gate("not_assessable"), gate("fail")]) == "no"
    assert champion_allowed([]) == "no"


def test_too_few_people_or_groups_are_not_assessable() -> None:
    rng = np.random.default_rng(3)
    n = 150
    p = rng.uniform(0.2, 0.8, n)
    y, w = (rng.random(n) < p).astype(float), np.ones(n)
    sensitive = pd.DataFrame(
        {"sex": rng.choice(["female", "male"], n), "region_of_origin": ["east_africa"] * n}
    )
    gates = calibration_gates(y, p, w, SETTINGS)
    assert {o.outcome for o in gates} == {"not_assessable"}
    assert "only 150 labelled people" in gates[0].note
    constant = calibration_gates(y, np.full(n, 0.5), w, GateSettings(min_people=100))[1]
    assert constant.outcome == "not_assessable" and "could not be estimated" in constant.note
    settings = GateSettings(min_group_size=60, min_people=100)
    by_name = {
        o.name: o
        for o in group_gates(
            y, p, w, threshold=0.6, sensitive_features=sensitive, settings=settings
        )
    }
    assert by_name["tpr_ratio_region_of_origin"].outcome == "not_assessable"
    assert "fewer than two groups" in by_name["tpr_ratio_region_of_origin"].note
    implied = by_name["tpr_ratio_sex"].details["implied_tpr_ratio"]
    assert by_name["tpr_ratio_sex"].details["required_tpr_ratio"] == min(0.8, 0.9 * implied)
    assert by_name["tpr_ratio_sex"].criterion == ">= 0"


def test_intervals_agree_with_a_weighted_bootstrap_over_people() -> None:
    """Sandwich, DeLong and linearised standard errors ≈ a Poisson bootstrap's, with weights
    up to 4 (a model-based interval reading them as frequencies is a third too narrow here)."""
    rng = np.random.default_rng(1)
    n, level = 4000, 0.9
    x = rng.normal(0, 1.2, n)
    y = (rng.random(n) < expit(0.1 + 0.9 * x)).astype(float)
    p, w = expit(x), rng.choice([1.0, 1.5, 4.0], n, p=[0.6, 0.3, 0.1])
    checklist = np.round(3 * rng.random(n) + (x > 0))
    codes = rng.integers(0, 3, n)

    def statistics(weights: np.ndarray) -> list[Interval]:
        return [
            calibration_intercept(y, p, weights, level),
            calibration_slope(y, p, weights, level),
            auc_gain(y, p, checklist, weights, level),
            *group_mean_gaps(p, y, weights, codes, level),
        ]

    full = statistics(w)
    assert full[2].estimate == pytest.approx(
        roc_auc_score(y, p, sample_weight=w) - roc_auc_score(y, checklist, sample_weight=w)
    )
    replicates = np.array(
        [[i.estimate for i in statistics(w * rng.poisson(1.0, n))] for _ in range(200)]
    )
    z = 1.6448536269514722
    analytic = np.array([(i.high - i.low) / (2 * z) for i in full])
    np.testing.assert_allclose(analytic, replicates.std(axis=0), rtol=0.15)
    mu = expit(full[0].estimate + log_odds(p))
    as_frequencies = 1 / np.sqrt(np.sum(w * mu * (1 - mu)))
    assert as_frequencies < 0.8 * replicates[:, 0].std()


def test_an_attribute_not_recorded_is_not_assessable_never_passed() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    p = rng.uniform(0.1, 0.9, n)
    y = (rng.random(n) < p).astype(float)
    w = np.ones(n)
    region = pd.DataFrame({"region_of_origin": rng.choice(["a", "b"], n)})  # sex not recorded
    settings = GateSettings(fairness_attributes=("sex", "region_of_origin"), bootstrap=50)
    outcomes = decide_gates(
        y,
        p,
        w,
        threshold=0.7,
        checklist=np.zeros(n),
        sensitive_features=region,
        oracle_p=p,
        settings=settings,
    )
    by_name = {o.name: o for o in outcomes}
    for name in ("tpr_ratio_sex", "calibration_gap_sex"):
        assert by_name[name].outcome == "not_assessable"
        assert "sex is not recorded" in by_name[name].note
    assert by_name["calibration_gap_region_of_origin"].outcome != "not_assessable"
    assert champion_allowed(outcomes) != "yes"
