"""Reading and validating a municipality's intake and outcome tables against the data contract.

Everything is derived from the one declaration in `riskscreen.contract.schema`. Validation runs
in two vectorised steps and collects every problem rather than stopping at the first:

1. Parsing (`cells`): each cell is read as its declared kind. CSV cells arrive as text and Parquet
   columns arrive typed, so this step is ours. Pandera's own coercion is not used here because
   under pandas 3.1 and pandera 0.35 it turns any non-empty text, even "false", into True in a
   boolean column, and when coercion fails for some cells it runs the range checks on the
   unconverted text and reports one whole-column TypeError instead of the offending rows.
2. Value checks: a pandera `DataFrameSchema` built from the declaration (ranges, allowed
   categories, required values, case reference rules, uniqueness, missing and unknown columns),
   validated lazily on the parsed frame. Pandera works cleanly with pandas 3.1 for this part.

Cross-table checks of the outcomes against the intake are plain pandas (`cross`).

A field that a municipality does not record at all (`not_recorded`, declared in its mapping) is
left out of the declaration the intake is checked against and of the canonical form: its column
must then be absent, and nothing downstream may read a value for it.

Row numbers in messages: "data row N" is the N-th row after the header, counted from 1, so it
is line N + 1 of a CSV file.

Deliberately not an error: an `occupation_group` with zero years of work experience. The
occupation can come from unpaid or informal work, and a problem here would block a whole export
(every problem fails `riskscreen validate`) for a value that is plausible.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from riskscreen.contract.cells import Field, is_key, parse_cells
from riskscreen.contract.cross import cross_problems
from riskscreen.contract.identity import (
    CASE_REF_PATTERN,
    REFERENCE_REFUSAL,
    looks_like_personal_number,
)
from riskscreen.contract.problems import DataValidationError, Problem, rows_of
from riskscreen.contract.read import TableReadError, read_table
from riskscreen.contract.schema import INTAKE_FIELDS, OUTCOME_FIELDS, IntakeField

# pandas 3 parses ISO dates to microseconds; that also holds sentinel dates such as 9999-12-31.
DATE_DTYPE = np.dtype("datetime64[us]")


# --- step 2: value checks from the declaration -------------------------------------------------


def _not_personal_number(values: pd.Series) -> pd.Series:
    return ~values.map(looks_like_personal_number).astype(bool)


def _checks(f: Field, today: pd.Timestamp) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if isinstance(f, IntakeField) and f.minimum is not None:
        checks.append(pa.Check.ge(f.minimum, error=f"is below the minimum {f.minimum:g}"))
    if isinstance(f, IntakeField) and f.maximum is not None:
        checks.append(pa.Check.le(f.maximum, error=f"is above the maximum {f.maximum:g}"))
    if isinstance(f, IntakeField) and f.kind == "category":
        allowed = ", ".join(f.categories)
        checks.append(pa.Check.isin(f.categories, error=f"is not one of the allowed: {allowed}"))
    if f.kind == "date":
        checks.append(pa.Check.le(today, error="lies in the future"))
    if is_key(f):
        checks.append(
            pa.Check.str_matches(
                CASE_REF_PATTERN,
                error="is not a case reference (1-64 characters of A-Z a-z 0-9 _ -)",
            )
        )
        checks.append(pa.Check(_not_personal_number, error=REFERENCE_REFUSAL))
    return checks


def _frame_schema(fields: Iterable[Field]) -> pa.DataFrameSchema:
    today = pd.Timestamp.today().normalize()
    columns = {
        f.name: pa.Column(
            None,
            _checks(f, today),
            nullable=f.nullable,
            unique=is_key(f),
            report_duplicates="all",
        )
        for f in fields
    }
    return pa.DataFrameSchema(columns, strict=True)


MISSING_COLUMN = "missing column required by the data contract"
MISSING_VALUE = "missing value, but the field is required"
_SCHEMA_REASONS = {
    "column_in_schema": "unknown column: only declared fields may be supplied (data "
    "minimisation: no names, identity numbers or free text)",
    "column_in_dataframe": MISSING_COLUMN,
    "not_nullable": MISSING_VALUE,
    "field_uniqueness": "appears on more than one row; case references must be unique",
}


def _schema_problems(
    typed: pd.DataFrame, raw: pd.DataFrame, fields: Sequence[Field], source: str
) -> list[Problem]:
    try:
        _frame_schema(fields).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.to_dict("records")
        return [_case_problem(case, raw, source) for case in cases]
    return []


def _case_problem(case: dict[str, object], raw: pd.DataFrame, source: str) -> Problem:
    """A pandera failure case as a Problem, quoting the cell as it was written in the file."""
    check = str(case["check"])
    if check in ("column_in_schema", "column_in_dataframe"):
        return Problem(source, None, str(case["failure_case"]), None, _SCHEMA_REASONS[check])
    column, index = str(case["column"]), case["index"]
    if index is None or pd.isna(index):  # the check could not run on the column at all
        return Problem(source, None, column, None, f"could not be checked: {check}")
    row = int(str(index))
    value = None if check == "not_nullable" else raw[column].iloc[row]
    return Problem(source, row + 1, column, value, _SCHEMA_REASONS.get(check, check))


# --- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A table with each declared cell parsed as its kind, and every problem found in it."""

    typed: pd.DataFrame
    problems: list[Problem]


def intake_fields(not_recorded: Collection[str] = ()) -> tuple[IntakeField, ...]:
    """The intake declaration without the fields a municipality does not record."""
    unknown = set(not_recorded) - {f.name for f in INTAKE_FIELDS}
    if unknown:
        raise ValueError(f"not recorded, but not intake fields: {sorted(unknown)}")
    return tuple(f for f in INTAKE_FIELDS if f.name not in not_recorded)


def _check_table(raw: pd.DataFrame, fields: Sequence[Field], source: str) -> Checked:
    """Parse the declared columns that are present, then run the declared value checks."""
    raw = raw.reset_index(drop=True)
    typed = raw.copy()
    type_problems: list[Problem] = []
    for f in fields:
        if f.name not in raw.columns:
            continue
        typed[f.name], reasons = parse_cells(raw[f.name], f)
        type_problems += [
            Problem(source, i + 1, f.name, raw[f.name].iloc[i], str(reasons.iloc[i]))
            for i in rows_of(reasons.notna())
        ]
    malformed = {(p.row, p.column) for p in type_problems}
    value_problems = [
        p
        for p in _schema_problems(typed, raw, fields, source)
        if not (p.reason == _SCHEMA_REASONS["not_nullable"] and (p.row, p.column) in malformed)
    ]
    return Checked(typed, _sorted(type_problems + value_problems, fields))


def _sorted(problems: list[Problem], fields: Sequence[Field]) -> list[Problem]:
    """Whole-column problems first, then by row and by the declared column order."""
    order = {f.name: i for i, f in enumerate(fields)}
    return sorted(problems, key=lambda p: (p.row or 0, order.get(p.column or "", -1)))


def check_intake(raw: pd.DataFrame, source: str, *, not_recorded: Collection[str] = ()) -> Checked:
    """The intake parsed and checked against the declaration (less the fields not recorded)."""
    return _check_table(raw, intake_fields(not_recorded), source)


def check_outcomes(
    raw: pd.DataFrame,
    source: str,
    intake: Checked,
    intake_source: str,
    *,
    quote_values: bool = True,
) -> Checked:
    """The outcomes parsed and checked, alone and against the checked intake.

    Args:
        quote_values: whether a cross-table reason may name the date it compares with.
    """
    checked = _check_table(raw, OUTCOME_FIELDS, source)
    cross = cross_problems(
        checked.typed, intake.typed, source, intake_source, quote_values=quote_values
    )
    return Checked(checked.typed, checked.problems + cross)


def validate_intake_frame(
    df: pd.DataFrame, source: str, *, not_recorded: Collection[str] = ()
) -> list[Problem]:
    """Every breach of the intake contract in `df` (read as is, e.g. from CSV or a batch).

    Args:
        df: the intake table as read, one row per newcomer.
        source: the name used for the table in messages, usually the file name.
        not_recorded: fields the municipality does not record; their columns must be absent.
    """
    return check_intake(df, source, not_recorded=not_recorded).problems


# --- canonical form ----------------------------------------------------------------------------


def _canonical_column(values: pd.Series, f: Field) -> pd.Series:
    # Nulls get this far only where the field may be unknown for one person (schema
    # `may_be_unknown`, through a mapping's explicit unknown): pandas' nullable dtypes keep them.
    unknown = bool(values.isna().any())
    if f.kind == "integer":
        return values.astype("Int64" if unknown else "int64")
    if f.kind == "number":
        return values.astype("float64")
    if f.kind == "boolean":
        if unknown:
            return values.astype("boolean")
        return pd.Series(values.astype("boolean").to_numpy(dtype=bool), index=values.index)
    if f.kind == "date":
        return values.astype(DATE_DTYPE)
    if isinstance(f, IntakeField) and f.kind == "category":
        if (values.notna() & ~values.isin(f.categories)).any():
            raise ValueError(f"{f.name}: unknown categories; validate the table first")
        return values.astype(pd.CategoricalDtype(f.categories, ordered=f.ordered))
    return values.astype("str")


def _to_canonical(df: pd.DataFrame, fields: Sequence[Field]) -> pd.DataFrame:
    """The declared columns only, in declared order, with their canonical dtypes.

    A malformed or missing required value raises (ValueError) instead of becoming a default.
    """
    df = df.reset_index(drop=True)
    return pd.DataFrame(
        {f.name: _canonical_column(parse_cells(df[f.name], f)[0], f) for f in fields}
    )


def to_canonical_intake(df: pd.DataFrame, not_recorded: Collection[str] = ()) -> pd.DataFrame:
    """The validated intake in the in-memory form that labelling and training rely on.

    The fields in `not_recorded` have no column in it.
    """
    return _to_canonical(df, intake_fields(not_recorded))


def to_canonical_outcomes(df: pd.DataFrame) -> pd.DataFrame:
    """The validated outcomes in the in-memory form that labelling relies on."""
    return _to_canonical(df, OUTCOME_FIELDS)


# --- files -------------------------------------------------------------------------------------


def _read_or_problem(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    try:
        return read_table(path), []
    except TableReadError as exc:
        return None, [Problem(path.name, None, None, None, str(exc).removeprefix(f"{path.name}: "))]


def _check_intake_file(path: Path) -> Checked:
    raw, problems = _read_or_problem(path)
    return Checked(pd.DataFrame(), problems) if raw is None else check_intake(raw, path.name)


def _check_outcome_file(path: Path, intake: Checked, intake_source: str) -> Checked:
    raw, problems = _read_or_problem(path)
    if raw is None:
        return Checked(pd.DataFrame(), problems)
    return check_outcomes(raw, path.name, intake, intake_source)


def validate_files(intake: Path, outcomes: Path | None) -> list[Problem]:
    """Every breach of the contract in the intake table and, if given, the outcome table.

    Reads only; never writes anything, so it is safe to run on an export as delivered.
    """
    checked_intake = _check_intake_file(intake)
    if outcomes is None:
        return checked_intake.problems
    return (
        checked_intake.problems
        + _check_outcome_file(outcomes, checked_intake, intake.name).problems
    )


def load_tables(intake: Path, outcomes: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables in canonical form, or DataValidationError listing every breach."""
    checked_intake = _check_intake_file(intake)
    checked_out = _check_outcome_file(outcomes, checked_intake, intake.name)
    problems = checked_intake.problems + checked_out.problems
    if problems:
        raise DataValidationError(problems)
    return to_canonical_intake(checked_intake.typed), to_canonical_outcomes(checked_out.typed)
