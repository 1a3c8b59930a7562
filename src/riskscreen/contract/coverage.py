"""The coverage report: what a mapping made of an export, before anything is trained or written.

For each table: every contract field and where it came from (present, mapped, pseudonymised,
constant, looked up, not recorded, missing), how many rows have a value and how many are
unknown, and the export's words that no value map covers, with their counts. An export's
category labels are its vocabulary, so showing them is fine; a number, a date or a key is a
person's own value and never appears, nor does any problem quote a cell. Problems are grouped
by file, column and reason, with their row numbers. As text for a person, as JSON for scripts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

from riskscreen.contract.identity import looks_like_personal_number
from riskscreen.contract.problems import REDACTED, Problem
from riskscreen.contract.transform import FieldFacts

_SHOWN_ROWS = 10


@dataclass(frozen=True)
class TableCoverage:
    """One export table: its rows (blank ones not counted) and each field's facts."""

    section: str
    file: str
    rows: int
    fields: list[FieldFacts]
    unused_columns: list[str]


@dataclass(frozen=True)
class ProblemGroup:
    """Every row with the same problem in the same column, found by the same mapping line."""

    file: str
    column: str | None
    field: str | None
    mapping: str | None
    reason: str
    rows: list[int]

    def describe(self) -> str:
        place = Problem(self.file, None, self.column, None, self.reason, self.field, self.mapping)
        if not self.rows:
            return place.describe()
        shown = ", ".join(str(r) for r in self.rows[:_SHOWN_ROWS])
        more = f" and {len(self.rows) - _SHOWN_ROWS} more" if len(self.rows) > _SHOWN_ROWS else ""
        count = f"{len(self.rows)} row{'s' if len(self.rows) > 1 else ''}"
        return f"{place.describe()} [{count}: data row {shown}{more}]"


def _column_name(name: str) -> str:
    return REDACTED if looks_like_personal_number(name) else name


@dataclass(frozen=True)
class Coverage:
    """The report for one export read through one mapping."""

    mapping: str
    tables: list[TableCoverage]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def groups(self) -> list[ProblemGroup]:
        """The problems grouped by file, column, field, mapping line and reason, in order."""
        rows: dict[tuple[str, str | None, str | None, str | None, str], list[int]] = defaultdict(
            list
        )
        for p in self.problems:
            group = rows[(p.file, p.column, p.field, p.mapping, p.reason)]
            if p.row is not None:
                group.append(p.row)
        return [ProblemGroup(*key, sorted(found)) for key, found in rows.items()]

    def to_dict(self) -> dict[str, object]:
        """Plain data for `--format json` and for training's provenance."""
        return {
            "mapping": self.mapping,
            "ok": self.ok,
            "tables": [
                asdict(t) | {"unused_columns": [_column_name(c) for c in t.unused_columns]}
                for t in self.tables
            ],
            "problem_count": len(self.problems),
            "problem_groups": [asdict(g) for g in self.groups()],
        }

    def render_text(self) -> str:
        """The report for a person at a terminal."""
        lines = [f"Coverage of the export through {self.mapping}"]
        for table in self.tables:
            lines += ["", *_table_lines(table)]
        groups = self.groups()
        lines += ["", f"Problems: {len(self.problems)} in {len(groups)} group(s)"]
        lines += [f"  {g.describe()}" for g in groups]
        return "\n".join(lines)


def _table_lines(table: TableCoverage) -> list[str]:
    lines = [f"{table.file} ({table.section}): {table.rows} rows"]
    lines.append(f"  {'field':<28}{'source':<15}{'filled':>8}{'unknown':>9}  column, mapping")
    for f in table.fields:
        if f.source == "missing":
            column = f"{f.column} is not in the export"
        else:
            column = _column_name(f.column) if f.column is not None else ""
        place = ", ".join(x for x in (column, f.mapping) if x)
        lines.append(f"  {f.field:<28}{f.source:<15}{f.filled:>8}{f.unknown:>9}  {place}")
    unmapped = [f for f in table.fields if f.unmapped]
    if unmapped:
        lines.append("  Values no value map covers (and the contract does not know):")
        for f in unmapped:
            words = ", ".join(f"{w!r} × {n}" for w, n in f.unmapped.items())
            lines.append(f"    {f.field} (column {_column_name(f.column or '')}): {words}")
    if table.unused_columns:
        names = ", ".join(_column_name(c) for c in table.unused_columns)
        lines.append(f"  Columns not read: {names}")
    return lines
