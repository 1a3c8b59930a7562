"""A municipality's own export read through its mapping: the canonical tables, and every problem
named by file, row, column and mapping line without quoting a cell."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from export_samples import (
    CONTRACT_OUTCOMES,
    CONTRACT_ROWS,
    IDENTITY_NUMBERS,
    MAPPING,
    ROWS,
    SECRET,
    mapping_line,
    write_export,
)

from riskscreen.contract import data
from riskscreen.contract.export import check_export, read_export
from riskscreen.contract.mapping import load_mapping
from riskscreen.contract.problems import DataValidationError, Problem
from riskscreen.contract.pseudonym import pseudonymous_case_ref


def _expected(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    refs = [pseudonymous_case_ref(n, SECRET) for n in IDENTITY_NUMBERS]
    intake = pd.DataFrame(
        [{"case_ref": r} | row for r, row in zip(refs, CONTRACT_ROWS, strict=True)]
    )
    outcomes = pd.DataFrame(
        [{"case_ref": r} | row for r, row in zip(refs, CONTRACT_OUTCOMES, strict=True)]
    )
    not_recorded = ("driving_licence",)
    assert data.validate_intake_frame(intake, "expected", not_recorded=not_recorded) == []
    return data.to_canonical_intake(intake, not_recorded), data.to_canonical_outcomes(outcomes)


def test_an_export_in_its_own_words_becomes_the_canonical_tables(tmp_path: Path) -> None:
    intake, outcomes, mapping = write_export(tmp_path)
    export = read_export(intake, outcomes, load_mapping(mapping))
    expected_intake, expected_outcomes = _expected(tmp_path)
    pd.testing.assert_frame_equal(export.intake, expected_intake)
    assert export.outcomes is not None
    pd.testing.assert_frame_equal(export.outcomes, expected_outcomes)
    assert export.not_recorded == ("driving_licence",)
    assert "driving_licence" not in export.intake
    assert export.coverage.ok
    shown = export.intake.to_csv() + export.outcomes.to_csv() + str(export.coverage.to_dict())
    assert not any(number in shown for number in IDENTITY_NUMBERS)


def test_the_coverage_report_says_where_every_field_came_from(tmp_path: Path) -> None:
    rows = [list(r) for r in ROWS]
    rows[0][3] = "K"  # a sex word no value map covers, twice
    rows[1][3] = "K"
    intake, outcomes, mapping = write_export(tmp_path, rows)
    coverage = check_export(intake, outcomes, load_mapping(mapping))
    fields = {(t.section, f.field): f for t in coverage.tables for f in t.fields}
    sources = {key: f.source for key, f in fields.items()}
    assert sources[("intake", "case_ref")] == "pseudonymised"
    assert sources[("intake", "age")] == "mapped"
    assert sources[("intake", "driving_licence")] == "not recorded"
    assert sources[("intake", "municipality_type")] == "constant"
    assert sources[("intake", "local_unemployment_rate")] == "looked up"
    assert sources[("outcomes", "extract_date")] == "constant"
    assert fields[("intake", "sex")].unmapped == {"K": 2}
    assert fields[("intake", "sex")].unknown == 1
    assert (
        fields[("intake", "age")].mapping == f"mapping.yaml line {mapping_line(MAPPING, 'Ålder:')}"
    )
    assert coverage.tables[0].unused_columns == ["Namn"]
    assert coverage.tables[0].file == "kartlaggning.xlsx sheet Kartläggning"
    groups = coverage.groups()
    assert len(groups) == 1 and groups[0].rows == [1, 2] and groups[0].column == "Kön"
    text = coverage.render_text()
    assert "'K' × 2" in text and "Columns not read: Namn" in text
    json.dumps(coverage.to_dict())  # plain data


def _problems(tmp_path: Path, rows: list[list[object]], mapping: str = MAPPING) -> list[str]:
    intake, outcomes, path = write_export(tmp_path, rows, mapping)
    with pytest.raises(DataValidationError) as err:
        read_export(intake, outcomes, load_mapping(path))
    return [p.describe() for p in err.value.problems]


def test_no_value_from_a_persons_row_appears_in_any_message(tmp_path: Path) -> None:
    rows = [list(r) for r in ROWS]
    rows[1][13] = 7  # Hälsa: self-rated health is 1-5
    rows[2][18] = "Blind"  # Funktionsnedsättning: no value map entry, not a contract value
    rows[3][2] = 17  # Ålder below 18
    intake, outcomes, mapping = write_export(tmp_path, rows)
    coverage = check_export(intake, outcomes, load_mapping(mapping))
    messages = [p.describe() for p in coverage.problems]
    health = mapping_line(MAPPING, "Hälsa:")
    assert (
        "kartlaggning.xlsx sheet Kartläggning: data row 2, column Hälsa (self_rated_health; "
        f"mapping.yaml line {health}): value is above the maximum 5"
    ) in messages
    disability = mapping_line(MAPPING, "disability: {Ingen")
    assert (
        "kartlaggning.xlsx sheet Kartläggning: data row 3, column Funktionsnedsättning "
        f"(disability; mapping.yaml line {disability}): value is not one of the allowed: none, "
        "physical, sensory, cognitive, psychiatric (and no value map entry covers it)"
    ) in messages
    everything = "\n".join(messages) + coverage.render_text() + json.dumps(coverage.to_dict())
    for value in ("7", "17", "Blind", "Anna", *IDENTITY_NUMBERS, "19800101", "800202"):
        assert f" {value} " not in "\n".join(messages)
    for number in (*IDENTITY_NUMBERS, "198001011234", "8002022345", "Anna Andersson"):
        assert number not in everything
    assert "'Blind' × 1" in coverage.render_text()  # the export's vocabulary, with its count


def test_an_unknown_value_in_a_required_field_is_a_problem(tmp_path: Path) -> None:
    mapping = MAPPING.replace(
        "Anhöriginvandring: family_reunification}",
        "Anhöriginvandring: family_reunification, Okänd: null}",
    )
    rows = [list(r) for r in ROWS]
    rows[0][5] = "Okänd"  # Tillstånd: unknown, and the permit is never unknown for a person
    messages = _problems(tmp_path, rows, mapping)
    line = mapping_line(mapping, "permit_type: {Kvot")
    assert messages == [
        "kartlaggning.xlsx sheet Kartläggning: data row 1, column Tillstånd (permit_type; "
        f"mapping.yaml line {line}): value unknown, but the field requires a value",
    ]


def test_an_unknown_answer_where_the_contract_allows_one_is_kept_as_unknown(
    tmp_path: Path,
) -> None:
    rows = [list(r) for r in ROWS]
    rows[0][15] = "Vet ej"  # Ångest: the screen was not done; anxiety may be unknown
    intake, outcomes, path = write_export(tmp_path, rows, MAPPING)
    export = read_export(intake, outcomes, load_mapping(path))
    anxiety = export.intake["anxiety_symptoms"]
    assert str(anxiety.dtype) == "boolean"
    assert anxiety.isna().tolist() == [True] + [False] * (len(rows) - 1)
    expected_intake, _ = _expected(tmp_path)
    others = expected_intake.drop(columns="anxiety_symptoms")
    pd.testing.assert_frame_equal(export.intake.drop(columns="anxiety_symptoms"), others)
    assert [
        f.unknown for f in export.coverage.tables[0].fields if f.field == "anxiety_symptoms"
    ] == [1]
    empty = [list(r) for r in ROWS]
    empty[0][15] = ""  # an empty cell is still a missing value, not an unknown
    assert len(_problems(tmp_path, empty)) == 1


def test_a_column_the_export_lacks_names_the_mapping_line(tmp_path: Path) -> None:
    mapping = MAPPING.replace("Ålder: age", "Ålder i år: age")
    messages = _problems(tmp_path, [list(r) for r in ROWS], mapping)
    line = mapping_line(mapping, "Ålder i år")
    assert messages == [
        f"kartlaggning.xlsx sheet Kartläggning: column Ålder i år (age; mapping.yaml line {line}): "
        "the mapping names this column, but the export has no such column",
    ]
    unmapped = MAPPING.replace("    Ålder: age\n", "")
    assert _problems(tmp_path, [list(r) for r in ROWS], unmapped) == [
        "kartlaggning.xlsx sheet Kartläggning: column age: missing column required by the data "
        "contract; map a column onto it or give a constant, a lookup, or list it as not_recorded",
    ]


def test_rows_keep_their_numbers_in_the_file(tmp_path: Path) -> None:
    rows: list[list[object]] = [list(ROWS[0]), [], [], list(ROWS[1])]
    rows[3][1] = "2020-13-45"
    messages = _problems(tmp_path, rows)
    assert messages == [
        "kartlaggning.xlsx sheet Kartläggning: data row 4, column Datum (intake_date; "
        f"mapping.yaml line {mapping_line(MAPPING, 'Datum:')}): value is not a date "
        "(ISO 8601: YYYY-MM-DD)",
        f"utfall.csv: data row 3, column Pnr (case_ref; mapping.yaml line "
        f"{mapping_line(MAPPING, 'Pnr')}): value has no intake record in kartlaggning.xlsx "
        "sheet Kartläggning",
        f"utfall.csv: data row 4, column Pnr (case_ref; mapping.yaml line "
        f"{mapping_line(MAPPING, 'Pnr')}): value has no intake record in kartlaggning.xlsx "
        "sheet Kartläggning",
    ]


def test_a_month_the_lookup_table_lacks_is_a_problem(tmp_path: Path) -> None:
    rows = [list(ROWS[0])]
    rows[0][1] = "2021-07-01"
    intake, _, mapping = write_export(tmp_path, rows)
    coverage = check_export(intake, None, load_mapping(mapping))
    line = mapping_line(MAPPING, "local_unemployment_rate: {table")
    assert [p.describe() for p in coverage.problems] == [
        f"kartlaggning.xlsx sheet Kartläggning: data row 1, field local_unemployment_rate "
        f"(mapping.yaml line {line}): the lookup table unemployment.csv has no value for the "
        "intake month (it covers 2020-03 to 2020-04)"
    ]


def test_outcome_dates_are_compared_without_quoting_them(tmp_path: Path) -> None:
    mapping = MAPPING.replace("extract_date: 2024-01-31", "extract_date: 2020-12-31")
    messages = _problems(tmp_path, [list(r) for r in ROWS], mapping)
    assert any("value is after the extraction date" in m for m in messages)
    assert not any("2021" in m or "2020-12-31" in m for m in messages)


def test_a_bad_identity_number_and_a_plain_one_as_case_ref(tmp_path: Path) -> None:
    rows = [list(r) for r in ROWS]
    rows[0][0] = "1980-01-01"
    messages = _problems(tmp_path, rows)
    assert messages[0] == (
        "kartlaggning.xlsx sheet Kartläggning: data row 1, column Personnummer (case_ref; "
        f"mapping.yaml line {mapping_line(MAPPING, 'identity_number_column: Personnummer')}): "
        "value is not a personal identity number (10 or 12 digits)"
    )
    plain = MAPPING.replace("  identity_number_column: Personnummer\n", "").replace(
        "  columns:\n    Datum:", "  columns:\n    Personnummer: case_ref\n    Datum:", 1
    )
    messages = _problems(tmp_path, [list(r) for r in ROWS], plain)
    assert any(
        "column Personnummer (case_ref; mapping.yaml line" in m
        and m.endswith("name its column as identity_number_column to turn it into a pseudonym")
        for m in messages
    )
    assert not any(n in m for m in messages for n in IDENTITY_NUMBERS)


def test_a_csv_export_and_a_parquet_export(tmp_path: Path) -> None:
    intake, _, mapping = write_export(tmp_path)
    options = "  file: {sheet: Kartläggning, header_row: 3}\n"
    (tmp_path / "csv.yaml").write_text(mapping.read_text().replace(options, ""))
    frame = pd.read_excel(intake, sheet_name="Kartläggning", header=2, dtype=str, engine="calamine")
    frame.to_csv(tmp_path / "intake.csv", sep=";", index=False, encoding="cp1252")
    frame.to_parquet(tmp_path / "intake.parquet")
    expected, _ = _expected(tmp_path)
    for path in (tmp_path / "intake.csv", tmp_path / "intake.parquet"):
        export = read_export(path, None, load_mapping(tmp_path / "csv.yaml"))
        pd.testing.assert_frame_equal(export.intake, expected)
        assert export.outcomes is None


def test_without_a_value_map_contract_values_pass_and_present_columns_are_used(
    tmp_path: Path,
) -> None:
    contract = pd.DataFrame(CONTRACT_ROWS).assign(case_ref=["A", "B", "C", "D"])
    contract["driving_licence"] = "false"
    contract.to_csv(tmp_path / "intake.csv", index=False)
    (tmp_path / "m.yaml").write_text("mapping_version: 1\nintake:\n  columns:\n")
    export = read_export(tmp_path / "intake.csv", None, load_mapping(tmp_path / "m.yaml"))
    expected = data.to_canonical_intake(contract[[f.name for f in data.intake_fields()]])
    pd.testing.assert_frame_equal(export.intake, expected)
    assert {f.source for f in export.coverage.tables[0].fields} == {"present"}


def test_validation_may_leave_out_fields_not_recorded() -> None:
    row = {"case_ref": "K1"} | CONTRACT_ROWS[0]
    frame = pd.DataFrame([row])
    assert data.validate_intake_frame(frame, "t") == [
        Problem("t", None, "driving_licence", None, data.MISSING_COLUMN)
    ]
    assert data.validate_intake_frame(frame, "t", not_recorded=["driving_licence"]) == []
    with_it = frame.assign(driving_licence="true")
    problems = data.validate_intake_frame(with_it, "t", not_recorded=["driving_licence"])
    assert [(p.column, p.reason[:14]) for p in problems] == [("driving_licence", "unknown column")]
    with pytest.raises(ValueError, match="not intake fields"):
        data.intake_fields(["nonsense"])


def test_training_reads_the_export_through_the_configured_mapping(tmp_path: Path) -> None:
    from riskscreen.model.config import TrainConfig
    from riskscreen.model.training_data import load_training_data

    intake, outcomes, mapping = write_export(tmp_path)
    files = {"source": "files", "intake_path": intake, "outcomes_path": outcomes}
    cfg = TrainConfig.model_validate({"config_version": 2, "data": files | {"mapping": mapping}})
    training = load_training_data(cfg)
    expected_intake, expected_outcomes = _expected(tmp_path)
    pd.testing.assert_frame_equal(training.intake, expected_intake)
    pd.testing.assert_frame_equal(training.outcomes, expected_outcomes)
    assert (training.data_kind, training.oracle) == ("real", None)
    assert training.not_recorded == ("driving_licence",)
    assert training.coverage is not None and training.coverage["ok"] is True
    with pytest.raises(ValueError, match="a mapping reads files"):
        TrainConfig.model_validate({"config_version": 2, "data": {"mapping": mapping}})


def test_a_lookup_by_year_and_a_unit_multiplied(tmp_path: Path) -> None:
    mapping = MAPPING.replace("by: month", "by: year").replace(
        "work_experience_years: {{divide_by: 12}}", "work_experience_years: {{multiply_by: 0.5}}"
    )
    intake, _, path = write_export(tmp_path, [list(ROWS[0])], mapping)
    (tmp_path / "unemployment.csv").write_text("year,value\n2019,6.1\n2020,7.7\n")
    export = read_export(intake, None, load_mapping(path))
    assert export.intake["local_unemployment_rate"].tolist() == [7.7]
    assert export.intake["work_experience_years"].tolist() == [9.0]  # 18 months, halved


def test_words_the_contract_does_not_know_are_listed_without_a_value_map(tmp_path: Path) -> None:
    contract = pd.DataFrame(CONTRACT_ROWS).assign(case_ref=["A", "B", "C", "D"])
    contract["driving_licence"] = ["false", "Nej", "Nej", "true"]
    contract.to_csv(tmp_path / "intake.csv", index=False)
    (tmp_path / "m.yaml").write_text("mapping_version: 1\nintake: {}\n")
    coverage = check_export(tmp_path / "intake.csv", None, load_mapping(tmp_path / "m.yaml"))
    fields = {f.field: f for f in coverage.tables[0].fields}
    assert fields["driving_licence"].unmapped == {"Nej": 2}
    assert [p.describe() for p in coverage.problems] == [
        f"intake.csv: data row {row}, column driving_licence: value is not a boolean (true/false "
        "or 1/0)"
        for row in (2, 3)
    ]
