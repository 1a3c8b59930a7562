"""A drafted mapping: sure matches as entries, close ones as commented suggestions, the rest
listed; no value from a person's row written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from export_samples import CONTRACT_ROWS, IDENTITY_NUMBERS, write_export

from riskscreen.contract.draft import ExportTable, draft_mapping
from riskscreen.contract.export import check_export, read_export
from riskscreen.contract.mapping import SECRET_FILE_ENV, load_mapping
from riskscreen.contract.read import read_text_table


def _draft(tmp_path: Path) -> tuple[str, list[str], Path, Path]:
    intake, outcomes, _ = write_export(tmp_path)
    proposal = draft_mapping(
        ExportTable(read_text_table(intake, sheet="Kartläggning", header_row=3), intake.name,
                    "Kartläggning", 3),
        ExportTable(read_text_table(outcomes), outcomes.name),
    )  # fmt: skip
    return proposal.text, proposal.unplaced, intake, outcomes


def test_sure_matches_are_entries_and_close_ones_suggestions(tmp_path: Path) -> None:
    text, unplaced, _, _ = _draft(tmp_path)
    lines = text.splitlines()
    for sure in [
        '  file: {sheet: "Kartläggning", header_row: 3}',
        '  identity_number_column: "Personnummer"  # identity numbers',
        '    "Ålder": age  # the Swedish label of age',
        '    "Kön": sex  # the Swedish label of sex',
        '    "Engelska": english_level  # the Swedish label of english_level',
        '    "Funktionsnedsättning": disability  # the Swedish label of disability',
        '      "Kvinna": "female"  # a word for female',
        '      "Östafrika": "east_africa"  # the label of east_africa',
        '      "Psykisk": "psychiatric"  # the label of psychiatric',
        '      "Ja": true  # a yes/no word',
        '  identity_number_column: "Pnr"  # identity numbers',
    ]:
        assert any(line.startswith(sure) for line in lines), sure
    for suggestion in [
        '    # "Ensamstående": single_parent  # suggestion: closest to',
        '    # "Svenska": swedish_level  # suggestion',
        '      # "Uppgift saknas": null  # suggestion: reads as unknown; review',
        "    # \"Datum\": intake_date  # suggestion: closest to 'datum för kartläggning'",
        '    # intake_date: ["%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y"]  # suggestion: day/month and',
    ]:
        assert any(line.startswith(suggestion) for line in lines), suggestion
    assert "intake: column 'Namn': no contract field resembles it (not read)" in unplaced
    assert (
        "intake: field driving_licence: no column found (map one, give a constant or a lookup, "
        "or list it in not_recorded)" in unplaced
    )
    assert "intake: field single_parent: only suggested (column 'Ensamstående'); review" in unplaced
    assert all(f"#   {item}" in text for item in unplaced)


def test_no_value_from_a_persons_row_is_written(tmp_path: Path) -> None:
    text, unplaced, _, _ = _draft(tmp_path)
    everything = text + "\n".join(unplaced)
    for value in (*IDENTITY_NUMBERS, "198002022345", "Andersson", "24,5", "1/4/2020"):
        assert value not in everything, value
    assert "2020" not in everything


def test_the_draft_loads_and_leaves_what_is_uncertain_missing(tmp_path: Path) -> None:
    text, _, intake, outcomes = _draft(tmp_path)
    path = tmp_path / "draft.yaml"
    path.write_text(text, encoding="utf-8")
    secret = tmp_path.parent / f"{tmp_path.name}-secret.key"
    mapping = load_mapping(path, environ={SECRET_FILE_ENV: str(secret)})
    coverage = check_export(intake, outcomes, mapping)
    sources = {f.field: f.source for f in coverage.tables[0].fields}
    assert sources["age"] == "mapped" and sources["case_ref"] == "pseudonymised"
    assert sources["single_parent"] == "missing"  # only suggested: a person decides
    assert not coverage.ok


def test_a_contract_form_export_drafts_a_mapping_that_changes_nothing(tmp_path: Path) -> None:
    contract = pd.DataFrame(CONTRACT_ROWS).assign(case_ref=["A", "B", "C", "D"])
    contract["driving_licence"] = "false"
    contract = contract.rename(columns={"age": "AGE", "self_rated_health": "Self_Rated_Health"})
    contract.to_csv(tmp_path / "intake.csv", index=False)
    proposal = draft_mapping(ExportTable(read_text_table(tmp_path / "intake.csv"), "intake.csv"))
    assert '    "AGE": age  # the field\'s name' in proposal.text
    assert '    "Self_Rated_Health": self_rated_health' in proposal.text
    assert proposal.unplaced == []
    (tmp_path / "m.yaml").write_text(proposal.text)
    export = read_export(tmp_path / "intake.csv", None, load_mapping(tmp_path / "m.yaml"))
    assert len(export.intake) == 4 and export.coverage.ok


def test_day_and_month_are_decided_only_by_a_day_above_twelve(tmp_path: Path) -> None:
    def formats(dates: list[str]) -> str:
        frame = pd.DataFrame({"Datum för kartläggning": dates})
        text = draft_mapping(ExportTable(frame, "x.csv")).text
        return next(line for line in text.splitlines() if "intake_date: [" in line)

    assert formats(["1/10/2026", "2/11/2026"]).startswith(
        '    # intake_date: ["%d/%m/%Y", "%m/%d/%Y"]  # suggestion: day/month and month/day'
    )
    assert formats(["1/10/2026", "23/10/2026"]).startswith('    intake_date: ["%d/%m/%Y"]')
    assert formats(["10/23/2026"]).startswith('    intake_date: ["%m/%d/%Y"]')


def test_a_decimal_comma_is_noticed() -> None:
    frame = pd.DataFrame({"År av arbetslivserfarenhet": ["1,5", "2"], "Ålder": ["41", "33"]})
    assert "  decimal_comma: true" in draft_mapping(ExportTable(frame, "x.csv")).text
    assert "  decimal_comma: false" in draft_mapping(ExportTable(frame.iloc[1:], "x.csv")).text


def test_a_column_of_dates_with_their_time_of_day_is_not_taken_for_identity_numbers() -> None:
    # Real date cells of an .xlsx read as text carry their midnight: ten digits to the guard.
    frame = pd.DataFrame(
        {
            "Inskriven": ["2024-01-15 00:00:00", "2024-02-01 00:00:00"],
            "Id": ["19850101-1234", "85-02-02-2345"],  # the second shape is new in issue 16
        },
        dtype=object,
    )
    proposal = draft_mapping(ExportTable(frame, "intake.xlsx"))
    lines = proposal.text.splitlines()
    assert any(line.startswith('  identity_number_column: "Id"  # identity') for line in lines)
    assert not any("Inskriven" in item and "identity" in item for item in proposal.unplaced)
