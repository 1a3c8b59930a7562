"""Writing the .xlsx exports the tests read (calamine, which riskscreen reads with, only reads).

Cells: str as text, int/float as numbers, datetime.date as a date cell (as Excel stores a date),
None as no cell at all.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """Write a workbook with one sheet per entry, in order."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=r, column=c, value=value)  # type: ignore[arg-type]
    book.save(path)
    return path
