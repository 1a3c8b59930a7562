"""The audit record format: the stored text of a record and the hash that chains it.

Pure values and functions, no database, so that the format can be read (and a hash recomputed)
without the store; the design of the log is described in :mod:`riskscreen.audit.chain`.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record, exactly as hashed; ``payload`` parses the stored JSON text."""

    seq: int
    record_id: str
    kind: str
    created_at: str
    payload_json: str
    prev_hash: str
    hash: str

    @property
    def payload(self) -> dict[str, Any]:
        """The caller's payload as a dict (parsed anew on each access)."""
        parsed: dict[str, Any] = orjson.loads(self.payload_json)
        return parsed


def canonical_json(payload: Mapping[str, Any]) -> str:
    """Serialise a payload to the one text that is stored and hashed.

    Keys sorted, no whitespace, UTF-8, floats in their shortest round-trip form. NaN and
    infinities are refused rather than silently turned into ``null``.
    """
    if not isinstance(payload, Mapping):
        raise TypeError("an audit payload must be a JSON object")
    _reject_non_finite(payload)
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"audit payload is not plain JSON: {exc}") from exc


_JSON_LEAVES = frozenset({str, int, bool, type(None)})


def _reject_non_finite(payload: Any) -> None:
    # Runs on every record, so plain JSON types are tested by exact type first; subclasses
    # (numpy floats, other Mappings) fall through to the isinstance checks.
    stack = [payload]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind in _JSON_LEAVES:
            continue
        if kind is dict:
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("audit payloads may not contain NaN or infinity")
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)


def record_hash(
    *, seq: int, record_id: str, kind: str, created_at: str, payload_json: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of a record's canonical serialisation; covers every stored column."""
    material = {
        "created_at": created_at,
        "kind": kind,
        "payload": payload_json,
        "prev_hash": prev_hash,
        "record_id": record_id,
        "seq": seq,
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def utc_text(moment: datetime) -> str:
    """An aware datetime as the stored ``created_at`` text (UTC, microseconds)."""
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime; audit times are UTC")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry(kind: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, canonical payload JSON), or ValueError/TypeError if either is unacceptable."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"audit kind must match {_KIND.pattern}: {kind!r}")
    return kind, canonical_json(payload)


def continue_chain(
    last: tuple[int, str] | None, entries: Sequence[tuple[str, str]]
) -> list[AuditRecord]:
    """The records that continue the chain after ``last`` (seq, hash); call it under the lock."""
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    records = []
    for kind, payload_json in entries:
        seq += 1
        record_id, created_at = str(uuid.uuid4()), utc_text(datetime.now(UTC))
        digest = record_hash(
            seq=seq,
            record_id=record_id,
            kind=kind,
            created_at=created_at,
            payload_json=payload_json,
            prev_hash=prev_hash,
        )
        records.append(
            AuditRecord(seq, record_id, kind, created_at, payload_json, prev_hash, digest)
        )
        prev_hash = digest
    return records
