"""Step 1 of validation: each cell read as the kind its field declares.

Ours rather than pandera's coercion (see `data`): a value is either parsed or given a reason,
cell by cell, vectorised, so every malformed cell is reported with its row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskscreen.contract.schema import INTAKE_FIELDS, IntakeField, OutcomeField

Field = IntakeField | OutcomeField
KEY = next(f.name for f in INTAKE_FIELDS if f.role == "key")
_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}
_NAN_TEXT = ("nan", "+nan", "-nan")


def is_key(f: Field) -> bool:
    """The case reference rules apply wherever the intake key appears (it joins the tables)."""
    return f.name == KEY


def _present(raw: pd.Series) -> pd.Series:
    """Cells that hold a value: not null and, for text, not blank (an empty CSV cell is null)."""
    present = raw.notna()
    if raw.dtype == object or isinstance(raw.dtype, pd.StringDtype):
        present &= raw.astype("str").str.strip() != ""
    return present


def _text(raw: pd.Series, present: pd.Series, *, strip: bool = True) -> pd.Series:
    text = raw.where(present).astype("str")
    return text.str.strip() if strip else text


def _reasons(index: pd.Index, *rules: tuple[pd.Series, str]) -> pd.Series:
    """Per cell, the reason of the first rule whose mask is set; NaN where the cell is fine."""
    reasons = pd.Series(None, index=index, dtype=object)
    for mask, reason in rules:
        reasons = reasons.mask(mask & reasons.isna(), reason)
    return reasons


def _parse_numeric(raw: pd.Series, whole: bool) -> tuple[pd.Series, pd.Series]:
    present = _present(raw)
    no_text = pd.Series(False, index=raw.index)
    if pd.api.types.is_bool_dtype(raw.dtype):
        numbers, nan_text = pd.Series(np.nan, index=raw.index), no_text
    elif pd.api.types.is_numeric_dtype(raw.dtype):
        numbers, nan_text = raw.astype("float64"), no_text
    else:
        text = _text(raw, present)
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        nan_text = text.str.lower().isin(_NAN_TEXT)
    finite = np.isfinite(numbers)
    reasons = _reasons(
        raw.index,
        (present & numbers.isna() & ~nan_text, "is not a number"),
        (present & ~finite, "is not a finite number"),
        (present & finite & (numbers % 1 != 0) & whole, "is not a whole number"),
    )
    return numbers.where(reasons.isna()), reasons


def _parse_boolean(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    present = _present(raw)
    values = _text(raw, present).str.lower().map(_BOOLEAN_TEXT)
    reasons = _reasons(raw.index, (present & values.isna(), "is not a boolean (true/false or 1/0)"))
    return values, reasons


def _parse_date(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO dates, YYYY-MM-DD; a time part after "T" or a blank is dropped, time zone included.

    The date as written is the date meant: converting "2020-03-15T00:30+02:00" to UTC first
    would move the intake to the day before.
    """
    present = _present(raw)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        raw = raw.astype("str").where(present)  # wall-clock text, whatever the time zone
    text = _text(raw, present)
    dated = text.str.len().eq(10) | text.str.slice(10, 11).isin(["T", " "])
    dates = pd.to_datetime(text.str.slice(0, 10).where(dated), format="%Y-%m-%d", errors="coerce")
    reasons = _reasons(raw.index, (present & dates.isna(), "is not a date (ISO 8601: YYYY-MM-DD)"))
    return dates, reasons


def parse_cells(raw: pd.Series, f: Field) -> tuple[pd.Series, pd.Series]:
    """The cells as values of the field's kind (NaN where missing or malformed) and the reasons.

    Text is stripped of surrounding blanks, except in the case reference, which is opaque.
    """
    raw = raw.reset_index(drop=True)
    if f.kind in ("integer", "number"):
        return _parse_numeric(raw, whole=f.kind == "integer")
    if f.kind == "boolean":
        return _parse_boolean(raw)
    if f.kind == "date":
        return _parse_date(raw)
    text = _text(raw, _present(raw), strip=not is_key(f))
    return text, pd.Series(None, index=raw.index, dtype=object)
