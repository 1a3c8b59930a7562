"""A municipality's own export read through its mapping, into the contract's canonical tables.

The entry point for real data in another shape than the contract's: read the files as text
(`read`), apply the mapping (`transform`), validate with exactly the checks a contract-form file
gets (`data`), and translate every problem back into the export's terms: its file, its data
row, its column, and the mapping line that fed the column. No problem quotes a cell: a message
names where to look, never what a person's row holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from riskscreen.contract import data
from riskscreen.contract.cells import KEY
from riskscreen.contract.coverage import Coverage, TableCoverage
from riskscreen.contract.mapping import ExportMapping
from riskscreen.contract.problems import DataValidationError, Problem
from riskscreen.contract.read import TableReadError, read_text_table
from riskscreen.contract.schema import FIELDS_BY_NAME
from riskscreen.contract.transform import MappedTable, map_table

UNKNOWN_REQUIRED = "value unknown, but the field requires a value"


@dataclass(frozen=True)
class MappedExport:
    """The canonical tables (as `data.to_canonical_intake`/`_outcomes` give them) and the report.

    The fields in `not_recorded` have no column in `intake`.
    """

    intake: pd.DataFrame
    outcomes: pd.DataFrame | None
    not_recorded: tuple[str, ...]
    coverage: Coverage


@dataclass(frozen=True)
class _Checked:
    coverage: Coverage
    intake: data.Checked | None
    outcomes: data.Checked | None


def _labels(intake: Path, outcomes: Path | None, mapping: ExportMapping) -> tuple[str, str]:
    """The tables' names in messages: the file, and the sheet when the mapping names one."""
    names = []
    for section, path in (("intake", intake), ("outcomes", outcomes or intake)):
        sheet = mapping.section(section).file.sheet
        names.append(path.name + (f" sheet {sheet}" if sheet else ""))
    if names[0] == names[1]:
        names[1] += " (outcomes)"
    return names[0], names[1]


def _read(path: Path, mapping: ExportMapping, section: str, label: str) -> MappedTable | Problem:
    options = mapping.section(section).file
    try:
        raw = read_text_table(path, sheet=options.sheet, header_row=options.header_row)
    except TableReadError as exc:
        reason = str(exc).removeprefix(f"{path.name}: ")
        return Problem(label, None, None, None, reason, mapping=mapping.where((section, "file")))
    return map_table(raw, mapping, section, label)


def _translate(p: Problem, table: MappedTable, mapping: ExportMapping) -> Problem | None:
    """A problem `data` found in the mapped table, in the export's terms and without its value."""
    name = p.column or ""
    facts = next((f for f in table.fields if f.field == name), None)
    pos = None if p.row is None else p.row - 1
    reason = p.reason if p.value is None else f"value {p.reason}"
    where = facts.mapping if facts is not None else None
    values_line = mapping.where((table.section, "values", name))
    has_map = name in mapping.section(table.section).values
    if reason == data.MISSING_VALUE and facts is not None and facts.source == "looked up":
        return None  # the lookup reported the rows it cannot serve; the rest lack a date
    if reason == data.MISSING_COLUMN and facts is not None and facts.mapping is not None:
        return None  # the mapped column the export lacks is reported with its mapping line
    if pos is not None and reason == data.MISSING_VALUE and table.unknown[name][pos]:
        if table.section == "intake" and FIELDS_BY_NAME[name].may_be_unknown:
            return None  # an explicit unknown, where the contract allows one: a value, not a gap
        reason, where = UNKNOWN_REQUIRED, values_line
    elif pos is not None and p.value is not None and has_map and table.unmapped[name][pos]:
        reason, where = f"{reason} (and no value map entry covers it)", values_line
    if reason == data.MISSING_COLUMN:
        others = ", a lookup, or list it as not_recorded" if table.section == "intake" else ""
        reason += f"; map a column onto it or give a constant{others}"
    if name == KEY and "personal identity number" in reason:
        reason += "; name its column as identity_number_column to turn it into a pseudonym"
    column = facts.column if facts is not None and facts.column else name
    row = None if pos is None else int(table.rows[pos])
    return Problem(table.source, row, column, None, reason, field=name, mapping=where)


def _translated(
    problems: list[Problem], tables: list[MappedTable], m: ExportMapping
) -> list[Problem]:
    by_source = {t.source: t for t in tables}
    out = [_translate(p, by_source[p.file], m) for p in problems]
    return [p for p in out if p is not None]


def _check(intake: Path, outcomes: Path | None, mapping: ExportMapping) -> _Checked:
    intake_label, outcome_label = _labels(intake, outcomes, mapping)
    mapped = _read(intake, mapping, "intake", intake_label)
    mapped_out = None if outcomes is None else _read(outcomes, mapping, "outcomes", outcome_label)
    tables = [t for t in (mapped, mapped_out) if isinstance(t, MappedTable)]
    problems = [p for p in (mapped, mapped_out) if isinstance(p, Problem)]
    problems += [p for t in tables for p in t.problems]
    checked = checked_out = None
    if isinstance(mapped, MappedTable):
        checked = data.check_intake(mapped.frame, intake_label, not_recorded=mapping.not_recorded)
        problems += _translated(checked.problems, tables, mapping)
    if isinstance(mapped_out, MappedTable):
        intake_checked = checked or data.Checked(pd.DataFrame(), [])
        checked_out = data.check_outcomes(
            mapped_out.frame, outcome_label, intake_checked, intake_label, quote_values=False
        )
        problems += _translated(checked_out.problems, tables, mapping)
    coverage = Coverage(
        mapping.file,
        [
            TableCoverage(t.section, t.source, len(t.frame), t.fields, t.unused_columns)
            for t in tables
        ],
        problems,
    )
    return _Checked(coverage, checked, checked_out)


def check_export(intake: Path, outcomes: Path | None, mapping: ExportMapping) -> Coverage:
    """The coverage report with every problem; reads only, writes nothing, never raises on data."""
    return _check(intake, outcomes, mapping).coverage


def read_export(intake: Path, outcomes: Path | None, mapping: ExportMapping) -> MappedExport:
    """The export in the contract's canonical form, through the mapping.

    Raises:
        DataValidationError: every problem, each with file, data row, column and, where the
            mapping fed the column, its line. No message quotes a cell.
    """
    checked = _check(intake, outcomes, mapping)
    if checked.coverage.problems or checked.intake is None:
        raise DataValidationError(checked.coverage.problems)
    not_recorded = mapping.not_recorded
    return MappedExport(
        data.to_canonical_intake(checked.intake.typed, not_recorded),
        None if checked.outcomes is None else data.to_canonical_outcomes(checked.outcomes.typed),
        not_recorded,
        checked.coverage,
    )
