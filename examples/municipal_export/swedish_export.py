"""A synthetic cohort written the way "Exempelkommun"'s case system exports it, in Swedish.

The export's own words are deliberately not riskscreen's: Swedish column names and values, the
intake date typed in two ways, decimal commas, "Vet ej" where an answer is unknown, two fields
the municipality does not record (driving licence and the PTSD screen), no unemployment rate (it
comes from a lookup table), an extra column nobody maps, and the personal identity number as the
key of both tables. The committed `mapping.yaml` is what a municipality would write to read it;
the words below are the case system's, the mapping is the translation.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

Cell = str | int | None

UNKNOWN = "Vet ej"
NOT_RECORDED = ("driving_licence", "ptsd_symptoms")
# The case system's column for each contract field, in the export's order.
INTAKE_HEADER: dict[str, str] = {
    "intake_date": "Kartläggningsdatum",
    "age": "Ålder",
    "sex": "Kön",
    "region_of_origin": "Ursprungsregion",
    "permit_type": "Uppehållstillstånd",
    "years_of_schooling": "Antal år i skola",
    "education_level": "Högsta utbildning",
    "literacy": "Läs- och skrivkunnighet",
    "work_experience_years": "Arbetslivserfarenhet (år)",
    "occupation_group": "Yrkesområde (SSYK)",
    "swedish_level": "Svenska",
    "english_level": "Engelska",
    "self_rated_health": "Självskattad hälsa (1-5)",
    "depression_symptoms": "Depression (screening)",
    "anxiety_symptoms": "Ångest (screening)",
    "chronic_condition": "Kronisk sjukdom",
    "disability": "Funktionsnedsättning",
    "children_under_6": "Barn 0-5 år",
    "children_6_to_17": "Barn 6-17 år",
    "single_parent": "Ensamstående förälder",
    "municipality_type": "Kommuntyp",
}
IDENTITY_COLUMN = "Personnummer"
CASE_MANAGER_COLUMN = "Handläggare"  # in the export, read by nobody: not a contract field
OUTCOME_HEADER = ("Pnr", "Egen försörjning från", "Utflyttad", "Intensifierat stöd", "Uttagsdatum")
YES_NO = {True: "Ja", False: "Nej"}
WORDS: dict[str, dict[str, str]] = {
    "sex": {"female": "Kvinna", "male": "Man", "other": "Annat"},
    "region_of_origin": {
        "middle_east": "Mellanöstern",
        "central_asia": "Centralasien",
        "east_africa": "Östafrika",
        "other_africa": "Övriga Afrika",
        "europe_non_eu": "Europa utanför EU",
        "other": "Övrigt",
    },
    "permit_type": {
        "quota_refugee": "Kvotflykting",
        "asylum": "Asyl",
        "family_reunification": "Anhöriginvandring",
    },
    "education_level": {
        "none": "Ingen",
        "primary": "Grundskola kortare än 9 år",
        "lower_secondary": "Grundskola 9 år",
        "upper_secondary": "Gymnasium",
        "post_secondary_short": "Eftergymnasial kortare än 3 år",
        "post_secondary_long": "Eftergymnasial 3 år eller längre",
    },
    "literacy": {"none": "Nej", "limited": "Begränsad", "literate": "Ja"},
    "swedish_level": {
        "none": "Ingen",
        "sfi_a": "Sfi A",
        "sfi_b": "Sfi B",
        "sfi_c": "Sfi C",
        "sfi_d": "Sfi D",
        "sfi_completed": "Sfi avslutad",
    },
    "english_level": {"none": "Ingen", "basic": "Grundläggande", "good": "God"},
    "disability": {
        "none": "Ingen",
        "physical": "Fysisk",
        "sensory": "Syn/hörsel",
        "cognitive": "Kognitiv",
        "psychiatric": "Psykisk",
    },
    "municipality_type": {
        "metropolitan": "Storstad",
        "large_city": "Större stad",
        "commuter": "Pendlingskommun",
        "rural": "Landsbygdskommun",
    },
}
# Answers that are sometimes not given ("Vet ej"), and how often; the contract allows an
# unknown in each (schema.MAY_BE_UNKNOWN).
UNKNOWN_SHARE = {"years_of_schooling": 0.05, "depression_symptoms": 0.05, "anxiety_symptoms": 0.05}
_CASE_MANAGERS = 12


def swedish_date(day: dt.date) -> str:
    """`15/3/2021`: day and month without leading zeros, as typed by hand."""
    return f"{day.day}/{day.month}/{day.year}"


def decimal_comma(value: float) -> str:
    """`1,5`: a number as a Swedish system writes it."""
    return f"{value:g}".replace(".", ",")


def _cells(intake: pd.DataFrame, name: str) -> list[Cell]:
    values = intake[name]
    if name in WORDS:
        return [None if pd.isna(v) else WORDS[name][str(v)] for v in values]
    if values.dtype == bool:
        return [YES_NO[bool(v)] for v in values]
    if name == "work_experience_years":
        return [decimal_comma(float(v)) for v in values]
    if name == "occupation_group":  # an SSYK major group; empty without work experience
        return [None if pd.isna(v) else str(v) for v in values]
    return [int(v) for v in values]


def intake_table(
    intake: pd.DataFrame, numbers: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """The intake export: one row per person, cells as the case system writes them.

    Intake dates are ISO (`2021-03-15`) in about half the rows and `15/3/2021` in the others;
    integers stay integers (a spreadsheet's number cells), everything else is text.
    """
    table: dict[str, list[Cell]] = {IDENTITY_COLUMN: list(numbers)}
    for name, column in INTAKE_HEADER.items():
        if name == "intake_date":
            iso = rng.random(len(intake)) < 0.5
            days = intake["intake_date"].dt.date
            table[column] = [
                d.isoformat() if i else swedish_date(d) for d, i in zip(days, iso, strict=True)
            ]
            continue
        cells = _cells(intake, name)
        if name in UNKNOWN_SHARE:
            unknown = rng.random(len(cells)) < UNKNOWN_SHARE[name]
            cells = [UNKNOWN if u else c for c, u in zip(cells, unknown, strict=True)]
        table[column] = cells
    officers = rng.integers(1, _CASE_MANAGERS + 1, len(intake))
    table[CASE_MANAGER_COLUMN] = [f"H{o:02d}" for o in officers]
    return pd.DataFrame(table)


def outcome_table(
    outcomes: pd.DataFrame, numbers: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """The follow-up export from another system: its own order, 12-digit numbers, `15/3/2021`.

    The same people as the intake (in `numbers`' order), shuffled, keyed by the identity number
    written without the hyphen: the mapping's pseudonym joins the two forms.
    """

    def dates(column: str) -> list[str]:
        return ["" if pd.isna(d) else swedish_date(d.date()) for d in outcomes[column]]

    table = pd.DataFrame(
        dict(
            zip(
                OUTCOME_HEADER,
                (
                    [n.replace("-", "") for n in numbers],
                    dates("settled_date"),
                    dates("lost_to_followup_date"),
                    [YES_NO[bool(v)] for v in outcomes["received_intensified_support"]],
                    dates("extract_date"),
                ),
                strict=True,
            )
        )
    )
    return table.iloc[rng.permutation(len(table))].reset_index(drop=True)


def unemployment_table(intake: pd.DataFrame) -> pd.DataFrame:
    """`arbetsloshet.csv`: the mean local unemployment rate of the cohort's intakes per month.

    The export never holds the rate; a municipality keeps one value per month (from
    Arbetsförmedlingen or SCB) and the mapping looks it up by intake month. Here the values are
    the synthetic cohort's own, so the lookup gives what the generator meant, averaged over the
    month. Decimal commas, as a Swedish spreadsheet writes them.
    """
    month = intake["intake_date"].dt.strftime("%Y-%m")
    mean = intake.groupby(month)["local_unemployment_rate"].mean().round(1)
    return pd.DataFrame({"month": mean.index, "value": [decimal_comma(v) for v in mean]})
