"""Breaches of the data contract, located as a person finds them in the file.

One type for every problem the readers and validators find, so that the CLI, training and (for
a mapping) the coverage report list them alike, and so that the rule that no identity number
ever reaches a message is kept in one place (`Problem.__post_init__`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

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
    """

    file: str
    row: int | None
    column: str | None
    value: object
    reason: str

    def __post_init__(self) -> None:
        for name in ("value", "column"):  # an unknown column's header is the file's text too
            text = getattr(self, name)
            if text is not None and looks_like_personal_number(str(text)):
                object.__setattr__(self, name, REDACTED)

    def describe(self) -> str:
        """A one-line message, e.g. `intake.csv: data row 17, column age: value 70 is ...`."""
        place = [f"data row {self.row}"] if self.row is not None else []
        place += [f"column {self.column}"] if self.column is not None else []
        what = (
            self.reason if self.value is None else f"value {show_value(self.value)} {self.reason}"
        )
        return ": ".join([self.file, *([", ".join(place)] if place else []), what])


class DataValidationError(ValueError):
    """The tables break the data contract; `problems` lists every breach found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = [p.describe() for p in self.problems[:MAX_LISTED_PROBLEMS]]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"... and {len(self.problems) - MAX_LISTED_PROBLEMS} more")
        super().__init__(f"{len(self.problems)} data contract problem(s):\n" + "\n".join(lines))


def show_value(value: object) -> str:
    """How a cell is quoted in a message: as written, quoted only if blanks would hide it."""
    if isinstance(value, pd.Timestamp | dt.date) and value == pd.Timestamp(value).normalize():
        return pd.Timestamp(value).date().isoformat()
    text = str(value)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[: _MAX_SHOWN_CHARS - 1] + "…"
    return text if text and text.strip() == text else repr(text)
