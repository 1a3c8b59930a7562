"""Turning intake data into the model's numeric matrix, one column per intake field.

One column per field keeps the explanation honest by construction: a field's SHAP value is its
column's contribution, with nothing to re-assemble. Categories become their index in the
declaration (ordered ones keep their order, so monotone constraints mean something; unordered
ones are declared categorical to the trees). The frame path serves training and batch scoring;
the record path serves the API without building a pandas frame (about 2 ms saved per request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscreen.contract.schema import FIELDS_BY_NAME, IntakeField


@dataclass(frozen=True)
class FeatureSpec:
    """The model's columns: which intake fields, in which order, and how each is coded."""

    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [f for f in self.fields if f not in FIELDS_BY_NAME]
        if unknown:
            raise ValueError(f"unknown intake fields in the feature set: {unknown}")
        not_allowed = [f for f in self.fields if FIELDS_BY_NAME[f].role in ("key", "date")]
        if not_allowed:
            raise ValueError(f"keys and dates can never be features: {not_allowed}")

    @property
    def declarations(self) -> tuple[IntakeField, ...]:
        return tuple(FIELDS_BY_NAME[f] for f in self.fields)

    def categorical_indices(self) -> list[int]:
        """Columns the trees should split as unordered categories."""
        return [
            i for i, f in enumerate(self.declarations) if f.kind == "category" and not f.ordered
        ]

    def monotone_constraints(self) -> list[int]:
        """The declared direction of risk per column (0 where none is declared)."""
        return [int(f.monotone) for f in self.declarations]


def _encode_column(series: pd.Series, field: IntakeField) -> np.ndarray:
    if field.kind == "category":
        codes = pd.Categorical(series, categories=list(field.categories)).codes
        return np.where(codes < 0, np.nan, codes).astype(np.float64)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def encode_frame(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The (n, k) float matrix for a canonical intake frame; missing categories become NaN."""
    columns = [_encode_column(frame[f.name], f) for f in spec.declarations]
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class RecordEncoder:
    """Encodes one validated record (a mapping of field to value) straight into a numpy row."""

    def __init__(self, spec: FeatureSpec) -> None:
        self._spec = spec
        self._codes: list[dict[Any, float] | None] = [
            {c: float(i) for i, c in enumerate(f.categories)} if f.kind == "category" else None
            for f in spec.declarations
        ]

    def encode(self, record: Mapping[str, Any]) -> np.ndarray:
        """A (1, k) float row; the record is assumed validated against the schema already."""
        row = np.empty((1, len(self._codes)), dtype=np.float64)
        for i, (name, codes) in enumerate(zip(self._spec.fields, self._codes, strict=True)):
            value = record[name]
            if value is None:
                row[0, i] = np.nan
            elif codes is not None:
                row[0, i] = codes[value]
            else:
                row[0, i] = float(value)
        return row


def field_values(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The subset of a record that the model sees, for audit records and explanations."""
    return {f: record[f] for f in fields}
