"""A first mapping proposed from an export's header and words, for a person to finish.

Only what is certain is written as a mapping entry: a column named as a field in another case,
or after a field's Swedish or English label (`schema`), a word that is a category's label
(`value_labels`) or a common Swedish yes/no or sex word, an unambiguous date format, a decimal
comma. Whatever is only close (difflib's closest match) is written commented out, marked as a
suggestion for a person to review; what nothing resembles is listed as not placed. So a draft
never guesses silently: used as it is, it leaves the uncertain fields missing and validation
says so. No number, date or key from a person's row is written, only column names and the
words of category and yes/no columns (an export's vocabulary).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

import pandas as pd

from riskscreen.contract.cells import KEY, Field
from riskscreen.contract.identity import is_personal_number, looks_like_personal_number
from riskscreen.contract.mapping_checks import SECTION_FIELDS
from riskscreen.contract.schema import IntakeField
from riskscreen.contract.value_labels import CATEGORY_LABELS

MAX_CATEGORY_WORDS = 50
SUGGESTION_CUTOFF = 0.6  # difflib's own default for get_close_matches
IDENTITY_SHARE = 0.9  # share of a column's cells shaped like identity numbers to call it one
DATE_FORMATS = ("%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d-%m-%Y")
_IDENTITY_HEADERS = {"personnummer", "personnr", "pnr", "personal identity number"}
_BOOLEAN_WORDS = {"ja": True, "nej": False, "yes": True, "no": False, "sant": True}
_BOOLEAN_WORDS |= {"falskt": False, "true": True, "false": False, "1": True, "0": False}
_EXTRA_WORDS = {"sex": {"kvinna": "female", "man": "male", "annat": "other", "k": "female"}}
_EXTRA_WORDS["sex"] |= {"m": "male", "woman": "female"}
_UNKNOWN_WORDS = {"vet ej", "okänd", "okänt", "uppgift saknas", "saknas", "ej angivet", "unknown"}
_DECIMAL_COMMA = r"^-?\d+,\d+$"


def normalised(text: str) -> str:
    """Case, blanks and underscores ignored: `Self_rated  Health` is `self rated health`."""
    return " ".join(text.replace("_", " ").casefold().split())


@dataclass(frozen=True)
class Entry:
    """One proposed line: an export column or word, what it maps onto, and why."""

    key: str
    target: object
    why: str
    suggestion: bool = False


@dataclass
class SectionDraft:
    """What the draft proposes for one export table."""

    name: str
    identity: Entry | None = None
    columns: list[Entry] = field(default_factory=list)
    values: dict[str, list[Entry]] = field(default_factory=dict)
    dates: dict[str, Entry] = field(default_factory=dict)
    decimal_comma: bool = False
    unplaced: list[str] = field(default_factory=list)


def _field_words(section: str) -> dict[str, tuple[str, str]]:
    words: dict[str, tuple[str, str]] = {}
    for f in SECTION_FIELDS[section]:
        words.setdefault(normalised(f.name), (f.name, "the field's name"))
        if isinstance(f, IntakeField):
            words.setdefault(normalised(f.label_sv), (f.name, f"the Swedish label of {f.name}"))
            words.setdefault(normalised(f.label_en), (f.name, f"the English label of {f.name}"))
    return words


def _value_words(f: Field) -> dict[str, tuple[object, str]]:
    if f.kind == "boolean":
        return {w: (v, "a yes/no word") for w, v in _BOOLEAN_WORDS.items()}
    words: dict[str, tuple[object, str]] = {}
    for value in getattr(f, "categories", ()):
        words[normalised(value)] = (value, "the contract's value in another case")
        for label in CATEGORY_LABELS.get(f.name, {}).get(value, ()):
            words.setdefault(normalised(label), (value, f"the label of {value}"))
    for word, value in _EXTRA_WORDS.get(f.name, {}).items():
        words.setdefault(word, (value, f"a word for {value}"))
    return words


def _is_identity(column: str, cells: pd.Series) -> bool:
    filled = cells[cells.str.strip() != ""]
    shaped = filled.map(is_personal_number).astype(bool)
    by_values = len(filled) > 0 and float(shaped.mean()) >= IDENTITY_SHARE
    return normalised(column) in _IDENTITY_HEADERS or by_values


def similarity(a: str, b: str) -> float:
    """difflib's ratio, or 0.8 when one's words are all among the other's ("Svenska" and
    "Svenska vid kartläggning"): close enough to suggest, never enough to be sure."""
    words_a, words_b = set(a.split()), set(b.split())
    contained = words_a and words_b and (words_a <= words_b or words_b <= words_a)
    return max(difflib.SequenceMatcher(None, a, b).ratio(), 0.8 if contained else 0.0)


def _suggest_columns(
    pending: list[str], free: dict[str, tuple[str, str]], draft: SectionDraft
) -> None:
    """The closest free field for each remaining column, best pairs first, each field once."""
    pairs = sorted(
        ((similarity(normalised(c), w), c, w) for c in pending for w in free),
        key=lambda pair: -pair[0],
    )
    taken: set[str] = set()
    for score, column, word in pairs:
        name = free[word][0]
        if (
            score < SUGGESTION_CUTOFF
            or column in taken
            or name in {e.target for e in draft.columns}
        ):
            continue
        why = f"suggestion: closest to {word!r} ({name}); review"
        draft.columns.append(Entry(column, name, why, suggestion=True))
        taken.add(column)
    draft.unplaced += [
        f"column {c!r}: no contract field resembles it (not read)"
        for c in pending
        if c not in taken
    ]


def _place_columns(raw: pd.DataFrame, draft: SectionDraft) -> dict[str, str]:
    """Columns onto fields: identity, exact, then closest (as suggestions). Column -> field."""
    words = _field_words(draft.name)
    present = {f.name for f in SECTION_FIELDS[draft.name]} & set(raw.columns)
    placed: dict[str, str] = {name: name for name in present}  # under its own name: no entry
    pending = []
    for column in [c for c in raw.columns if c not in present]:
        found = words.get(normalised(column))
        if _is_identity(column, raw[column]):
            if KEY in placed.values():  # the export has a case reference besides: never read
                draft.unplaced.append(f"column {column!r}: identity numbers (not read)")
                continue
            why = "identity numbers: turned into case_ref by a keyed hash (needs secret_file)"
            draft.identity, placed[column] = Entry(column, KEY, why), KEY
        elif found is not None and found[0] not in placed.values():
            draft.columns.append(Entry(column, found[0], found[1]))
            placed[column] = found[0]
        else:
            pending.append(column)
    free = {w: fw for w, fw in words.items() if fw[0] not in placed.values()}
    _suggest_columns(pending, free, draft)
    placed |= {e.key: str(e.target) for e in draft.columns if e.suggestion}
    return placed


def _place_values(cells: pd.Series, column: str, f: Field, draft: SectionDraft) -> None:
    # One entry per word whatever its case, as a value map matches them.
    spellings = sorted(set(cells.str.strip()) - {""}, reverse=True)
    words = sorted({w.casefold(): w for w in spellings}.values())
    if len(words) > MAX_CATEGORY_WORDS:
        draft.unplaced.append(f"column {column!r} ({f.name}): {len(words)} different values")
        return
    known = _value_words(f)
    allowed = {str(c) for c in getattr(f, "categories", ())}
    allowed |= {"true", "false", "1", "0"} if f.kind == "boolean" else set()
    entries = []
    for word in words:
        key = normalised(word)
        score, close = max(((similarity(key, k), k) for k in known), default=(0.0, ""))
        if word in allowed or (f.kind == "boolean" and word.casefold() in allowed):
            continue
        if looks_like_personal_number(word):
            draft.unplaced.append(
                f"column {column!r} ({f.name}): a value shaped like an identity number"
            )
        elif key in known:
            entries.append(Entry(word, known[key][0], known[key][1]))
        elif key in _UNKNOWN_WORDS:
            entries.append(Entry(word, None, "suggestion: reads as unknown; review", True))
        elif score >= SUGGESTION_CUTOFF:
            why = f"suggestion: closest to {close!r}; review"
            entries.append(Entry(word, known[close][0], why, True))
        else:
            draft.unplaced.append(
                f"value {word!r} in column {column!r} ({f.name}): no contract value resembles it"
            )
    if entries:
        draft.values[f.name] = entries


def _date_formats(cells: pd.Series, f: Field, draft: SectionDraft) -> None:
    """The formats that read the dates not in ISO form; day/month against month/day decided
    only by a date that one of them cannot read (a day above 12)."""
    text = cells.str.strip()
    iso = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    other = text[(text != "") & iso.isna()]
    if other.empty:
        return
    reads = {
        fmt: pd.to_datetime(other, format=fmt, errors="coerce").notna() for fmt in DATE_FORMATS
    }
    useful = [fmt for fmt in DATE_FORMATS if reads[fmt].any()]
    day_first, month_first = "%d/%m/%Y", "%m/%d/%Y"
    if {day_first, month_first} <= set(useful):
        if (reads[day_first] & ~reads[month_first]).any():
            useful.remove(month_first)
        elif (reads[month_first] & ~reads[day_first]).any():
            useful.remove(day_first)
    read = pd.concat([reads[fmt] for fmt in useful] + [other.isna()], axis=1).any(axis=1)
    if not read.all():
        draft.unplaced.append(f"field {f.name}: {int((~read).sum())} dates match no known format")
    if not useful:
        return
    if {day_first, month_first} <= set(useful):
        why = "suggestion: day/month and month/day both read every date; keep the one meant"
        draft.dates[f.name] = Entry(f.name, useful, why, suggestion=True)
    else:
        draft.dates[f.name] = Entry(
            f.name, useful, "reads the dates the export has not in ISO form"
        )


def draft_section(raw: pd.DataFrame, section: str) -> SectionDraft:
    """The proposal for one export table (every cell as text, `read.read_text_table`)."""
    draft = SectionDraft(section)
    placed = _place_columns(raw, draft)
    fields = {f.name: f for f in SECTION_FIELDS[section]}
    for column, name in placed.items():
        f = fields[name]
        if name == KEY:
            continue
        if f.kind in ("category", "boolean"):
            _place_values(raw[column], column, f, draft)
        elif f.kind in ("integer", "number"):
            draft.decimal_comma |= bool(raw[column].str.strip().str.match(_DECIMAL_COMMA).any())
        elif f.kind == "date":
            _date_formats(raw[column], f, draft)
    suggested = {e.target: e.key for e in draft.columns if e.suggestion}
    sure = set(placed.values()) - set(suggested)
    todo = "map one, give a constant or a lookup" + (
        ", or list it in not_recorded" if section == "intake" else ""
    )
    draft.unplaced += [
        f"field {f.name}: only suggested (column {suggested[f.name]!r}); review"
        if f.name in suggested
        else f"field {f.name}: no column found ({todo})"
        for f in SECTION_FIELDS[section]
        if f.name not in sure
    ]
    return draft


# --- the YAML text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportTable:
    """An export's table as read (`read.read_text_table`), with where it was read from."""

    frame: pd.DataFrame
    name: str
    sheet: str | None = None
    header_row: int = 1


@dataclass(frozen=True)
class Draft:
    """The proposed mapping file's text, and what it could not place (also in its comments)."""

    text: str
    unplaced: list[str]


def _quoted(value: object) -> str:
    """A YAML scalar that reads back as written (JSON's double quotes are valid YAML)."""
    if isinstance(value, list):
        return "[" + ", ".join(_quoted(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _line(indent: int, key: str, value: str, entry: Entry) -> str:
    commented = "# " if entry.suggestion else ""
    return f"{' ' * indent}{commented}{key}: {value}  # {entry.why}"


def _section_yaml(draft: SectionDraft, table: ExportTable) -> list[str]:
    lines = [f"{draft.name}:"]
    if table.sheet is not None or table.header_row != 1:
        sheet = "" if table.sheet is None else f"sheet: {_quoted(table.sheet)}, "
        lines.append(f"  file: {{{sheet}header_row: {table.header_row}}}")
    if draft.identity is not None:
        identity = draft.identity
        lines.append(_line(2, "identity_number_column", _quoted(identity.key), identity))
    lines.append("  columns:")
    lines += [_line(4, _quoted(e.key), str(e.target), e) for e in draft.columns]
    lines.append("  values:")
    for name, entries in draft.values.items():
        lines.append(f"    {name}:")
        lines += [_line(6, _quoted(e.key), _quoted(e.target), e) for e in entries]
    lines.append("  dates:")
    lines += [_line(4, name, _quoted(e.target), e) for name, e in draft.dates.items()]
    lines.append("  constants:  # a field the export lacks that is the same for everyone")
    if draft.name == "intake":
        lines.append(f"  decimal_comma: {_quoted(draft.decimal_comma)}")
        lines.append("  units:  # e.g. work_experience_years: {divide_by: 12} for months")
        lines.append("  lookups:  # e.g. local_unemployment_rate: {table: FILE.csv, by: month}")
        lines.append("  not_recorded: []  # fields the municipality does not record at all")
    return lines


def draft_mapping(intake: ExportTable, outcomes: ExportTable | None = None) -> Draft:
    """A mapping file proposed from the export's header and words (see the module's rules)."""
    tables = [("intake", intake)] + ([("outcomes", outcomes)] if outcomes is not None else [])
    drafts = [(draft_section(t.frame, name), t) for name, t in tables]
    sources = " and ".join(t.name for _, t in tables)
    lines = [
        f"# Proposed by `riskscreen mapping draft` from {sources}. Review every line before",
        "# use: suggestions are commented out until a person decides, and each item under",
        '# "Not placed" at the end needs a decision.',
        "mapping_version: 1",
    ]
    if any(d.identity is not None for d, _ in drafts):
        lines.append("# secret_file: /outside/the/project/case-ref.key  # the hash's key")
    unplaced = [f"{d.name}: {item}" for d, _ in drafts for item in d.unplaced]
    for d, t in drafts:
        lines += _section_yaml(d, t)
    lines += ["# Not placed:", *[f"#   {item}" for item in unplaced]] if unplaced else []
    return Draft("\n".join(lines) + "\n", unplaced)
