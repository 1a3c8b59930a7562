"""Verification of the chain, one stored row at a time, apart from the store that reads them.

:meth:`riskscreen.audit.chain.AuditStore.verify` feeds the rows in seq order to a
:class:`ChainChecker`, which holds no database state and remembers only the previous hash, so a
whole log is checked in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row

from riskscreen.audit.records import GENESIS_HASH, record_hash


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a chain verification.

    ``first_bad_seq`` is the chain position where verification first failed: records
    ``1 .. first_bad_seq - 1`` are intact, and ``checked`` counts them (all records when ok).
    ``head`` is the last verified (seq, hash), worth publishing for later truncation checks.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head: tuple[int, str] | None = None


class ChainChecker:
    """Checks records one by one in stored seq order, remembering only the previous hash."""

    def __init__(self, expected_head: tuple[int, str] | None) -> None:
        self.expected_head = expected_head
        self.next_seq = 1
        self.prev_hash = GENESIS_HASH

    def _fail(self, reason: str) -> VerifyResult:
        checked = self.next_seq - 1
        head = (checked, self.prev_hash) if checked else None
        return VerifyResult(False, checked, self.next_seq, reason, head)

    def check(self, row: Row[Any]) -> VerifyResult | None:
        """None if the row continues the chain (and advances it), else the failure."""
        position = self.next_seq
        if row.seq != position:
            what = "missing record" if row.seq > position else "out-of-sequence record"
            return self._fail(f"expected record {position}, found seq {row.seq}: {what}")
        if row.prev_hash != self.prev_hash:
            return self._fail(f"prev_hash does not match the hash of record {position - 1}")
        recomputed = record_hash(
            seq=row.seq,
            record_id=row.record_id,
            kind=row.kind,
            created_at=row.created_at,
            payload_json=row.payload,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            return self._fail("stored hash does not match the record's content")
        if self._contradicts_head(position, row.hash):
            return self._fail("hash differs from the published head: the chain was rewritten")
        self.next_seq, self.prev_hash = position + 1, row.hash
        return None

    def _contradicts_head(self, seq: int, hash_: str) -> bool:
        head = self.expected_head
        return head is not None and head[0] == seq and head[1] != hash_

    def finish(self) -> VerifyResult:
        """The result once every stored record has passed."""
        checked = self.next_seq - 1
        if self.expected_head and self.expected_head[0] > checked:
            return self._fail(
                f"chain ends at {checked}, below the published head {self.expected_head[0]}: "
                "truncated"
            )
        return VerifyResult(True, checked, head=(checked, self.prev_hash) if checked else None)
