"""Registration gates decided on confidence intervals: pass, fail, or not assessable.

At 2,000-50,000 people a point estimate held against a fixed bar refuses good models on noise
(a binned ECE against labels is 0.02-0.03 for the true probabilities themselves at 200 people
a bin). So each gate names a statistic, estimates it with an interval (`gate_statistics`), and
compares the whole interval with the criterion:

- `pass`: the interval lies inside the criterion (shown to hold);
- `fail`: the interval lies outside it (shown broken);
- `not_assessable`: anything else: the interval straddles the criterion's bound, or there are
  too few people or too few large groups to compute it.

A straddling interval is not a pass, because a pass is a claim the data must support, and not a
fail, because nothing shows the model at fault: a well-calibrated model at a municipality's
size ends as pass or not assessable, never fail, and a clearly broken one fails. A version whose
only open gates are not assessable may become champion after a recorded approval
(`champion_allowed`). With the default 90% intervals each decisive outcome is a one-sided test
at 5%: `fail` rejects "the criterion holds", `pass` is the two one-sided tests of equivalence.

Group criteria that the truth itself fails on the same people measure the world, not the model
(at a fixed capacity a lower-need group has a lower recall under any good ranking). They are
judged against a benchmark on the same people: the true probabilities on synthetic data, what
the model's own probabilities imply on real data; see `group_gates`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskscreen.model.gate_rules import (
    SEVERITY,
    UNKNOWN,
    Criterion,
    GateOutcome,
    GateSettings,
    Verdict,
    decided,
    joined,
)
from riskscreen.model.gate_statistics import (
    LargeGroups,
    RecallRatios,
    auc_gain,
    calibration_intercept,
    calibration_slope,
    group_mean_gaps,
    large_groups,
    recall_ratio_margins,
    top_share_flags,
)


def calibration_gates(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, settings: GateSettings
) -> list[GateOutcome]:
    """Calibration intercept and slope, each with its sandwich interval.

    Chosen over a small-sample-corrected ECE: the two are 0 and 1 in expectation for the true
    probabilities at any size (a binned ECE is biased upwards, the more so the fewer people),
    their intervals stay honest under censoring weights, and they say what to do: recalibrate
    the log-odds by an intercept and a slope, as DESIGN.md allows. They see only
    miscalibration of that shape; the binned ECE and the calibration curve stay in the report.
    """
    d, e = settings.max_calibration_intercept, settings.max_calibration_slope_deviation
    short = _too_few_people(y, settings.min_people)
    intercept = UNKNOWN if short else calibration_intercept(y, p, w, settings.level)
    slope = UNKNOWN if short else calibration_slope(y, p, w, settings.level)
    return [
        decided(
            "calibration_intercept",
            "calibration intercept (log-odds, slope held at 1)",
            intercept,
            Criterion(-d, d),
            len(y),
            settings,
            short,
        ),
        decided(
            "calibration_slope",
            "calibration slope on the log-odds",
            slope,
            Criterion(1 - e, 1 + e),
            len(y),
            settings,
            short,
        ),
    ]


def _too_few_people(y: np.ndarray, min_people: int) -> str:
    """Why the whole-cohort gates cannot be computed, or '' when they can."""
    if len(y) < min_people:
        return f"only {len(y)} labelled people, at least {min_people} needed"
    return "every label is the same" if y.min() == y.max() else ""


def auc_gate(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, checklist: np.ndarray, settings: GateSettings
) -> GateOutcome:
    """ROC AUC gain over the four-factor checklist on the same people (paired interval)."""
    short = _too_few_people(y, settings.min_people)
    return decided(
        "auc_gain_over_checklist",
        "ROC AUC of the model minus that of the checklist",
        UNKNOWN if short else auc_gain(y, p, checklist, w, settings.level),
        Criterion(at_least=settings.min_auc_gain_over_checklist),
        len(y),
        settings,
        short,
    )


def group_gates(
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    *,
    threshold: float,
    sensitive_features: pd.DataFrame,
    oracle_p: np.ndarray | None = None,
    settings: GateSettings | None = None,
) -> list[GateOutcome]:
    """TPR ratio and within-group calibration for each fairness attribute.

    Synthetic data (`oracle_p` given): both are judged as the model's excess over the truth on
    the same people. The TPR ratio must reach min(min_tpr_ratio, tolerance × the truth's
    ratio), the truth flagging the same share; the calibration gap is a group's mean predicted
    risk minus its mean true risk, the model's gap in excess of the truth's (the observed rate
    cancels, and with it the label noise).

    Real data: the TPR ratio's benchmark is the ratio the model's own probabilities imply for
    its flags (`gate_statistics.implied_recalls`: labels drawn from p): what the flags would
    give if the model were right. A model that misjudges a group's risk in the range it flags
    finds that group's positives at another rate than it implies; a world in which groups
    differ in need moves both alike. (The checklist, an earlier benchmark, is no yardstick:
    a ranking by true risk has a TPR ratio by region of about 0.42 where the checklist has
    0.71, so the truth itself failed against it.) The calibration gap is mean predicted risk
    minus observed rate: the truth meets it in expectation in every group, so it measures the
    model, and the interval carries the label noise. Groups smaller than `min_group_size` are
    left out and named.
    """
    cfg = settings or GateSettings()
    flags = (p >= threshold).astype(np.float64)
    share = float(np.average(flags, weights=w))
    truth_flags = top_share_flags(oracle_p, w, share) if oracle_p is not None else None
    benchmark = "truth" if oracle_p is not None else "implied"
    groupings = {
        attr: large_groups(sensitive_features[attr], y, w, cfg.min_group_size)
        for attr in cfg.fairness_attributes
        if attr in sensitive_features
    }
    comparable = [attr for attr, groups in groupings.items() if len(groups.names) >= 2]
    margins = recall_ratio_margins(
        y,
        w,
        flags,
        truth_flags,
        [groupings[attr].codes for attr in comparable],
        min_ratio=cfg.min_tpr_ratio,
        tolerance=cfg.tpr_ratio_tolerance,
        replicates=cfg.bootstrap,
        seed=cfg.seed,
        level=cfg.level,
        implied_by=p if oracle_p is None else None,
    )
    ratios = dict(zip(comparable, margins, strict=True))
    out = []
    for attr in cfg.fairness_attributes:
        if attr not in groupings:
            out += _not_recorded(attr, cfg)
            continue
        out.append(_tpr_gate(attr, ratios.get(attr), benchmark, groupings[attr], cfg))
        out.append(_gap_gate(attr, y, p, w, oracle_p, groupings[attr], cfg))
    return out


def _not_recorded(attr: str, cfg: GateSettings) -> list[GateOutcome]:
    """An attribute the municipality does not record: its gates cannot be assessed, and so
    they are never passed (a version then needs a recorded approval)."""
    note = f"{attr} is not recorded in this data: the gate cannot be assessed"
    c = cfg.max_group_calibration_gap
    return [
        decided(
            f"tpr_ratio_{attr}",
            "lowest / highest group TPR",
            UNKNOWN,
            Criterion(0.0),
            0,
            cfg,
            note,
        ),
        decided(
            f"calibration_gap_{attr}",
            "group calibration gap",
            UNKNOWN,
            Criterion(-c, c),
            0,
            cfg,
            note,
        ),
    ]


def _small_note(groups: LargeGroups, cfg: GateSettings) -> str:
    if not groups.small:
        return ""
    return f"left out, fewer than {cfg.min_group_size} people: {', '.join(groups.small)}"


def _tpr_gate(
    attr: str, r: RecallRatios | None, benchmark: str, groups: LargeGroups, cfg: GateSettings
) -> GateOutcome:
    """TPR ratio margin over the required ratio, the benchmark's group recalls beside it."""
    of = {"truth": "the truth's ratio", "implied": "the ratio its probabilities imply"}
    required = f"min({cfg.min_tpr_ratio:g}, {cfg.tpr_ratio_tolerance:g} × {of[benchmark]})"
    name, statistic = f"tpr_ratio_{attr}", f"lowest / highest group TPR minus {required}"
    if r is None:
        note = joined("fewer than two groups large enough", _small_note(groups, cfg))
        return decided(name, statistic, UNKNOWN, Criterion(0.0), groups.n, cfg, note)
    details = {"model_tpr_ratio": r.model_ratio, "required_tpr_ratio": r.required_ratio}
    details |= {f"model_tpr[{g}]": t for g, t in zip(groups.names, r.model_tpr, strict=True)}
    details[f"{benchmark}_tpr_ratio"] = r.benchmark_ratio
    for g, t in zip(groups.names, r.benchmark_tpr, strict=True):
        details[f"{benchmark}_tpr[{g}]"] = t
    note = _small_note(groups, cfg)
    return decided(name, statistic, r.margin, Criterion(0.0), groups.n, cfg, note, details)


def _gap_gate(
    attr: str,
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    oracle_p: np.ndarray | None,
    groups: LargeGroups,
    cfg: GateSettings,
) -> GateOutcome:
    """Every large group's calibration gap within ±max_group_calibration_gap.

    Each group gets an interval at level 1 − (1 − level)/G (Bonferroni over the G groups), so
    the chance that any group of a calibrated model is shown broken stays within the level's.
    The outcome is the worst group's, and so is the interval reported. The details hold each
    group's gap and, on synthetic data, the model's and the truth's gaps to the observed rate.
    """
    c, reference = cfg.max_group_calibration_gap, y if oracle_p is None else oracle_p
    name = f"calibration_gap_{attr}"
    what = "observed rate" if oracle_p is None else "true probability"
    statistic = f"group mean predicted risk minus mean {what}, worst group"
    if not groups.names:
        note = joined("no group large enough", _small_note(groups, cfg))
        return decided(name, statistic, UNKNOWN, Criterion(-c, c), 0, cfg, note)
    level = 1 - (1 - cfg.level) / len(groups.names)
    gaps = group_mean_gaps(p, reference, w, groups.codes, level)
    severity = [SEVERITY[Criterion(-c, c).decide(gap)] for gap in gaps]
    worst = max(range(len(gaps)), key=lambda i: (severity[i], abs(gaps[i].estimate)))
    details = {f"gap[{g}]": gap.estimate for g, gap in zip(groups.names, gaps, strict=True)}
    if oracle_p is not None:
        for label, probs in (("model", p), ("truth", oracle_p)):
            observed = group_mean_gaps(probs, y, w, groups.codes, level)
            for g, o in zip(groups.names, observed, strict=True):
                details[f"{label}_gap_to_observed[{g}]"] = o.estimate
    note = f"worst group {groups.names[worst]}; each group at level {level:.3f}"
    note = joined(note, _small_note(groups, cfg))
    return decided(name, statistic, gaps[worst], Criterion(-c, c), groups.n, cfg, note, details)


def decide_gates(
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    *,
    threshold: float,
    checklist: np.ndarray,
    sensitive_features: pd.DataFrame,
    oracle_p: np.ndarray | None = None,
    settings: GateSettings | None = None,
) -> list[GateOutcome]:
    """Every gate, on the people the decision rests on (out-of-fold or test predictions).

    Args:
        y: labels; p: the model's probabilities; w: the censoring weights.
        threshold: the capacity threshold the flags are set at.
        checklist: the checklist's factor counts per person (`evaluate.checklist_factors`).
        sensitive_features: the attributes in `settings.fairness_attributes`, row-aligned.
        oracle_p: the true probabilities on synthetic data, None on real data.
    """
    cfg = settings or GateSettings()
    groups = group_gates(
        y,
        p,
        w,
        threshold=threshold,
        sensitive_features=sensitive_features,
        oracle_p=oracle_p,
        settings=cfg,
    )
    return [*calibration_gates(y, p, w, cfg), auc_gate(y, p, w, checklist, cfg), *groups]


def champion_allowed(outcomes: Sequence[GateOutcome]) -> Verdict:
    """'no' on any fail (or no gates at all); 'needs_approval' if any is not assessable."""
    if not outcomes or any(o.outcome == "fail" for o in outcomes):
        return "no"
    return "needs_approval" if any(o.outcome == "not_assessable" for o in outcomes) else "yes"
