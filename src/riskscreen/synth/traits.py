"""The intake traits of the synthetic cohort: who arrives, and how their traits hang together.

Each trait is drawn from its causal parents (see the story in synth.py) by a small pure
function of a numpy Generator and arrays; categorical traits are integer codes in the order of
the schema's categories (-1 for null), turned into pandas categoricals only at the edge.
Several traits share latent standard normals (age, a mental-health factor): thresholding an
exactly standard-normal latent hits a configured prevalence exactly, whatever its correlations.
"""

from __future__ import annotations

import datetime as dt
from statistics import NormalDist

import numpy as np

from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.synth.config import (
    Age,
    Calendar,
    DrivingLicence,
    Family,
    LabourMarket,
    Literacy,
    MentalHealth,
    OrderedProbit,
    PhysicalHealth,
    Schooling,
    Sex,
    SynthConfig,
    Work,
)

Arrays = dict[str, np.ndarray]
EPOCH = dt.date(1970, 1, 1)
_STD_NORMAL = NormalDist()


def categories(field_name: str) -> tuple[str, ...]:
    """The schema's categories of a field: the code of a value is its position here."""
    return FIELDS_BY_NAME[field_name].categories


def code(field_name: str, value: str) -> int:
    """The integer code of one category value of a schema field."""
    return categories(field_name).index(value)


def by_category(mapping: dict[str, float], field_name: str) -> np.ndarray:
    """A per-category parameter as a vector indexed by code (schema order, not file order)."""
    return np.array([mapping[c] for c in categories(field_name)], dtype=np.float64)


def draw_codes(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """Codes 0..K-1 with fixed probabilities, by inversion of one uniform each."""
    cum = np.cumsum(probs / probs.sum())
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)


def draw_rowwise(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Codes with a probability row per person (n x K), by inversion of one uniform each."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so exp never overflows."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, in a form that cannot overflow for any logit."""
    return np.exp(-np.logaddexp(0.0, -x))


def upper_threshold(share: float) -> float:
    """The standard-normal cut that a share `share` of people lies above."""
    return _STD_NORMAL.inv_cdf(1.0 - share)


# --- time and place -----------------------------------------------------------------------


def sample_intake_days(rng: np.random.Generator, cal: Calendar, n: int) -> np.ndarray:
    """Intake dates as days since 1970-01-01, uniform within a year, years by their weight."""
    first, last = (cal.intake_start - EPOCH).days, (cal.intake_end - EPOCH).days
    days = np.arange(first, last + 1, dtype=np.int64)
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    weights = np.array([cal.year_weights[int(y)] for y in years], dtype=np.float64)
    return days[draw_codes(rng, weights, n)]


def year_of(days: np.ndarray) -> np.ndarray:
    """Calendar year of days since 1970-01-01."""
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def by_year(mapping: dict[int, float], years: np.ndarray) -> np.ndarray:
    """A per-year parameter looked up for each person's intake year."""
    first = int(years.min())
    table = np.array([mapping[y] for y in range(first, int(years.max()) + 1)], dtype=np.float64)
    return table[years - first]


def sample_unemployment(
    rng: np.random.Generator, lm: LabourMarket, years: np.ndarray, municipality: np.ndarray
) -> np.ndarray:
    """Local unemployment (%): the year's level, the municipality type's offset, local noise."""
    offsets = by_category(lm.unemployment_offset_by_municipality, "municipality_type")
    rate = by_year(lm.unemployment_by_year, years) + offsets[municipality]
    rate += lm.unemployment_noise_sd * rng.standard_normal(len(years))
    field = FIELDS_BY_NAME["local_unemployment_rate"]
    return np.round(np.clip(rate, field.minimum, field.maximum), 1)


# --- demography ----------------------------------------------------------------------------


def sample_sex(rng: np.random.Generator, cfg: Sex, permit: np.ndarray) -> np.ndarray:
    """Sex codes (-1 null): a small configured share other/unknown, else men by permit type."""
    u = rng.random(len(permit))
    p_male = by_category(cfg.male_share_by_permit, "permit_type")[permit]
    rest = (u - cfg.other_share - cfg.missing_share) / (1 - cfg.other_share - cfg.missing_share)
    sex = np.where(rest < p_male, code("sex", "male"), code("sex", "female"))
    sex[u < cfg.other_share + cfg.missing_share] = -1
    sex[u < cfg.other_share] = code("sex", "other")
    return sex.astype(np.int8)


def age_from_normal(z_age: np.ndarray, cfg: Age) -> np.ndarray:
    """Whole-year age from a standard normal, so that z_age can drive age-related traits."""
    per_age = np.concatenate(
        [
            np.full(hi - lo + 1, share / (hi - lo + 1))
            for (lo, hi), share in zip(cfg.bands, cfg.band_shares.values(), strict=True)
        ]
    )
    cuts = [_STD_NORMAL.inv_cdf(min(max(c, 1e-12), 1 - 1e-12)) for c in np.cumsum(per_age)[:-1]]
    return cfg.bands[0][0] + np.searchsorted(np.asarray(cuts), z_age).astype(np.int64)


def sample_schooling(
    rng: np.random.Generator, cfg: Schooling, region: np.ndarray, sex: np.ndarray
) -> np.ndarray:
    """Completed years of schooling: a shifted normal latent by region and sex, rounded."""
    shift = by_category(cfg.region_shift, "region_of_origin")[region]
    shift += cfg.female_shift * (sex == code("sex", "female"))
    years = np.rint(cfg.mean_years + cfg.sd_years * (shift + rng.standard_normal(len(sex))))
    return np.clip(years, 0, cfg.max_years).astype(np.int64)


def education_level(years: np.ndarray, cfg: Schooling) -> np.ndarray:
    """The highest level consistent with the years (thresholds from config)."""
    mins = by_category({k: float(v) for k, v in cfg.level_min_years.items()}, "education_level")
    return (np.searchsorted(mins, years, side="right") - 1).astype(np.int8)


def sample_literacy(rng: np.random.Generator, cfg: Literacy, years: np.ndarray) -> np.ndarray:
    """Literacy on schooling: no literacy only among those with under 3 years of school."""
    u = rng.random(len(years))
    limited = np.select(
        [years < 3, years < 7],
        [cfg.limited_share_under_3_years, cfg.limited_share_3_to_6_years],
        cfg.limited_share_7_plus_years,
    )
    none = np.where(years < 3, cfg.none_share_under_3_years, 0.0)
    return np.select(
        [u < none, u < none + limited],
        [code("literacy", "none"), code("literacy", "limited")],
        code("literacy", "literate"),
    ).astype(np.int8)


def sample_work(
    rng: np.random.Generator, cfg: Work, age: np.ndarray, sex: np.ndarray, years: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Work experience (years, in halves) and SSYK major group (-1 iff no experience)."""
    n = len(age)
    female = sex == code("sex", "female")
    logit = np.where(
        female,
        cfg.participation_logit_female + cfg.participation_per_school_year_female * (years - 10),
        cfg.participation_logit_male,
    )
    worked = rng.random(n) < expit(logit)
    potential = np.maximum(age - np.maximum(16, cfg.school_start_age + years), 0)
    fraction = rng.beta(cfg.fraction_beta_a, cfg.fraction_beta_b, n)
    experience = np.where(worked, np.rint(2 * potential * fraction) / 2, 0.0)
    scores = np.asarray(cfg.occupation_intercepts) + np.outer(
        (years - 10) / 4, np.asarray(cfg.occupation_school_slopes)
    )
    occupation = draw_rowwise(rng, softmax_rows(scores))
    return experience, np.where(experience > 0, occupation, -1).astype(np.int8)


def sample_ordered(
    rng: np.random.Generator, cfg: OrderedProbit, permit: np.ndarray, years: np.ndarray
) -> np.ndarray:
    """An ordinal language level from an ordered probit on permit type and schooling."""
    latent = by_category(cfg.mean_by_permit, "permit_type")[permit]
    latent += cfg.schooling_loading * (years - 10) / 4 + rng.standard_normal(len(years))
    return np.searchsorted(np.asarray(cfg.cut_points), latent).astype(np.int8)


# --- health and family ----------------------------------------------------------------------


def _loaded(rng: np.random.Generator, loadings: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """A standard normal correlated with the given standard normals through the loadings."""
    n = len(loadings[0][1])
    rest = 1.0 - sum(a * a for a, _ in loadings)
    return sum((a * z for a, z in loadings), np.sqrt(rest) * rng.standard_normal(n))


def sample_mental(rng: np.random.Generator, cfg: MentalHealth, factor: np.ndarray) -> Arrays:
    """Screens share one latent factor (a Gaussian copula); diagnosed PTSD leans on the PTSD screen.

    Diagnosis and screen are separate variables (the screen is 20-30 times as common), so the
    diagnosis is its own threshold on a latent correlated with the PTSD screen's latent.
    """
    depression = _loaded(rng, [(cfg.factor_loading, factor)])
    anxiety = _loaded(rng, [(cfg.factor_loading, factor)])
    ptsd = _loaded(rng, [(cfg.factor_loading, factor)])
    diagnosis = _loaded(rng, [(cfg.diagnosed_ptsd_loading, ptsd)])
    return {
        "depression_symptoms": depression > upper_threshold(cfg.depression_share),
        "anxiety_symptoms": anxiety > upper_threshold(cfg.anxiety_share),
        "ptsd_symptoms": ptsd > upper_threshold(cfg.ptsd_symptoms_share),
        "diagnosed_ptsd": diagnosis > upper_threshold(cfg.diagnosed_ptsd_share),
    }


def sample_physical(
    rng: np.random.Generator, cfg: PhysicalHealth, z_age: np.ndarray, factor: np.ndarray
) -> Arrays:
    """Chronic condition and disability rise with age; psychiatric disability with the factor."""
    chronic = _loaded(rng, [(cfg.chronic_age_loading, z_age)])
    chronic_flag = chronic > upper_threshold(cfg.chronic_share)
    latent = _loaded(
        rng, [(cfg.disability_age_loading, z_age), (cfg.disability_mental_loading, factor)]
    )
    disabled = latent > upper_threshold(cfg.disability_share)
    types = [c for c in categories("disability") if c != "none"]
    scores = np.log([cfg.disability_type_weights[c] for c in types]) + np.zeros((len(z_age), 1))
    scores[:, types.index("physical")] += cfg.disability_type_age_slope_physical * z_age
    scores[:, types.index("psychiatric")] += cfg.disability_type_mental_slope_psychiatric * factor
    type_codes = np.asarray([code("disability", c) for c in types])
    kind = type_codes[draw_rowwise(rng, softmax_rows(scores))]
    health = (
        -cfg.health_mental_loading * factor
        - cfg.health_age_loading * z_age
        + cfg.health_chronic_shift * chronic_flag
        + cfg.health_disability_shift * disabled
        + rng.standard_normal(len(z_age))
    )
    return {
        "chronic_condition": chronic_flag,
        "disability": np.where(disabled, kind, code("disability", "none")).astype(np.int8),
        "self_rated_health": 1 + np.searchsorted(np.asarray(cfg.health_cut_points), health),
    }


def _sex_param(mapping: dict[str, float], sex: np.ndarray) -> np.ndarray:
    """A per-sex parameter; unknown sex takes the value of `other`."""
    return by_category(mapping, "sex")[np.where(sex < 0, code("sex", "other"), sex)]


def sample_family(
    rng: np.random.Generator, cfg: Family, age: np.ndarray, sex: np.ndarray
) -> Arrays:
    """Children by age band peak at typical parental ages; single parents mostly women."""
    bell_6 = np.exp(-(((age - cfg.under_6_peak_age) / cfg.under_6_width_years) ** 2))
    bell_17 = np.exp(-(((age - cfg.age_6_17_peak_age) / cfg.age_6_17_width_years) ** 2))
    under_6 = rng.poisson(_sex_param(cfg.under_6_mean_by_sex, sex) * bell_6)
    age_6_17 = rng.poisson(_sex_param(cfg.age_6_17_mean_by_sex, sex) * bell_17)
    under_6 = np.minimum(under_6, FIELDS_BY_NAME["children_under_6"].maximum or 0)
    age_6_17 = np.minimum(age_6_17, FIELDS_BY_NAME["children_6_to_17"].maximum or 0)
    single = rng.random(len(age)) < _sex_param(cfg.single_parent_share_by_sex, sex)
    return {
        "children_under_6": under_6.astype(np.int64),
        "children_6_to_17": age_6_17.astype(np.int64),
        "single_parent": single & (under_6 + age_6_17 > 0),
    }


def sample_licence(
    rng: np.random.Generator,
    cfg: DrivingLicence,
    age: np.ndarray,
    sex: np.ndarray,
    years: np.ndarray,
) -> np.ndarray:
    """A licence valid in Sweden: more common among men, the schooled and the not-so-young."""
    logit = _sex_param(cfg.logit_by_sex, sex) + cfg.per_school_year * (years - 10)
    logit += cfg.per_year_of_age_under_25 * np.minimum(age - 25, 0)
    return rng.random(len(age)) < expit(logit)


# --- all together ----------------------------------------------------------------------------


def sample_traits(rng: np.random.Generator, cfg: SynthConfig, n: int) -> Arrays:
    """All intake traits plus the hidden ones (diagnosed PTSD), in causal order."""
    t: Arrays = {"intake_day": sample_intake_days(rng, cfg.calendar, n)}
    t["intake_year"] = year_of(t["intake_day"])
    t["municipality_type"] = draw_codes(
        rng, by_category(cfg.municipality_type.shares, "municipality_type"), n
    ).astype(np.int8)
    t["local_unemployment_rate"] = sample_unemployment(
        rng, cfg.labour_market, t["intake_year"], t["municipality_type"]
    )
    t["permit_type"] = draw_codes(
        rng, by_category(cfg.permit_type.shares, "permit_type"), n
    ).astype(np.int8)
    t["sex"] = sample_sex(rng, cfg.sex, t["permit_type"])
    z_age = rng.standard_normal(n)
    t["age"] = age_from_normal(z_age, cfg.age)
    t["region_of_origin"] = draw_codes(
        rng, by_category(cfg.region_of_origin.shares, "region_of_origin"), n
    ).astype(np.int8)
    years = sample_schooling(rng, cfg.schooling, t["region_of_origin"], t["sex"])
    t["years_of_schooling"] = years
    t["education_level"] = education_level(years, cfg.schooling)
    t["literacy"] = sample_literacy(rng, cfg.literacy, years)
    t["work_experience_years"], t["occupation_group"] = sample_work(
        rng, cfg.work, t["age"], t["sex"], years
    )
    t["swedish_level"] = sample_ordered(rng, cfg.swedish_level, t["permit_type"], years)
    t["english_level"] = sample_ordered(rng, cfg.english_level, t["permit_type"], years)
    factor = rng.standard_normal(n)
    t.update(sample_mental(rng, cfg.mental_health, factor))
    t.update(sample_physical(rng, cfg.physical_health, z_age, factor))
    t.update(sample_family(rng, cfg.family, t["age"], t["sex"]))
    t["driving_licence"] = sample_licence(rng, cfg.driving_licence, t["age"], t["sex"], years)
    return t
