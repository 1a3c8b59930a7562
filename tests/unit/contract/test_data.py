"""Reading, validating and canonicalising intake and outcome tables."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskscreen.contract import data
from riskscreen.contract.problems import MAX_LISTED_PROBLEMS, REDACTED, DataValidationError, Problem
from riskscreen.contract.read import TableReadError, read_table
from riskscreen.contract.schema import INTAKE_COLUMNS, INTAKE_FIELDS, OUTCOME_COLUMNS

PERSONAL_NUMBER = "19800101-1234"


def intake_row(i: int = 0, **changes: str) -> dict[str, str]:
    """A valid intake record as CSV text, from the declaration: lowest value, first category."""
    first = {"string": f"K{i}", "date": "2020-03-15", "boolean": "false"}
    row = {
        f.name: first.get(f.kind) or (f.categories[0] if f.categories else f"{f.minimum:g}")
        for f in INTAKE_FIELDS
    }
    return row | changes


def outcome_row(i: int = 0, **changes: str) -> dict[str, str]:
    row = {
        "case_ref": f"K{i}",
        "settled_date": "2021-01-10",
        "lost_to_followup_date": "",
        "received_intensified_support": "false",
        "extract_date": "2024-01-01",
    }
    return row | changes


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows, dtype="str").to_csv(path, index=False)
    return path


def reasons(problems: list[Problem]) -> set[tuple[int | None, str | None, str]]:
    return {(p.row, p.column, p.reason) for p in problems}


def found(problems: list[Problem], row: int | None, column: str | None, fragment: str) -> bool:
    return any(p.row == row and p.column == column and fragment in p.reason for p in problems)


# --- the canonical form ------------------------------------------------------------------------


def _valid_pair(tmp_path: Path) -> tuple[Path, Path]:
    rows = [
        intake_row(0, sex="", occupation_group="", depression_symptoms="TRUE"),
        intake_row(
            1,
            sex="female",
            occupation_group="3",
            anxiety_symptoms="1",
            intake_date="2021-02-28",
            age="64",
            local_unemployment_rate="7.5",
        ),
        intake_row(2, work_experience_years="0", occupation_group="5"),  # allowed, see data.py
    ]
    outcomes = [
        outcome_row(0),
        outcome_row(1, settled_date="", lost_to_followup_date="2022-05-01"),
        outcome_row(
            2,
            settled_date="2021-06-01",
            lost_to_followup_date="2021-06-01",
            received_intensified_support="TRUE",
        ),
    ]
    return write_csv(tmp_path / "intake.csv", rows), write_csv(tmp_path / "out.csv", outcomes)


def test_valid_csv_becomes_the_canonical_form(tmp_path: Path) -> None:
    intake, outcomes = data.load_tables(*_valid_pair(tmp_path))
    assert tuple(intake.columns) == INTAKE_COLUMNS
    assert tuple(outcomes.columns) == OUTCOME_COLUMNS
    for f in INTAKE_FIELDS:
        expected = {
            "string": pd.StringDtype(na_value=np.nan),
            "date": data.DATE_DTYPE,
            "boolean": np.dtype(bool),
            "integer": np.dtype("int64"),
            "number": np.dtype("float64"),
            "category": pd.CategoricalDtype(f.categories, ordered=f.ordered),
        }[f.kind]
        assert intake[f.name].dtype == expected, f.name
    assert intake["sex"].isna().tolist() == [True, False, False]
    assert intake["depression_symptoms"].tolist() == [True, False, False]
    assert intake["anxiety_symptoms"].tolist() == [False, True, False]
    assert intake["intake_date"].iloc[1] == pd.Timestamp("2021-02-28")
    assert outcomes["settled_date"].isna().tolist() == [False, True, False]
    assert outcomes["received_intensified_support"].dtype == bool
    assert outcomes["extract_date"].dtype == data.DATE_DTYPE


def test_parquet_round_trip_gives_the_same_frames(tmp_path: Path) -> None:
    intake, outcomes = data.load_tables(*_valid_pair(tmp_path))
    intake.to_parquet(tmp_path / "intake.parquet")
    outcomes.to_parquet(tmp_path / "outcomes.parquet")
    again = data.load_tables(tmp_path / "intake.parquet", tmp_path / "outcomes.parquet")
    pd.testing.assert_frame_equal(again[0], intake)
    pd.testing.assert_frame_equal(again[1], outcomes)


def test_canonical_conversion_is_idempotent_and_guards_categories(tmp_path: Path) -> None:
    intake, _ = data.load_tables(*_valid_pair(tmp_path))
    pd.testing.assert_frame_equal(data.to_canonical_intake(intake), intake)
    raw = pd.DataFrame([intake_row(0, sex="alien")])
    with pytest.raises(ValueError, match="sex"):
        data.to_canonical_intake(raw)


@pytest.mark.parametrize(
    "written", ["2020-03-15T13:45:00", "2020-03-15 00:30:00+02:00", "2020-03-15T23:30:00Z"]
)
def test_a_time_part_is_dropped_and_the_date_kept_as_written(written: str) -> None:
    raw = pd.DataFrame([intake_row(0, intake_date=written)])
    assert data.validate_intake_frame(raw, "t") == []
    assert data.to_canonical_intake(raw)["intake_date"].iloc[0] == pd.Timestamp("2020-03-15")
    zoned = pd.DataFrame({"d": pd.to_datetime([written])}).rename(columns={"d": "intake_date"})
    typed = raw.assign(intake_date=zoned["intake_date"])
    assert data.to_canonical_intake(typed)["intake_date"].iloc[0] == pd.Timestamp("2020-03-15")


# --- intake problems ---------------------------------------------------------------------------


def test_every_problem_is_reported_with_row_and_column(tmp_path: Path) -> None:
    rows = [
        intake_row(0, age="abc"),
        intake_row(1, years_of_schooling="3.5", depression_symptoms="yes"),
        intake_row(2, sex="unknown", age="70"),
        intake_row(3, case_ref="K0"),
        intake_row(4, case_ref=PERSONAL_NUMBER),
    ]
    for row in rows:
        del row["literacy"]
        row["full_name"] = "Anna Andersson"
    path = write_csv(tmp_path / "intake.csv", rows)
    problems = data.validate_files(path, None)
    expected = [
        (None, "literacy", "missing column"),
        (None, "full_name", "unknown column"),
        (1, "age", "is not a number"),
        (2, "years_of_schooling", "is not a whole number"),
        (2, "depression_symptoms", "is not a boolean"),
        (3, "sex", "is not one of the allowed"),
        (3, "age", "is above the maximum 64"),
        (1, "case_ref", "appears on more than one row"),
        (4, "case_ref", "appears on more than one row"),
        (5, "case_ref", "personal identity number"),
    ]
    for row, column, fragment in expected:
        assert found(problems, row, column, fragment), (row, column, fragment)
    assert len(problems) == len(expected)
    text = "\n".join(p.describe() for p in problems)
    assert "19800101" not in text and "1234" not in text and "Anna" not in text
    assert "intake.csv: data row 5, column case_ref: value <redacted> looks like a Swedish" in text


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("age", "17", "is below the minimum 18"),
        ("age", "1e3", "is above the maximum 64"),
        ("local_unemployment_rate", "inf", "is not a finite number"),
        ("local_unemployment_rate", "NaN", "is not a finite number"),
        ("work_experience_years", "ten", "is not a number"),
        ("chronic_condition", "ja", "is not a boolean"),
        ("chronic_condition", "2", "is not a boolean"),
        ("permit_type", "", "missing value, but the field is required"),
        ("driving_licence", "", "missing value"),
        ("education_level", "Primary", "is not one of the allowed"),
        ("intake_date", "2999-01-01", "lies in the future"),
        ("intake_date", "15/03/2020", "is not a date"),
        ("intake_date", "2020-3-15", "is not a date"),
        ("intake_date", "2020-03-15x", "is not a date"),
        ("case_ref", "has space", "is not a case reference"),
        ("case_ref", "x" * 65, "is not a case reference"),
        ("case_ref", "", "missing value"),
    ],
)
def test_one_bad_cell(column: str, value: str, fragment: str) -> None:
    problems = data.validate_intake_frame(pd.DataFrame([intake_row(0, **{column: value})]), "t")
    assert [(p.row, p.column) for p in problems] == [(1, column)]
    assert fragment in problems[0].reason


@pytest.mark.parametrize("value", ["true", "FALSE", "True", "1", "0", " false "])
def test_accepted_booleans(value: str) -> None:
    frame = pd.DataFrame([intake_row(0, single_parent=value)])
    assert data.validate_intake_frame(frame, "t") == []


def test_a_header_shaped_like_an_identity_number_is_not_echoed() -> None:
    frame = pd.DataFrame([intake_row(0) | {"198001011234": "x"}])
    problems = data.validate_intake_frame(frame, "t")
    assert [p.describe() for p in problems] == [
        "t: column <redacted>: unknown column: only declared fields may be supplied (data "
        "minimisation: no names, identity numbers or free text)"
    ]


@pytest.mark.parametrize(
    "ref", ["198001011234", "19800101-1234", "800101-1234", "800101+1234", "case8001011234"]
)
def test_identity_numbers_are_rejected_and_never_echoed(ref: str) -> None:
    frame = pd.DataFrame([intake_row(0, case_ref=ref), intake_row(1, case_ref=ref)])
    problems = data.validate_intake_frame(frame, "t")
    assert found(problems, 1, "case_ref", "personal identity number")
    assert all(p.value == REDACTED for p in problems)
    assert not any(ref in p.describe() or ref in repr(p) for p in problems)


def test_row_numbers_count_data_rows_whatever_the_index() -> None:
    frame = pd.DataFrame([intake_row(0), intake_row(1, age="99")], index=[10, 20])
    problems = data.validate_intake_frame(frame, "batch")
    assert [p.describe() for p in problems] == [
        "batch: data row 2, column age: value 99 is above the maximum 64"
    ]


def test_typed_frames_are_checked_too() -> None:
    frame = data.to_canonical_intake(pd.DataFrame([intake_row(0), intake_row(1)]))
    frame.loc[1, "local_unemployment_rate"] = np.inf
    frame["age"] = frame["age"].astype("float64")
    frame.loc[0, "age"] = 30.5
    problems = data.validate_intake_frame(frame, "t")
    assert reasons(problems) == {
        (1, "age", "is not a whole number"),
        (2, "local_unemployment_rate", "is not a finite number"),
    }


def test_unreadable_files_are_problems_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "intake.xlsx").write_bytes(b"PK")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    for name, fragment in [
        ("intake.xlsx", "unsupported file type"),
        ("broken.parquet", "cannot be read"),
        ("absent.csv", "cannot be read"),
    ]:
        problems = data.validate_files(tmp_path / name, None)
        assert len(problems) == 1 and fragment in problems[0].describe()
        assert problems[0].describe().startswith(f"{name}: ")
    with pytest.raises(TableReadError, match="unsupported"):
        read_table(tmp_path / "intake.xlsx")


def test_load_tables_raises_with_a_capped_list(tmp_path: Path) -> None:
    rows = [intake_row(i, age="99") for i in range(MAX_LISTED_PROBLEMS + 5)]
    intake = write_csv(tmp_path / "intake.csv", rows)
    outcomes = write_csv(tmp_path / "out.csv", [outcome_row(i) for i in range(len(rows))])
    with pytest.raises(DataValidationError) as err:
        data.load_tables(intake, outcomes)
    assert len(err.value.problems) == len(rows)
    assert str(err.value).endswith("... and 5 more")


def test_validation_is_vectorised() -> None:
    n = 200_000
    frame = pd.DataFrame([intake_row(0)] * n)
    frame["case_ref"] = [f"K{i}" for i in range(n)]
    start = time.perf_counter()
    assert data.validate_intake_frame(frame, "big") == []
    assert time.perf_counter() - start < 15  # about 1.5 s here; a per-row loop takes minutes


# --- outcome cross-checks ----------------------------------------------------------------------


def test_outcome_cross_checks(tmp_path: Path) -> None:
    intake = write_csv(tmp_path / "intake.csv", [intake_row(i) for i in range(7)])
    rows = [
        outcome_row(0),
        outcome_row(1, settled_date="2020-03-14"),  # before intake (2020-03-15)
        outcome_row(2, settled_date="2024-01-02"),  # after extraction
        outcome_row(3, lost_to_followup_date="2020-01-01", settled_date=""),  # before intake
        outcome_row(4, lost_to_followup_date="2020-12-31"),  # settled 2021-01-10, after loss
        outcome_row(5, extract_date="2024-02-01"),
        outcome_row(0),  # duplicate
        outcome_row(99),  # no intake record
        # K6 has no outcome row
    ]
    problems = data.validate_files(intake, write_csv(tmp_path / "out.csv", rows))
    expected = [
        ("out.csv", 2, "settled_date", "is before the intake date 2020-03-15"),
        ("out.csv", 3, "settled_date", "is after the extraction date 2024-01-01"),
        ("out.csv", 4, "lost_to_followup_date", "is before the intake date"),
        ("out.csv", 5, "settled_date", "is after the loss to follow-up on 2020-12-31"),
        ("out.csv", 6, "extract_date", "differs from 2024-01-01"),
        ("out.csv", 1, "case_ref", "appears on more than one row"),
        ("out.csv", 7, "case_ref", "appears on more than one row"),
        ("out.csv", 8, "case_ref", "has no intake record in intake.csv"),
        ("intake.csv", 7, "case_ref", "has no outcome record in out.csv"),
    ]
    got = {(p.file, p.row, p.column) for p in problems}
    assert got == {e[:3] for e in expected}
    for file, row, column, fragment in expected:
        assert any(
            (p.file, p.row, p.column) == (file, row, column) and fragment in p.reason
            for p in problems
        ), (row, column, fragment)


def test_outcome_columns_are_checked(tmp_path: Path) -> None:
    intake = write_csv(tmp_path / "intake.csv", [intake_row(0)])
    row = outcome_row(0, received_intensified_support="maybe", extract_date="")
    del row["lost_to_followup_date"]
    problems = data.validate_files(intake, write_csv(tmp_path / "out.csv", [row]))
    assert {(p.row, p.column) for p in problems} == {
        (None, "lost_to_followup_date"),
        (1, "received_intensified_support"),
        (1, "extract_date"),
    }


def test_problem_describe() -> None:
    p = Problem("intake.csv", 17, "age", "70", "is above the maximum 64")
    assert p.describe() == "intake.csv: data row 17, column age: value 70 is above the maximum 64"
    assert Problem("a.csv", None, "x", None, "unknown column").describe() == (
        "a.csv: column x: unknown column"
    )
    blank_edged = Problem("a.csv", 1, "y", " a", "odd")
    assert blank_edged.describe() == "a.csv: data row 1, column y: value ' a' odd"
