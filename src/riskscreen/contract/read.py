"""Reading an export's tables as they are, before anything interprets a cell.

CSV cells arrive as text and Parquet columns typed; what they mean is decided by `cells` and
`data`, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd


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
            f"{path.name}: unsupported file type {path.suffix!r}; use .csv or .parquet"
        )
    try:
        return reader(path)
    except (OSError, ValueError) as exc:
        raise TableReadError(f"{path.name}: cannot be read ({exc})") from exc
