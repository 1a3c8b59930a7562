"""An export's table turned into the contract's columns and words, as the mapping says.

The step before validation for a municipality's own export: each contract field is taken from
its column (renamed), made from the identity number (a keyed hash), set to a constant, looked
up by intake month or year, or left out as not recorded. Cells stay text; a value map turns the
export's words into contract values (or null: unknown for this person), and for the cells no
value map covers, a decimal comma, a unit and the date formats are applied. Whether the result
is valid is decided afterwards by `data`, exactly as for a file in the contract's form.

Values from a value map are contract values already: units and date formats never apply to
them. What happened to each field is kept (`FieldFacts`) for the coverage report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskscreen.contract.cells import KEY, Field, is_key, parse_cells
from riskscreen.contract.identity import looks_like_personal_number
from riskscreen.contract.mapping import ExportMapping
from riskscreen.contract.mapping_checks import SECTION_FIELDS, as_text
from riskscreen.contract.mapping_spec import IntakeSection
from riskscreen.contract.problems import REDACTED, Problem, rows_of
from riskscreen.contract.pseudonym import pseudonymous_case_ref
from riskscreen.contract.schema import FIELDS_BY_NAME

_BOOLEAN_WORDS = ("true", "false", "1", "0")
SOURCE_WORDS = {
    "column": "mapped",
    "identity": "pseudonymised",
    "constant": "constant",
    "lookup": "looked up",
    "not_recorded": "not recorded",
}


@dataclass(frozen=True)
class FieldFacts:
    """How one contract field was filled, for the coverage report.

    `source` is one of present (the export's column of the field's own name), mapped,
    pseudonymised, constant, looked up, not recorded, or missing. `unmapped` counts the export's
    words that neither a value map nor the contract knows (category and boolean fields only: a
    number, a date or a key is a person's own value and is never listed).
    """

    field: str
    source: str
    column: str | None = None
    mapping: str | None = None
    filled: int = 0
    unknown: int = 0
    unmapped: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class MappedTable:
    """One export table in the contract's columns, with what the mapping did to it.

    `frame` has a plain 0-based index; `rows[i]` is the file's data row of `frame` row i.
    `unknown[f]` marks the cells a value map turned into null, `unmapped[f]` the filled cells
    no value map entry covers (all of them when the field has no value map).
    """

    section: str
    source: str
    frame: pd.DataFrame
    rows: np.ndarray
    problems: list[Problem]
    fields: list[FieldFacts]
    unused_columns: list[str]
    unknown: dict[str, np.ndarray]
    unmapped: dict[str, np.ndarray]


@dataclass
class _Field:
    values: pd.Series
    unknown: pd.Series
    unmapped: pd.Series
    problems: list[Problem] = dataclasses.field(default_factory=list)


def _vocabulary(text: pd.Series, f: Field) -> pd.Series:
    """The cells that are already contract values (category and boolean fields)."""
    if f.kind == "boolean":
        return text.str.lower().isin(_BOOLEAN_WORDS)
    return text.isin(getattr(f, "categories", ()))


def _dates(text: pd.Series, formats: list[str]) -> pd.Series:
    """ISO text for the cells one of the formats reads, in order; the rest as they were."""
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    for fmt in formats:
        parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    return text.where(parsed.isna(), parsed.dt.strftime("%Y-%m-%d"))


def _numbers(text: pd.Series, section: IntakeSection, f: Field) -> pd.Series:
    """A decimal comma read as a point, and the unit converted, where the cell is a number."""
    if section.decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    unit = section.units.get(f.name)
    if unit is None:
        return text
    numbers = pd.to_numeric(text, errors="coerce")
    return text.where(numbers.isna(), (numbers * unit.factor).round(9).astype(str))


def _from_column(raw: pd.Series, f: Field, mapping: ExportMapping, section: str) -> _Field:
    spec = mapping.section(section)
    text = raw.astype(object) if is_key(f) else raw.astype(object).str.strip()  # a key is opaque
    empty = text.eq("")
    # Matched whatever the case: "Ja", "ja" and "JA" are one word (mapping_checks refuses two
    # entries that differ only in case).
    value_map = {word.strip().casefold(): t for word, t in spec.values.get(f.name, {}).items()}
    folded = text.str.casefold()
    covered = folded.isin(list(value_map)) & ~empty
    unknown = covered & folded.isin([word for word, target in value_map.items() if target is None])
    free = text.where(~covered & ~empty)  # cells the value map leaves to the contract's rules
    if f.kind in ("integer", "number") and isinstance(spec, IntakeSection):
        free = _numbers(free, spec, f)
    if f.name in spec.dates:
        free = _dates(free, spec.dates[f.name])
    mapped = folded.map({word: as_text(target) for word, target in value_map.items()})
    values = free.where(~covered, mapped).astype(object)
    return _Field(values.where(values.notna(), None), unknown, ~covered & ~empty)


def _pseudonymised(raw: pd.Series, mapping: ExportMapping, source: str, where: str) -> _Field:
    assert mapping.secret is not None  # load_mapping reads it for every identity column
    secret = mapping.secret.get_secret_value()
    text = raw.astype(object).str.strip()
    present = text.ne("")

    def ref(number: str) -> str | None:
        try:
            return pseudonymous_case_ref(number, secret)
        except ValueError:
            return None

    refs = {number: ref(number) for number in text[present].unique()}
    values = text.map(refs).where(present, None).astype(object)
    problems = [
        Problem(
            source,
            int(row),
            str(raw.name),
            None,
            "value is not a personal identity number (10 or 12 digits)",
            field=KEY,
            mapping=where,
        )
        for row in raw.index[present & values.isna()]
    ]
    none = pd.Series(False, index=raw.index)
    return _Field(values.where(values.notna(), None), none, none, problems)


def _looked_up(
    frame: pd.DataFrame, name: str, mapping: ExportMapping, source: str, rows: np.ndarray
) -> _Field:
    """The table's value for each row's intake month or year; rows it lacks are problems."""
    lookup, table = mapping.spec.intake.lookups[name], mapping.lookups[name]
    if "intake_date" in frame:
        dates = parse_cells(frame["intake_date"], FIELDS_BY_NAME["intake_date"])[0]
    else:  # the missing column is reported; no row can be looked up
        dates = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    keys = dates.dt.strftime("%Y-%m" if lookup.by == "month" else "%Y")
    values = keys.map(table).astype(object)
    covers = f"it covers {min(table.index)} to {max(table.index)}"
    reason = (
        f"the lookup table {lookup.table.name} has no value for the intake {lookup.by} ({covers})"
    )
    where = mapping.where(("intake", "lookups", name))
    problems = [
        Problem(source, int(rows[i]), None, None, reason, field=name, mapping=where)
        for i in rows_of(dates.notna() & values.isna())
    ]
    none = pd.Series(False, index=frame.index)
    return _Field(values.where(values.notna(), None), none, none, problems)


def _facts(
    name: str, kind: str, got: _Field | None, f: Field, column: str | None, mapping: str | None
) -> FieldFacts:
    if got is None:
        return FieldFacts(name, kind, column, mapping)
    unmapped: dict[str, int] = {}
    if f.kind in ("category", "boolean"):
        words = got.values[got.unmapped & ~_vocabulary(got.values.fillna(""), f)]
        counts = words.map(lambda w: REDACTED if looks_like_personal_number(str(w)) else w)
        unmapped = {str(w): int(n) for w, n in counts.value_counts().items()}
    filled = int(got.values.notna().sum())
    return FieldFacts(name, kind, column, mapping, filled, int(got.unknown.sum()), unmapped)


def _constant(raw: pd.DataFrame, mapping: ExportMapping, section: str, name: str) -> _Field:
    value = as_text(mapping.section(section).constants[name])
    none = pd.Series(False, index=raw.index)
    return _Field(pd.Series(value, index=raw.index, dtype=object), none, none)


def _from_export(
    raw: pd.DataFrame, f: Field, mapping: ExportMapping, section: str, source: str
) -> tuple[FieldFacts, _Field | None, list[Problem]]:
    """One field from its column, the identity number or a constant, with its facts.

    Lookups wait for the intake date (`map_table`); a field not recorded has nothing to read.
    """
    claim = mapping.sources[section].get(f.name)
    where = None if claim is None else mapping.where(claim.path)
    column = f.name if claim is None else claim.column
    kind = "present" if claim is None else SOURCE_WORDS[claim.kind]
    got, problems = None, []
    if claim is not None and claim.kind == "constant":
        got = _constant(raw, mapping, section, f.name)
    elif column is not None and column in raw.columns:
        if column != f.name and f.name in raw.columns:
            reason = f"has the name of a contract field that the mapping fills from {column}"
            problems.append(
                Problem(source, None, f.name, None, reason, field=f.name, mapping=where)
            )
        identity = claim is not None and claim.kind == "identity"
        got = (
            _pseudonymised(raw[column], mapping, source, where or "")
            if identity
            else _from_column(raw[column], f, mapping, section)
        )
        problems += got.problems
    elif column is not None:
        kind = "missing"
        if claim is not None:
            reason = "the mapping names this column, but the export has no such column"
            problems.append(
                Problem(source, None, column, None, reason, field=f.name, mapping=where)
            )
    return _facts(f.name, kind, got, f, column, where), got, problems


def map_table(raw: pd.DataFrame, mapping: ExportMapping, section: str, source: str) -> MappedTable:
    """The export's table (`read.read_text_table`) in the contract's columns and words.

    Args:
        raw: every cell as text, indexed by the file's data row numbers.
        section: "intake" or "outcomes", the mapping's section to apply.
        source: the table's name in messages.
    """
    rows = raw.index.to_numpy()
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    facts: list[FieldFacts] = []
    got: dict[str, _Field] = {}
    problems: list[Problem] = []
    for f in SECTION_FIELDS[section]:
        field_facts, field_got, field_problems = _from_export(raw, f, mapping, section, source)
        facts.append(field_facts)
        problems += field_problems
        if field_got is not None:
            got[f.name] = field_got
            frame[f.name] = field_got.values.to_numpy()
    for i, known in enumerate(facts):  # after every column: the key is the intake date
        if known.source == SOURCE_WORDS["lookup"]:
            name = known.field
            got[name] = _looked_up(frame, name, mapping, source, rows)
            frame[name] = got[name].values.to_numpy()
            problems += got[name].problems
            facts[i] = _facts(
                name, known.source, got[name], FIELDS_BY_NAME[name], None, known.mapping
            )
    used = {f.column for f in facts if f.source not in ("missing", "constant")}
    return MappedTable(
        section,
        source,
        frame[[f.name for f in SECTION_FIELDS[section] if f.name in frame]],
        rows,
        problems,
        facts,
        [c for c in raw.columns if c not in used],
        {name: g.unknown.to_numpy() for name, g in got.items()},
        {name: g.unmapped.to_numpy() for name, g in got.items()},
    )
