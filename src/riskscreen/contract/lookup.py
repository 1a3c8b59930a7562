"""Small tables of one value per month or year, for fields an export does not carry per person.

The local unemployment rate at intake is the usual case: the same for everyone who arrived in a
given month, published by Arbetsförmedlingen or SCB, so a municipality keeps it in a two-column
CSV (`month,value` with months as YYYY-MM, or `year,value`) instead of in every row. The table is
read with the mapping, before any export, and every value checked against the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from riskscreen.contract.cells import Field
from riskscreen.contract.mapping_checks import value_problem
from riskscreen.contract.read import TableReadError, read_text_table

_KEY_PATTERNS = {"month": r"^\d{4}-(0[1-9]|1[0-2])$", "year": r"^\d{4}$"}
_KEY_WORDS = {"month": "a month (YYYY-MM)", "year": "a year (YYYY)"}


class LookupTableError(ValueError):
    """The table cannot serve the lookup; `reasons` lists every mistake found in it."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


def read_lookup(path: Path, by: Literal["month", "year"], f: Field) -> pd.Series:
    """The table's values as text (a decimal comma read as a point), indexed by month or year.

    Raises:
        LookupTableError: unreadable, wrong columns, a malformed or repeated key, or a value the
            field does not allow.
    """
    try:
        table = read_text_table(path)
    except TableReadError as exc:
        raise LookupTableError([str(exc)]) from exc
    if sorted(table.columns) != sorted([by, "value"]):
        raise LookupTableError([f"{path.name}: needs exactly the columns {by} and value"])
    keys = table[by].str.strip()
    values = table["value"].str.strip().str.replace(",", ".", regex=False)
    reasons = [
        f"{path.name} data row {row}: {by} is not {_KEY_WORDS[by]}"
        for row in keys.index[~keys.str.match(_KEY_PATTERNS[by])]
    ]
    reasons += [
        f"{path.name} data row {row}: {by} {key} appears on more than one row"
        for row, key in keys[keys.duplicated()].items()
    ]
    reasons += [
        f"{path.name} data row {row}: value {problem}"
        for row, text in values.items()
        if (problem := value_problem(text, f)) is not None
    ]
    if reasons:
        raise LookupTableError(reasons)
    return pd.Series(values.to_numpy(), index=keys.to_numpy(), dtype=object)
