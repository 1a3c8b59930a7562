"""The intake records every benchmark sends: synthetic people, as JSON bodies for each server.

All servers get the same people in the same order. riskscreen and the no-op endpoint get the
full `POST /v1/scores` body; `mlflow models serve` gets the model's feature fields as
`{"dataframe_records": [...]}` (what its signature accepts).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson

RECORD_SEED = 20_251_122


def intake_records(n: int, seed: int = RECORD_SEED) -> list[dict[str, Any]]:
    """`n` synthetic intake records as plain JSON-able dicts (case_ref included)."""
    from riskscreen.contract.schema import INTAKE_FIELDS
    from riskscreen.synth.generate import generate_cohort

    frame = generate_cohort(max(n, 100), seed).intake.head(n)
    records = []
    for row in frame.to_dict("records"):
        records.append({f.name: _plain(row[f.name], f.kind) for f in INTAKE_FIELDS})
    return records


def _plain(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "date":
        return (value.date() if hasattr(value, "date") else value).isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind in ("category", "string") and value is not None:
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def score_body(record: dict[str, Any]) -> bytes:
    """The `POST /v1/scores` body: case reference beside the intake mapping."""
    intake = {k: v for k, v in record.items() if k != "case_ref"}
    return orjson.dumps({"case_ref": record["case_ref"], "intake": intake})


def mlflow_body(record: dict[str, Any], features: tuple[str, ...]) -> bytes:
    """The `POST /invocations` body with only the model's feature fields."""
    return orjson.dumps({"dataframe_records": [{f: record[f] for f in features}]})
