"""The outcome rules that need the intake: one outcome row per newcomer, and the date order.

Apart from the per-table checks in `data` because they read two tables at once. The rules'
reasons can quote the bound they compare with (the intake date, the extraction date), which a
person checking a contract-form file wants to see; an export read through a mapping asks for
reasons without them (`quote_values=False`), since every bound is a value from someone's row.
"""

from __future__ import annotations

import pandas as pd

from riskscreen.contract.cells import KEY
from riskscreen.contract.problems import Problem, rows_of, show_value
from riskscreen.contract.schema import OUTCOME_FIELDS

# The fields that the cross-table rules and the label definition refer to by meaning.
INTAKE_DATE = "intake_date"
SETTLED_DATE = "settled_date"
LOST_DATE = "lost_to_followup_date"
SUPPORT = "received_intensified_support"
EXTRACT_DATE = "extract_date"


def _is_in(values: pd.Series, other: pd.Series) -> pd.Series:
    # As object: in pandas 3.1 `isin` on Arrow-backed strings is ~8x slower for large sets.
    return values.astype(object).isin(other.astype(object))


def cross_problems(
    out: pd.DataFrame,
    intake: pd.DataFrame,
    out_source: str,
    intake_source: str,
    *,
    quote_values: bool = True,
) -> list[Problem]:
    """Outcome rules that need the intake: one outcome row per intake row, and date order.

    Args:
        out, intake: the parsed tables (`data.Checked.typed`).
        quote_values: whether a reason may name the value it compares with.
    """
    if not {KEY, EXTRACT_DATE} <= set(out) or not {KEY, INTAKE_DATE} <= set(intake):
        return []  # the missing column is reported already; these checks cannot run without it
    unknown = out[KEY].notna() & ~_is_in(out[KEY], intake[KEY])
    unmatched = intake[KEY].notna() & ~_is_in(intake[KEY], out[KEY])
    intake_dates = intake.drop_duplicates(KEY).set_index(KEY)[INTAKE_DATE]
    no_intake = f"has no intake record in {intake_source}"
    no_outcome = f"has no outcome record in {out_source} (one outcome row per newcomer)"
    return (
        [Problem(out_source, i + 1, KEY, out[KEY].iloc[i], no_intake) for i in rows_of(unknown)]
        + [
            Problem(intake_source, i + 1, KEY, intake[KEY].iloc[i], no_outcome)
            for i in rows_of(unmatched)
        ]
        + _extract_problems(out[EXTRACT_DATE], out_source, quote_values)
        + _date_order_problems(out, out[KEY].map(intake_dates), out_source, quote_values)
    )


def _extract_problems(extract: pd.Series, source: str, quote_values: bool) -> list[Problem]:
    if extract.nunique() <= 1:
        return []
    common = extract.mode().iloc[0]
    shown = f"{show_value(common)}, " if quote_values else ""
    reason = f"differs from {shown}the extraction date of most rows (one per table)"
    return [
        Problem(source, i + 1, EXTRACT_DATE, extract.iloc[i], reason)
        for i in rows_of(extract.notna() & (extract != common))
    ]


def _date_order_problems(
    out: pd.DataFrame, intake_date: pd.Series, source: str, quote_values: bool
) -> list[Problem]:
    """Settlement and loss lie between intake and extraction; nothing is seen after a loss."""
    events = [
        f.name
        for f in OUTCOME_FIELDS
        if f.kind == "date" and f.name in out and f.name != EXTRACT_DATE
    ]
    extract = out[EXTRACT_DATE]
    # (column, breach, bound, reason with a place for the bound, the bound's wording there)
    rules = [
        (c, out[c] < intake_date, intake_date, "is before the intake date{}", " {}") for c in events
    ]
    rules += [
        (c, out[c] > extract, extract, "is after the extraction date{}", " {}") for c in events
    ]
    if {SETTLED_DATE, LOST_DATE} <= set(events):
        lost = out[LOST_DATE]
        reason = "is after the loss to follow-up{}; observation ends there"
        rules.append((SETTLED_DATE, out[SETTLED_DATE] > lost, lost, reason, " on {}"))
    return [
        Problem(
            source,
            i + 1,
            column,
            out[column].iloc[i],
            reason.format(quote.format(show_value(bound.iloc[i])) if quote_values else ""),
        )
        for column, mask, bound, reason, quote in rules
        for i in rows_of(mask)
    ]
