"""Breaches of the data contract, located as a person finds them in the file.

One type for every problem the readers and validators find, so that the CLI, training and (for
a mapping) the coverage report list them alike, and so that the rule that no identity number
ever reaches a message is kept in one place (`Problem.__post_init__`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskscreen.contract.identity import looks_like_personal_number

REDACTED = "<redacted>"
MAX_LISTED_PROBLEMS = 50
_MAX_SHOWN_CHARS = 40


@dataclass(frozen=True)
class Problem:
    """One breach of the data contract, located as a person finds it in the file.

    `row` is the 1-based data row (header not counted) or None for a whole-column problem.
    A value or column name that looks like a personal identity number is replaced by
    `<redacted>` on creation, so that no problem, message or log line can carry one.
    An export read through a mapping names its own column; `field` is then the contract field
    the column feeds, and `mapping` the place in the mapping that made it so
    ("mapping.yaml line 12"), so the fix can be made where the cause is.
    """

    file: str
    row: int | None
    column: str | None
    value: object
    reason: str
    field: str | None = None
    mapping: str | None = None

    def __post_init__(self) -> None:
        for name in ("value", "column"):  # an unknown column's header is the file's text too
            text = getattr(self, name)
            if text is not None and looks_like_personal_number(_in_full(text)):
                object.__setattr__(self, name, REDACTED)

    def describe(self) -> str:
        """A one-line message, e.g. `intake.csv: data row 17, column age: value 70 is ...`."""
        place = [f"data row {self.row}"] if self.row is not None else []
        if self.column is not None:
            field = self.field if self.field != self.column else None
            place.append(f"column {self.column}{_aside([field, self.mapping])}")
        elif self.field is not None:
            place.append(f"field {self.field}{_aside([self.mapping])}")
        elif self.mapping is not None:
            place.append(self.mapping)
        what = (
            self.reason if self.value is None else f"value {show_value(self.value)} {self.reason}"
        )
        return ": ".join([self.file, *([", ".join(place)] if place else []), what])


def _aside(parts: list[str | None]) -> str:
    """` (age; mapping.yaml line 9)`: the field and mapping line behind an export's column."""
    shown = [p for p in parts if p is not None]
    return f" ({'; '.join(shown)})" if shown else ""


class DataValidationError(ValueError):
    """The tables break the data contract; `problems` lists every breach found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = [p.describe() for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        super().__init__(f"{len(self.problems)} data contract problem(s):\n" + "\n".join(lines))


def _in_full(value: object) -> str:
    """A cell as a message writes it, before shortening: a date without its midnight (whose
    digits, `2019-01-01 00`, would read as ten to the identity-number guard)."""
    if isinstance(value, pd.Timestamp | dt.date) and value == pd.Timestamp(value).normalize():
        return pd.Timestamp(value).date().isoformat()
    return str(value)


def show_value(value: object) -> str:
    """How a cell is quoted in a message: as written, quoted only if blanks would hide it."""
    text = _in_full(value)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[: _MAX_SHOWN_CHARS - 1] + "…"
    return text if text and text.strip() == text else repr(text)


def rows_of(mask: pd.Series) -> list[int]:
    """The 0-based positions where `mask` is set (a problem's row is the position + 1)."""
    return [int(i) for i in np.flatnonzero(mask.to_numpy(dtype=bool))]
