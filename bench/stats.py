"""Small, dependency-free statistics for benchmark figures.

Every figure in the results is a `Summary` over repeated runs (median, min, max, n). Ratios of
two alternating series are taken per round (A_i / B_i, measured back to back) and then
summarised, so slow drift of the machine cancels within each pair instead of biasing one side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Median, min and max of a series of repeated measurements."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scaled(self, factor: float) -> Summary:
        """The same summary in other units (e.g. seconds -> milliseconds)."""
        lo, hi = sorted((self.min * factor, self.max * factor))
        return Summary(self.median * factor, lo, hi, self.n)


def median(values: Sequence[float]) -> float:
    """The middle value (mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("median of an empty series")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty series")
    if not 0 <= q <= 100:
        raise ValueError("q must lie in [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(values: Sequence[float]) -> Summary:
    """Summary of finite values; NaNs (a failed round) are left out but counted as missing."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Summary(math.nan, math.nan, math.nan, 0)
    return Summary(median(finite), min(finite), max(finite), len(finite))


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """A_i / B_i for rounds measured back to back; pairs with a zero or missing side dropped."""
    if len(a) != len(b):
        raise ValueError("paired series must have the same length")
    out = []
    for x, y in zip(a, b, strict=True):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)) or y == 0:
            continue
        out.append(x / y)
    return out


def ratio_summary(a: Sequence[float], b: Sequence[float]) -> Summary:
    """Summary of the per-round ratios A_i / B_i."""
    return summarise(paired_ratios(a, b))


def alternate(labels: Sequence[str], round_index: int) -> list[str]:
    """The order of targets in one round: rotated each round so no target is always first."""
    if not labels:
        return []
    k = round_index % len(labels)
    return [*labels[k:], *labels[:k]]
