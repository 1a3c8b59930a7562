"""Reading an export as text: any CSV delimiter and encoding, Excel sheets with the header lower
down, Parquet; row numbers kept as in the file."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from xlsx_files import write_xlsx

from riskscreen.contract.read import TableReadError, read_table, read_text_table


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        ("Kön;Ålder;Vikt\r\nKvinna;41;7,5\r\n".encode("cp1252"), ";"),
        ("\ufeffKön\tÅlder\tVikt\nKvinna\t41\t7,5\n".encode(), "\t"),
        ('Kön,Ålder,Vikt\nKvinna,41,"7,5"\n'.encode(), ","),
        ("Kön|Ålder|Vikt\nKvinna|41|7,5\n".encode(), "|"),
    ],
)
def test_csv_in_any_delimiter_and_encoding(tmp_path: Path, data: bytes, delimiter: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    table = read_text_table(path)
    assert table.to_dict("index") == {1: {"Kön": "Kvinna", "Ålder": "41", "Vikt": "7,5"}}


def test_a_header_lower_down_and_blank_rows_keep_the_files_numbers(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Rapport\n\nA;B\n1;NA\n\n;\n3;no\n", encoding="utf-8")
    table = read_text_table(path, header_row=3)
    assert table.to_dict("index") == {1: {"A": "1", "B": "NA"}, 4: {"A": "3", "B": "no"}}


def test_an_excel_sheet_with_its_header_lower_down(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Kartläggning"],
        [],
        ["Datum", "Ålder", "Kön", None],
        [dt.date(2026, 10, 1), 41, "Kvinna", None],
        [None, None, None, None],
        ["1/10/2026", 7.5, None, "x"],
    ]
    path = write_xlsx(tmp_path / "export.xlsx", {"Info": [["skip"]], "Data": rows})
    table = read_text_table(path, sheet="Data", header_row=3)
    assert list(table.columns) == ["Datum", "Ålder", "Kön", "column 4"]
    assert table.to_dict("index") == {
        1: {"Datum": "2026-10-01 00:00:00", "Ålder": "41", "Kön": "Kvinna", "column 4": ""},
        3: {"Datum": "1/10/2026", "Ålder": "7.5", "Kön": "", "column 4": "x"},
    }
    with pytest.raises(TableReadError, match="Worksheet named 'Nope' not found"):
        read_text_table(path, sheet="Nope")


def test_parquet_as_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"n": [1.5, None], "b": [True, None], "d": pd.to_datetime(["2020-01-02", None])}
    )
    frame.to_parquet(tmp_path / "t.parquet")
    table = read_text_table(tmp_path / "t.parquet")
    assert table.to_dict("index") == {1: {"n": "1.5", "b": "True", "d": "2020-01-02"}}


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("a.csv", "A;A\n1;2\n", {}, "the header names one column twice (columns 1, 2)"),
        ("a.txt", "A\n", {}, "unsupported file type '.txt'"),
        ("a.csv", "A\n", {"sheet": "S"}, "only Excel files have sheets"),
        ("a.xlsx", "not a workbook", {}, "cannot be read"),
    ],
)
def test_what_cannot_be_read(
    tmp_path: Path, name: str, content: str, options: dict[str, str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TableReadError, match=re.escape(message)):
        read_text_table(path, **options)  # type: ignore[arg-type]


def test_contract_form_tables_are_read_as_before(tmp_path: Path) -> None:
    (tmp_path / "a.xlsx").write_bytes(b"PK")
    with pytest.raises(TableReadError, match="an Excel export is read through a mapping"):
        read_table(tmp_path / "a.xlsx")
