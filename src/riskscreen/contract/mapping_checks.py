"""What a mapping's structure cannot say for itself: that its names and values fit the contract.

Run by `mapping.load_mapping` before any export is read, so a mistake is reported with its line
while nothing has been read from a person's row. Every contract field gets at most one source
(a column, the identity-number column, a constant, a lookup, or "not recorded"); a field with
none is expected under its own name in the export, which only the export's header can tell.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from riskscreen.contract.cells import KEY, Field, parse_cells
from riskscreen.contract.mapping_spec import IntakeSection, OutcomeSection, Target
from riskscreen.contract.schema import INTAKE_FIELDS, OUTCOME_FIELDS, IntakeField
from riskscreen.contract.yaml_lines import YamlPath

SECTION_FIELDS: dict[str, tuple[Field, ...]] = {"intake": INTAKE_FIELDS, "outcomes": OUTCOME_FIELDS}
Issue = tuple[YamlPath, str]
SourceKind = Literal["column", "identity", "constant", "lookup", "not_recorded"]
_SAMPLE_DAY = dt.datetime(2026, 10, 23)  # a day above 12, so that day and month differ


@dataclass(frozen=True)
class Source:
    """Where a contract field's values come from, and where the mapping says so."""

    kind: SourceKind
    path: YamlPath
    column: str | None = None

    def describe(self) -> str:
        return {
            "column": f"the column {self.column!r}",
            "identity": f"the identity number column {self.column!r}",
            "constant": "a constant",
            "lookup": "a lookup",
            "not_recorded": "not_recorded",
        }[self.kind]


def as_text(value: object) -> str | None:
    """A YAML value as the export's text would carry it (true, 12, 2026-01-31); None stays."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def value_problem(text: str, f: Field) -> str | None:
    """Why `text` is not a value the contract allows in `f`, or None if it is."""
    parsed, reasons = parse_cells(pd.Series([text], dtype=object), f)
    if pd.notna(reasons.iloc[0]):
        return str(reasons.iloc[0])
    value = parsed.iloc[0]
    if pd.isna(value):
        return "is empty"
    if not isinstance(f, IntakeField):
        return None
    if f.kind == "category" and value not in f.categories:
        return f"is not one of the allowed: {', '.join(f.categories)}"
    if f.minimum is not None and value < f.minimum:
        return f"is below the minimum {f.minimum:g}"
    if f.maximum is not None and value > f.maximum:
        return f"is above the maximum {f.maximum:g}"
    return None


def date_format_problem(fmt: str) -> str | None:
    """Why `fmt` cannot read a date (bad directive, or no day, month and year), or None."""
    try:
        back = dt.datetime.strptime(_SAMPLE_DAY.strftime(fmt), fmt)
        pd.to_datetime(pd.Series([_SAMPLE_DAY.strftime(fmt)]), format=fmt)
    except ValueError as exc:
        return f"is not a date format ({exc})"
    if back.date() != _SAMPLE_DAY.date():
        return "does not read a day, a month and a year (e.g. %Y-%m-%d)"
    return None


def _unknown(name: str, section: str) -> str:
    names = [f.name for f in SECTION_FIELDS[section]]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{name!r} is not a field of the {section} contract{hint}"


def field_sources(
    name: str, section: OutcomeSection, line: Callable[[YamlPath], int]
) -> tuple[dict[str, Source], list[Issue]]:
    """Each named field's one source, and an issue for an unknown field or a second source."""
    claims: list[tuple[str, Source]] = []
    if section.identity_number_column is not None:
        column = section.identity_number_column
        claims.append((KEY, Source("identity", (name, "identity_number_column"), column)))
    claims += [(f, Source("column", (name, "columns", c), c)) for c, f in section.columns.items()]
    claims += [(f, Source("constant", (name, "constants", f))) for f in section.constants]
    if isinstance(section, IntakeSection):
        claims += [(f, Source("lookup", (name, "lookups", f))) for f in section.lookups]
        claims += [
            (f, Source("not_recorded", (name, "not_recorded", i)))
            for i, f in enumerate(section.not_recorded)
        ]
    known = {f.name for f in SECTION_FIELDS[name]}
    sources: dict[str, Source] = {}
    issues: list[Issue] = []
    for target, source in claims:
        if target not in known:
            issues.append((source.path, _unknown(target, name)))
        elif target in sources:
            first = sources[target]
            issues.append(
                (
                    source.path,
                    f"{target} is given twice: by {first.describe()} (line "
                    f"{line(first.path)}) and by {source.describe()}",
                )
            )
        else:
            sources[target] = source
    return sources, issues


def _source_rules(name: str, sources: dict[str, Source]) -> list[Issue]:
    """Which fields may come from where: a key tells people apart, dates make the label."""
    fields = {f.name: f for f in SECTION_FIELDS[name]}
    issues: list[Issue] = []
    for field_name, source in sources.items():
        f = fields[field_name]
        if field_name == KEY and source.kind not in ("column", "identity"):
            issues.append(
                (source.path, f"{KEY} cannot be {source.describe()}: it tells people apart")
            )
        elif (
            source.kind == "not_recorded"
            and isinstance(f, IntakeField)
            and f.role in ("key", "date")
        ):
            issues.append((source.path, f"{field_name} cannot be not_recorded: the label needs it"))
        elif source.kind == "lookup" and f.kind in ("date", "string"):
            issues.append((source.path, f"{field_name} cannot be looked up: it is a {f.kind}"))
    return issues


def _transform_rules(name: str, section: OutcomeSection, sources: dict[str, Source]) -> list[Issue]:
    """Value maps, date formats and units: each on a known field of the right kind, fed by a
    column, and mapping only onto values the contract allows."""
    fields = {f.name: f for f in SECTION_FIELDS[name]}
    transforms: list[tuple[str, str, Sequence[str]]] = [
        ("values", field_name, ()) for field_name in section.values
    ]
    transforms += [("dates", field_name, ("date",)) for field_name in section.dates]
    if isinstance(section, IntakeSection):
        transforms += [("units", field_name, ("integer", "number")) for field_name in section.units]
    issues: list[Issue] = []
    for option, field_name, kinds in transforms:
        path = (name, option, field_name)
        f = fields.get(field_name)
        source = sources.get(field_name)
        if f is None:
            issues.append((path, _unknown(field_name, name)))
        elif field_name == KEY:
            issues.append((path, f"{KEY} is opaque: its values cannot be transformed"))
        elif kinds and f.kind not in kinds:
            issues.append((path, f"{field_name} holds {f.kind} values, not {' or '.join(kinds)}"))
        elif source is not None and source.kind != "column":
            issues.append((path, f"{field_name} comes from {source.describe()}, not a column"))
        elif option == "values":
            issues += _value_map_issues(path, section.values[field_name], f)
        elif option == "dates":
            issues += [
                ((*path, i), f"{fmt!r} {problem}")
                for i, fmt in enumerate(section.dates[field_name])
                if (problem := date_format_problem(fmt)) is not None
            ]
    return issues


def _value_map_issues(path: YamlPath, values: dict[str, Target], f: Field) -> list[Issue]:
    """Each target a value the contract allows; no two words alike but for case or blanks."""
    issues: list[Issue] = []
    seen: dict[str, str] = {}
    for value, target in values.items():
        text = as_text(target)
        problem = None if text is None else value_problem(text, f)
        if problem is not None:
            message = f"{f.name}: {value!r} is mapped onto {text!r}, which {problem}"
            issues.append(((*path, value), message))
        word = value.strip().casefold()
        if word in seen:
            message = f"{f.name}: {seen[word]!r} and {value!r} are one word (case is ignored)"
            issues.append(((*path, value), message))
        seen[word] = value
    return issues


def _constant_issues(name: str, section: OutcomeSection) -> list[Issue]:
    fields = {f.name: f for f in SECTION_FIELDS[name]}
    issues: list[Issue] = []
    for field_name, value in section.constants.items():
        text = as_text(value)
        problem = value_problem(text or "", fields[field_name]) if field_name in fields else None
        if problem is not None:
            issues.append(
                ((name, "constants", field_name), f"the constant for {field_name} {problem}")
            )
    return issues


def check_section(
    name: str, section: OutcomeSection, line: Callable[[YamlPath], int]
) -> tuple[dict[str, Source], list[Issue]]:
    """The section's field sources and every mistake in it, each with its place in the file."""
    sources, issues = field_sources(name, section, line)
    issues += _source_rules(name, sources)
    issues += _transform_rules(name, section, sources)
    issues += _constant_issues(name, section)
    return sources, issues
