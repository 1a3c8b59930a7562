"""`riskscreen mapping draft` and `riskscreen validate --mapping`: the report, the exit codes,
and nothing from a person's row in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from riskscreen.cli import app
from riskscreen.contract.schema import INTAKE_FIELDS

runner = CliRunner()
MAPPING = """\
mapping_version: 1
intake:
  columns:
    Ålder: age
    Kön: sex
    Körkort: driving_licence
  values:
    sex: {Kvinna: female, Man: male}
    driving_licence: {Ja: true, Nej: false}
"""


def export_row(i: int, **changes: str) -> dict[str, str]:
    """A valid intake record from the declaration, three fields in the municipality's words."""
    first = {"string": f"K{i}", "date": "2020-03-15", "boolean": "false"}
    row = {
        f.name: first.get(f.kind) or (f.categories[0] if f.categories else f"{f.minimum:g}")
        for f in INTAKE_FIELDS
    }
    del row["age"], row["sex"], row["driving_licence"]
    return row | {"Ålder": "41", "Kön": "Kvinna", "Körkort": "Nej"} | changes


def write(tmp_path: Path, rows: list[dict[str, str]], mapping: str = MAPPING) -> tuple[Path, Path]:
    intake = tmp_path / "export.csv"
    pd.DataFrame(rows, dtype="str").to_csv(intake, sep=";", index=False, encoding="cp1252")
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping, encoding="utf-8")
    return intake, path


def test_validate_through_a_mapping_prints_the_coverage_report(tmp_path: Path) -> None:
    intake, mapping = write(tmp_path, [export_row(0), export_row(1, Kön="Man")])
    result = runner.invoke(app, ["validate", "--intake", str(intake), "--mapping", str(mapping)])
    assert result.exit_code == 0, result.output
    assert "Coverage of the export through mapping.yaml" in result.stdout
    assert "driving_licence             mapped" in result.stdout
    assert "OK: the export, read through the mapping, follows the data contract." in result.stdout


def test_problems_as_json_name_row_column_and_line_but_no_value(tmp_path: Path) -> None:
    rows = [export_row(0, Ålder="99", Kön="Okänt"), export_row(1, Körkort="Kanske")]
    intake, mapping = write(tmp_path, rows)
    result = runner.invoke(
        app, ["validate", "--intake", str(intake), "--mapping", str(mapping), "--format", "json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problem_count"] == 3
    groups = {(g["column"], tuple(g["rows"])): g for g in report["problem_groups"]}
    assert groups[("Ålder", (1,))]["reason"] == "value is above the maximum 64"
    assert groups[("Ålder", (1,))]["mapping"] == "mapping.yaml line 4"
    assert groups[("Körkort", (2,))]["mapping"] == "mapping.yaml line 9"
    fields = {f["field"]: f for f in report["tables"][0]["fields"]}
    assert fields["sex"]["unmapped"] == {"Okänt": 1}  # the export's vocabulary, with its count
    assert fields["driving_licence"]["unmapped"] == {"Kanske": 1}
    assert "99" not in result.output.replace('"problem_count": 3', "")
    assert "3 problem(s) found; nothing was written." in result.stderr


def test_a_mistake_in_the_mapping_names_its_line_and_reads_nothing(tmp_path: Path) -> None:
    intake, mapping = write(tmp_path, [export_row(0)], MAPPING.replace("Ålder: age", "Ålder: agee"))
    result = runner.invoke(app, ["validate", "--intake", str(intake), "--mapping", str(mapping)])
    assert result.exit_code == 1
    assert (
        "mapping.yaml line 4: 'agee' is not a field of the intake contract (did you mean 'age'?)"
        in result.stderr
    )
    assert "1 mistake(s) in the mapping; nothing was read." in result.stderr


def test_validate_without_a_mapping_as_json(tmp_path: Path) -> None:
    row = export_row(0) | {"age": "70", "sex": "female", "driving_licence": "false"}
    for name in ("Ålder", "Kön", "Körkort"):
        del row[name]
    pd.DataFrame([row]).to_csv(tmp_path / "intake.csv", index=False)
    result = runner.invoke(
        app, ["validate", "--intake", str(tmp_path / "intake.csv"), "--format", "json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "problems": [
            {"file": "intake.csv", "row": 1, "column": "age", "reason": "is above the maximum 64"}
        ],
    }


def test_mapping_draft_writes_a_file_it_never_overwrites(tmp_path: Path) -> None:
    intake, _ = write(tmp_path, [export_row(0), export_row(1, Kön="Man", Körkort="Ja")])
    out = tmp_path / "draft.yaml"
    result = runner.invoke(app, ["mapping", "draft", str(intake), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert '    "Ålder": age  # the Swedish label of age' in text
    assert '      "Kvinna": "female"  # a word for female' in text
    assert '      "Ja": true  # a yes/no word' in text
    assert "Not placed" not in result.stderr  # every other column has the field's own name
    again = runner.invoke(app, ["mapping", "draft", str(intake), "--out", str(out)])
    assert again.exit_code == 1 and "is not written over it" in again.stderr
    printed = runner.invoke(app, ["mapping", "draft", str(intake)])
    assert printed.stdout == text
    validated = runner.invoke(app, ["validate", "--intake", str(intake), "--mapping", str(out)])
    assert validated.exit_code == 0, validated.output


def test_mapping_draft_lists_what_it_could_not_place(tmp_path: Path) -> None:
    rows = [export_row(0) | {"Namn": "Anna Andersson", "Personnummer": "19800101-1234"}]
    intake, _ = write(tmp_path, rows)
    result = runner.invoke(app, ["mapping", "draft", str(intake)])
    assert result.exit_code == 0, result.output
    assert "Not placed (2), to decide:" in result.stderr
    assert "intake: column 'Namn': no contract field resembles it (not read)" in result.stderr
    assert "intake: column 'Personnummer': identity numbers (not read)" in result.stderr
    del rows[0]["case_ref"]
    intake, _ = write(tmp_path, rows)
    result = runner.invoke(app, ["mapping", "draft", str(intake)])
    assert 'identity_number_column: "Personnummer"' in result.stdout
    assert "# secret_file:" in result.stdout
    assert "Anna" not in result.output and "19800101" not in result.output
