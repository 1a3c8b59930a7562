"""Reading an export's tables as they are, before anything interprets a cell.

`read_table` reads a table already in the contract's form: CSV cells as text, Parquet columns
typed. `read_text_table` reads a municipality's own export for a mapping: CSV in any delimiter
and in UTF-8 or Windows-1252, Parquet, or an Excel sheet whose header need not be the first row,
every cell as text so that nothing is converted before the mapping says what it means. What a
cell means is decided by `cells`, `data` and the mapping, never here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from python_calamine import CalamineError

CSV_DELIMITERS = ",;\t|"
TEXT_SUFFIXES = (".csv", ".parquet", ".xlsx")


class TableReadError(ValueError):
    """A table could not be read at all (unsupported suffix, missing or malformed file)."""


def _read_csv(path: Path) -> pd.DataFrame:
    # Every cell as text, and only an empty cell is null: "NA" or "no" must not silently
    # become a missing value or a boolean. utf-8-sig accepts the byte-order mark Excel writes.
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).reset_index(drop=True)


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet table as it is, without interpreting it (validation does that).

    Raises:
        TableReadError: the suffix is not .csv or .parquet, or the file cannot be read.
    """
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise TableReadError(
            f"{path.name}: unsupported file type {path.suffix!r}; use .csv or .parquet "
            "(an Excel export is read through a mapping: --mapping)"
        )
    try:
        return reader(path)
    except (OSError, ValueError) as exc:
        raise TableReadError(f"{path.name}: cannot be read ({exc})") from exc


# --- a municipality's own export, every cell as text ------------------------------------------


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the byte-order mark Excel writes), else Windows-1252.

    Windows-1252 is what Excel on a Swedish Windows saves as "CSV"; UTF-8 is tried first
    because Windows-1252 decodes almost any bytes, wrongly, where UTF-8 fails loudly.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _delimiter(text: str, header_row: int) -> str:
    """The delimiter sniffed from the header and the rows after it; a comma if only one column."""
    sample = "\n".join(text.splitlines()[header_row - 1 : header_row + 50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_text_csv(path: Path, sheet: str | None, header_row: int) -> pd.DataFrame:
    text = _decode(path.read_bytes())
    return pd.read_csv(
        io.StringIO(text),
        sep=_delimiter(text, header_row),
        header=None,
        dtype=str,
        keep_default_na=False,
        skiprows=header_row - 1,
        skip_blank_lines=False,  # row numbers in messages must be those of the file
    )


def _read_text_parquet(path: Path, sheet: str | None, header_row: int) -> pd.DataFrame:
    typed = pd.read_parquet(path).reset_index(drop=True)
    cells = {i: typed[c].astype(str).where(typed[c].notna(), "") for i, c in enumerate(typed)}
    header = pd.DataFrame([[str(c) for c in typed.columns]])
    return pd.concat([header, pd.DataFrame(cells)], ignore_index=True)


def _read_text_excel(path: Path, sheet: str | None, header_row: int) -> pd.DataFrame:
    return pd.read_excel(
        path,
        engine="calamine",
        sheet_name=0 if sheet is None else sheet,
        header=None,
        skiprows=header_row - 1,
        dtype=str,
        keep_default_na=False,
    )


def _with_header(grid: pd.DataFrame, source: str) -> pd.DataFrame:
    """The grid's first row as column names; a blank one becomes `column N` (N from 1)."""
    if grid.empty:
        raise TableReadError(f"{source}: no header row where the header row should be")
    names = [str(n).strip() or f"column {i + 1}" for i, n in enumerate(grid.iloc[0])]
    repeated = sorted({i + 1 for i, n in enumerate(names) if names.count(n) > 1})
    if repeated:
        where = ", ".join(str(i) for i in repeated)
        raise TableReadError(f"{source}: the header names one column twice (columns {where})")
    table = grid.iloc[1:].set_axis(names, axis=1)
    table.index = pd.RangeIndex(1, len(table) + 1)
    return table


_TEXT_READERS: dict[str, Callable[[Path, str | None, int], pd.DataFrame]] = {
    ".csv": _read_text_csv,
    ".parquet": _read_text_parquet,
    ".xlsx": _read_text_excel,
}


def read_text_table(path: Path, *, sheet: str | None = None, header_row: int = 1) -> pd.DataFrame:
    """Every cell of an export as text ("" when empty), indexed by data row number.

    The index counts data rows from 1 after the header, as messages do; rows with no value in
    any cell are dropped (spreadsheets keep blank lines between blocks) without renumbering
    the others, so a message still points at the row a person finds in the file.

    Args:
        path: a .csv (any of `CSV_DELIMITERS`; UTF-8 or Windows-1252), .parquet or .xlsx file.
        sheet: the Excel sheet's name; None for the first sheet.
        header_row: the 1-based row holding the column names (CSV and Excel).

    Raises:
        TableReadError: unsupported suffix, options that do not apply, or an unreadable file.
    """
    suffix = path.suffix.lower()
    reader = _TEXT_READERS.get(suffix)
    if reader is None:
        raise TableReadError(
            f"{path.name}: unsupported file type {path.suffix!r}; use {', '.join(TEXT_SUFFIXES)}"
        )
    if sheet is not None and suffix != ".xlsx":
        raise TableReadError(f"{path.name}: a sheet is named, but only Excel files have sheets")
    if header_row != 1 and suffix == ".parquet":
        raise TableReadError(f"{path.name}: a header row is given, but Parquet has no rows of text")
    try:
        grid = reader(path, sheet, header_row).fillna("").astype(str)
    except (OSError, ValueError, CalamineError) as exc:
        raise TableReadError(f"{path.name}: cannot be read ({exc})") from exc
    table = _with_header(grid, path.name)
    return table[(table.apply(lambda c: c.str.strip()) != "").any(axis=1)]
