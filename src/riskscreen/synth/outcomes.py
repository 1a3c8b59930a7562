"""Outcomes of the synthetic cohort: time to first work or studies, support, loss, the oracle.

The settlement time T (days) follows a Weibull proportional-hazards model,
S0(t | x) = exp(-(t / scale) ** shape * exp(lp(x))), with lp the linear predictor of the
traits below (positive = faster). T is sampled by inversion, so the oracle is exact rather
than estimated: the label (no settlement within H calendar months) is 1 iff
floor(T) > h, where h is the number of days to the horizon date, i.e. iff T >= h + 1, so
p_long_settlement = S0(h + 1 | x) under usual care. Intensified support multiplies the hazard
of those who receive it, and is more likely the higher their true risk: exactly the selection
that makes naive retraining on supported people learn that their traits are low-risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskscreen.synth.config import LogHazardRatios, Settlement, Support, SynthConfig
from riskscreen.synth.traits import Arrays, by_category, by_year, code, expit

DAYS_PER_YEAR = 365.25


def linear_predictor(t: Arrays, cfg: SynthConfig) -> np.ndarray:
    """The log relative hazard of settlement of each person, including the intake-year effect."""
    b: LogHazardRatios = cfg.settlement.log_hazard_ratios
    female = t["sex"] == code("sex", "female")
    male = t["sex"] == code("sex", "male")
    young = t["children_under_6"] > 0
    short = t["years_of_schooling"] < 7
    no_swedish = t["swedish_level"] == code("swedish_level", "none")
    lp = (
        b.female * female
        + b.age_per_year_over_30 * (t["age"] - 30)
        + b.schooling_per_year_over_10 * (t["years_of_schooling"] - 10)
        + b.short_schooling_under_7 * short
        + b.literacy_limited * (t["literacy"] == code("literacy", "limited"))
        + b.literacy_none * (t["literacy"] == code("literacy", "none"))
        + b.work_experience_log1p_years * np.log1p(t["work_experience_years"])
        + b.swedish_per_level * t["swedish_level"]
        + b.english_basic * (t["english_level"] == code("english_level", "basic"))
        + b.english_good * (t["english_level"] == code("english_level", "good"))
        + b.permit_quota_refugee * (t["permit_type"] == code("permit_type", "quota_refugee"))
        + b.permit_family_reunification
        * (t["permit_type"] == code("permit_type", "family_reunification"))
    )
    lp += (
        b.depression_symptoms * t["depression_symptoms"]
        + b.anxiety_symptoms * t["anxiety_symptoms"]
        + b.ptsd_symptoms * t["ptsd_symptoms"]
        + b.diagnosed_ptsd * t["diagnosed_ptsd"]
        + b.self_rated_health_per_step_over_3 * (t["self_rated_health"] - 3)
        + b.chronic_condition * t["chronic_condition"]
        + by_category(b.disability, "disability")[t["disability"]]
        + b.young_children_female * (female & young)
        + b.young_children_male * (male & young)
        + b.children_6_to_17_per_child * t["children_6_to_17"]
        + b.single_parent_with_young_children * (t["single_parent"] & young)
        + b.short_schooling_no_swedish * (short & no_swedish)
        + b.driving_licence * t["driving_licence"]
        + b.unemployment_per_pp_over_7 * (t["local_unemployment_rate"] - 7)
        + by_category(b.municipality_type, "municipality_type")[t["municipality_type"]]
        + by_category(b.region_of_origin, "region_of_origin")[t["region_of_origin"]]
        + np.log(by_year(cfg.labour_market.hazard_multiplier_by_year, t["intake_year"]))
    )
    return lp


def weibull_time(target: np.ndarray, lp: np.ndarray, cfg: Settlement) -> np.ndarray:
    """Inverse of the cumulative hazard: the time at which it reaches `target` (Exp(1) draws)."""
    return cfg.weibull_scale_days * (target * np.exp(-lp)) ** (1.0 / cfg.weibull_shape)


def survival(days: np.ndarray, lp: np.ndarray, cfg: Settlement) -> np.ndarray:
    """S0(days | x): the probability of not yet having settled `days` after intake."""
    return np.exp(-((days / cfg.weibull_scale_days) ** cfg.weibull_shape) * np.exp(lp))


def support_probability(lp: np.ndarray, cfg: Support) -> np.ndarray:
    """The chance of intensified support: higher when the true relative hazard is lower."""
    return expit(cfg.logit_intercept - cfg.logit_slope_on_risk * lp)


def horizon_days(intake_day: np.ndarray, horizon_months: int) -> np.ndarray:
    """Days from intake to intake + H calendar months, exactly as the label defines the horizon."""
    intake = pd.DatetimeIndex(intake_day.astype("datetime64[D]").astype("datetime64[us]"))
    return np.asarray((intake + pd.DateOffset(months=horizon_months) - intake).days, np.int64)


def exp1(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard exponential draws by inversion of 1 - U, finite because U < 1."""
    return -np.log1p(-rng.random(n))


def sample_outcomes(
    rng: np.random.Generator, t: Arrays, cfg: SynthConfig, horizon_months: int
) -> Arrays:
    """Latent times, support and the oracle for one chunk of people."""
    n = len(t["age"])
    lp = linear_predictor(t, cfg)
    usual = weibull_time(exp1(rng, n), lp, cfg.settlement)
    p_support = support_probability(lp, cfg.support)
    supported = rng.random(n) < p_support
    speed_up = cfg.support.hazard_multiplier ** (-1.0 / cfg.settlement.weibull_shape)
    received = np.where(supported, usual * speed_up, usual)
    rate_per_day = cfg.loss_to_followup.annual_rate / DAYS_PER_YEAR
    lost = exp1(rng, n) / rate_per_day if rate_per_day > 0 else np.full(n, np.inf)
    h = horizon_days(t["intake_day"], horizon_months)
    return {
        "linear_predictor": lp,
        "time_to_settlement_usual_days": usual,
        "time_to_settlement_days": received,
        "lost_days": lost,
        "p_intensified_support": p_support,
        "received_intensified_support": supported,
        "horizon_days": h,
        "p_long_settlement": survival(h + 1.0, lp, cfg.settlement),
    }


def observed_dates(
    intake_day: np.ndarray, received: np.ndarray, lost: np.ndarray, extract_day: int
) -> tuple[np.ndarray, np.ndarray]:
    """Observed settlement and loss dates (datetime64[us], NaT when not observed).

    Events happen on day floor(time) after intake. A settlement is observed if it falls no
    later than the day of the loss (a loss on the settlement day still sees it, as the labels
    assume) and no later than the extraction; a loss is recorded whenever it falls no later
    than the extraction, also after a settlement.
    """
    cap = float(extract_day - intake_day.min() + 1)  # bounds the floats before the integer cast
    settle_after = np.floor(np.minimum(received, cap)).astype(np.int64)
    lost_after = np.floor(np.minimum(lost, cap)).astype(np.int64)
    settled, gone = intake_day + settle_after, intake_day + lost_after
    settled_seen = (settle_after <= lost_after) & (settled <= extract_day)
    return _dates(settled, settled_seen), _dates(gone, gone <= extract_day)


def _dates(days: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Day numbers as midnight datetime64[us], NaT where not seen."""
    out = days.astype("datetime64[D]").astype("datetime64[us]")
    out[~seen] = np.datetime64("NaT")
    return out
