"""`riskscreen validate`: every problem with file, row and column; exit 1; nothing written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from riskscreen.cli import app
from riskscreen.contract.schema import INTAKE_FIELDS

runner = CliRunner()


def intake_row(i: int, **changes: str) -> dict[str, str]:
    """A valid intake record as CSV text, from the declaration: lowest value, first category."""
    first = {"string": f"K{i}", "date": "2020-03-15", "boolean": "false"}
    row = {
        f.name: first.get(f.kind) or (f.categories[0] if f.categories else f"{f.minimum:g}")
        for f in INTAKE_FIELDS
    }
    return row | changes


def outcome_row(i: int, **changes: str) -> dict[str, str]:
    return {
        "case_ref": f"K{i}",
        "settled_date": "2021-01-10",
        "lost_to_followup_date": "",
        "received_intensified_support": "false",
        "extract_date": "2024-01-01",
    } | changes


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows, dtype="str").to_csv(path, index=False)
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_bad_export_lists_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    rows = [
        intake_row(0, age="abc", sex="unknown"),
        intake_row(1, age="70"),
        intake_row(2, case_ref="K1"),
        intake_row(3, case_ref="198001011234"),
    ]
    for row in rows:
        del row["literacy"]
        row["notes"] = "Anna Andersson, talks a lot"
    intake = write_csv(tmp_path / "intake.csv", rows)
    before = snapshot(tmp_path)

    result = runner.invoke(app, ["validate", "--intake", str(intake)])

    assert result.exit_code == 1
    for line in [
        "intake.csv: column literacy: missing column",
        "intake.csv: column notes: unknown column",
        "intake.csv: data row 1, column age: value abc is not a number",
        "intake.csv: data row 1, column sex: value unknown is not one of the allowed",
        "intake.csv: data row 2, column age: value 70 is above the maximum 64",
        "intake.csv: data row 2, column case_ref: value K1 appears on more than one row",
        "intake.csv: data row 3, column case_ref: value K1 appears on more than one row",
        "intake.csv: data row 4, column case_ref: value <redacted> looks like a Swedish personal",
        "8 problem(s) found; nothing was written.",
    ]:
        assert line in result.stderr, line
    assert "198001011234" not in result.output and "Anna" not in result.output
    assert snapshot(tmp_path) == before


def test_outcome_problems_fail_the_check(tmp_path: Path) -> None:
    intake = write_csv(tmp_path / "intake.csv", [intake_row(0), intake_row(1)])
    outcomes = write_csv(
        tmp_path / "outcomes.csv", [outcome_row(0, settled_date="2019-01-01"), outcome_row(2)]
    )
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["validate", "--intake", str(intake), "--outcomes", str(outcomes)])
    assert result.exit_code == 1
    for line in [
        "outcomes.csv: data row 1, column settled_date: value 2019-01-01 is before",
        "outcomes.csv: data row 2, column case_ref: value K2 has no intake record",
        "intake.csv: data row 2, column case_ref: value K1 has no outcome record",
    ]:
        assert line in result.stderr, line
    assert snapshot(tmp_path) == before


def test_valid_csv_and_parquet_pass(tmp_path: Path) -> None:
    intake = write_csv(tmp_path / "intake.csv", [intake_row(0), intake_row(1, sex="")])
    outcomes = write_csv(tmp_path / "outcomes.csv", [outcome_row(0), outcome_row(1)])
    result = runner.invoke(app, ["validate", "--intake", str(intake), "--outcomes", str(outcomes)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout

    pd.read_csv(intake, dtype=str).to_parquet(tmp_path / "intake.parquet")
    result = runner.invoke(app, ["validate", "--intake", str(tmp_path / "intake.parquet")])
    assert result.exit_code == 0, result.output


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--intake", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1
    assert "missing.csv: cannot be read" in result.stderr
