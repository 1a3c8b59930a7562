"""The data card of a generated cohort: what was generated, from which parameters, how it came out.

The calibration quantities are tallied chunk by chunk (counts and monthly histograms add up),
so the card describes the whole cohort without holding it in memory. The card has no timestamp:
the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from riskscreen.contract.schema import INTAKE_COLUMNS, OUTCOME_COLUMNS
from riskscreen.synth.config import SynthConfig
from riskscreen.synth.traits import Arrays, code

MONTH_DAYS = 365.25 / 12
MAX_MONTHS = 1200
Masks = dict[str, tuple[np.ndarray, np.ndarray]]


def _masks(t: Arrays, o: Arrays) -> Masks:
    """Numerator and denominator masks of every tallied share."""
    male, female = t["sex"] == code("sex", "male"), t["sex"] == code("sex", "female")
    permit, years = t["permit_type"], t["years_of_schooling"]
    everyone = np.ones(len(permit), dtype=bool)
    months = o["time_to_settlement_days"] / MONTH_DAYS
    masks: Masks = {
        "men": (male, everyone),
        "men_asylum": (male, permit == code("permit_type", "asylum")),
        "women_family": (female, permit == code("permit_type", "family_reunification")),
        "age_under_30": (t["age"] < 30, everyone),
        "school_under_7": (years < 7, everyone),
        "school_under_7_women": (years < 7, female),
        "school_under_7_men": (years < 7, male),
        "school_13_plus": (years >= 13, everyone),
        "no_literacy_under_3": (t["literacy"] == code("literacy", "none"), years < 3),
        "depression": (t["depression_symptoms"], everyone),
        "anxiety": (t["anxiety_symptoms"], everyone),
        "ptsd_symptoms": (t["ptsd_symptoms"], everyone),
        "diagnosed_ptsd": (t["diagnosed_ptsd"], everyone),
        "disability": (t["disability"] != code("disability", "none"), everyone),
        "settled_27_women": (months <= 27, female),
        "settled_27_men": (months <= 27, male),
        "settled_18_women": (months <= 18, female),
        "settled_18_men": (months <= 18, male),
        "support": (o["received_intensified_support"], everyone),
    }
    for name in ("quota_refugee", "asylum", "family_reunification"):
        masks[f"permit_{name}"] = (permit == code("permit_type", name), everyone)
    return masks


def _hist_groups(t: Arrays) -> dict[str, np.ndarray]:
    upper = t["education_level"] >= code("education_level", "upper_secondary")
    return {
        "all": np.ones(len(upper), dtype=bool),
        "men": t["sex"] == code("sex", "male"),
        "women": t["sex"] == code("sex", "female"),
        "upper_secondary_plus": upper,
        "below_upper_secondary": ~upper,
    }


@dataclass
class Tally:
    """Running counts over chunks: shares as (numerator, denominator), times as histograms."""

    counts: dict[str, np.ndarray] = field(default_factory=dict)
    months: dict[str, np.ndarray] = field(default_factory=dict)
    oracle_sum: float = 0.0
    n: int = 0

    def add(self, t: Arrays, o: Arrays) -> None:
        """Add one chunk's traits and outcomes."""
        for name, (num, den) in _masks(t, o).items():
            pair = np.array([np.count_nonzero(num & den), np.count_nonzero(den)], dtype=np.int64)
            self.counts[name] = self.counts.get(name, 0) + pair
        bins = np.minimum(o["time_to_settlement_days"] // MONTH_DAYS, MAX_MONTHS).astype(np.int64)
        for name, mask in _hist_groups(t).items():
            hist = np.bincount(bins[mask], minlength=MAX_MONTHS + 1)
            self.months[name] = self.months.get(name, 0) + hist
        self.oracle_sum += float(o["p_long_settlement"].sum())
        self.n += len(bins)

    def share(self, name: str) -> float:
        num, den = self.counts[name]
        return float(num / den) if den else float("nan")

    def median_years(self, group: str) -> float:
        """Median time to work or studies, in years, at monthly resolution (upper bin edge)."""
        hist = self.months[group]
        if not hist.sum():
            return float("nan")
        month = int(np.searchsorted(np.cumsum(hist), 0.5 * hist.sum()))
        return (month + 1) / 12

    def summary(self, *, n: int, seed: int, horizon_months: int, out_dir: Path) -> str:
        """A few lines for the terminal."""
        return (
            f"Wrote {n:,} {'person' if n == 1 else 'people'} (seed {seed}, horizon "
            f"{horizon_months} months) to {out_dir}: "
            "intake.parquet, outcomes.parquet, oracle.parquet, DATA_CARD.md.\n"
            f"Men {_pct(self.share('men'))}; in work or studies by 27 months: women "
            f"{_pct(self.share('settled_27_women'))}, men {_pct(self.share('settled_27_men'))}; "
            f"intensified support {_pct(self.share('support'))}; mean oracle "
            f"{self.oracle_sum / max(self.n, 1):.3f}."
        )


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.1f}%"


def _rows(cfg: SynthConfig, tally: Tally) -> list[tuple[str, str, str]]:
    """(quantity, target with tag, realised) for the card's calibration table."""

    def share(name: str) -> str:
        return _pct(tally.share(name))

    def years(group: str) -> str:
        median = tally.median_years(group)
        return "n/a" if np.isnan(median) else f"{median:.2f} years"

    permits = cfg.permit_type.shares
    return [
        ("men, overall", "50-58% [V]", share("men")),
        ("men among asylum", "mostly men [V]", share("men_asylum")),
        ("women among family reunification", "mostly women [V]", share("women_family")),
        ("age under 30", "about 40% [V]", share("age_under_30")),
        ("schooling under 7 years", "about 20% [V]", share("school_under_7")),
        (
            "... among women / men",
            "more among women [V]",
            f"{share('school_under_7_women')} / {share('school_under_7_men')}",
        ),
        ("schooling 13 years or more", "about 37% [V]", share("school_13_plus")),
        (
            "no literacy among those with under 3 years of schooling",
            f"{_pct(cfg.literacy.none_share_under_3_years)} [A]",
            share("no_literacy_under_3"),
        ),
        ("depression symptoms", "40% [V]", share("depression")),
        ("anxiety symptoms", "32% [V]", share("anxiety")),
        ("PTSD symptoms", "30% [V]", share("ptsd_symptoms")),
        ("diagnosed PTSD (hidden)", "about 1.3% [V]", share("diagnosed_ptsd")),
        ("disability", f"{_pct(cfg.physical_health.disability_share)} [A]", share("disability")),
        *(
            (f"permit {name}", f"{_pct(permits[name])} [A]", share(f"permit_{name}"))
            for name in ("quota_refugee", "asylum", "family_reunification")
        ),
        (
            "in work or studies by 27 months, women",
            "about 41% [V, local]",
            share("settled_27_women"),
        ),
        ("in work or studies by 27 months, men", "about 52% [V, local]", share("settled_27_men")),
        ("in work or studies by 18 months, women", "at least 8% [S]", share("settled_18_women")),
        ("in work or studies by 18 months, men", "at least 22% [S]", share("settled_18_men")),
        ("median time to work or studies, men", "at most 4 years [V]", years("men")),
        ("median time to work or studies, women", "at most 10 years [V]", years("women")),
        ("median time to work or studies, all", "at most 8 years [V]", years("all")),
        ("median, upper secondary or more", "at most 6 years [V]", years("upper_secondary_plus")),
        (
            "median, below upper secondary",
            "slower than the above [V]",
            years("below_upper_secondary"),
        ),
        ("intensified support received", "10-15% [A]", share("support")),
    ]


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _parameters(cfg: SynthConfig) -> list[str]:
    """Every parameter, section by section, with the section's source."""
    lines: list[str] = []
    for name, section in cfg.model_dump(exclude={"config_version"}).items():
        source = " ".join(str(section.pop("source")).split())
        lines += [f"### {name}", "", f"Source: {source}", ""]
        for key, value in section.items():
            if isinstance(value, dict):
                lines += [f"- `{key}.{k}`: {_fmt(v)}" for k, v in value.items()]
            else:
                lines.append(f"- `{key}`: {_fmt(value)}")
        lines.append("")
    return lines


def render_data_card(
    cfg: SynthConfig, tally: Tally, *, n: int, seed: int, horizon_months: int
) -> str:
    """The DATA_CARD.md text of one generated cohort."""
    cal = cfg.calendar
    table = ["| quantity | target | realised |", "|---|---|---|"]
    table += [f"| {q} | {target} | {real} |" for q, target, real in _rows(cfg, tally)]
    lines = [
        "# Data card: synthetic intake cohort",
        "",
        "Generated by `riskscreen synth` (module `riskscreen.synth`). Every person is synthetic:",
        "no row describes a real person. Do not mix these files with real intake data.",
        "",
        "## Contents",
        "",
        f"- people: {n:,}; seed: {seed}; horizon: {horizon_months} months",
        f"- intake dates {cal.intake_start} to {cal.intake_end} (intake years "
        f"{cal.years[0]}-{cal.years[-1]}); extraction date {cal.extract_date}",
        f"- config_version {cfg.config_version}; chunks of {cfg.generation.chunk_size:,} people",
        f"- `intake.parquet`: {', '.join(INTAKE_COLUMNS)}",
        f"- `outcomes.parquet`: {', '.join(OUTCOME_COLUMNS)}",
        "- `oracle.parquet`: case_ref, p_long_settlement = the true probability, under usual care",
        "  (no intensified support), of no first month in work or studies within the horizon,",
        "  computed in closed form from the generator's own model (not estimated)",
        "",
        "## How the people are generated",
        "",
        "Permit type drives sex; schooling depends on region and sex; language, work",
        "experience and occupation on schooling, age and sex; depression, anxiety and PTSD",
        "screens share a latent factor, and a hidden diagnosed PTSD leans on the PTSD screen;",
        "chronic condition and disability rise with age. The time to the first month in work or",
        "studies is Weibull proportional hazards in these traits, the intake year's labour",
        "market and two interactions (short schooling x no Swedish, young children x single",
        "parent). Intensified support goes more often to people at higher true risk and",
        "multiplies their hazard; loss to follow-up is an independent exponential time. Dates",
        "after the extraction are not recorded. The full story is in the docstring of",
        "`riskscreen.synth`.",
        "",
        "## Realised calibration quantities",
        "",
        "Tags: [V] read in an official or primary source, [S] second-hand, [A] our assumption.",
        "Outcome rows use the true settlement times, uncensored, with the support actually",
        "received.",
        "",
        *table,
        "",
        "## Parameters and their sources",
        "",
        *_parameters(cfg),
    ]
    return "\n".join(lines).rstrip() + "\n"
