"""The compiled kernels of the leaf tables (`treeshap`): filling them and explaining rows.

Why a module of their own: they are numba code, compiled once and cached on disk beside this
file, and numba keys that cache on this file alone. So every constant they compile in (the rule
codes of a split, LightGBM's zero threshold, the most path features a table takes) is defined
here: a change to any of them changes this file and so recompiles the kernels, where a constant
imported from another file would leave a stale kernel in the cache.

They take the arrays one by one: numba types a tuple argument in Python on every call (tens of
µs) and re-counts references to arrays taken out of it inside loops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

log = logging.getLogger(__name__)

# A leaf's table has 2^d × d entries: beyond this many distinct path features it is refused.
MAX_PATH_FEATURES = 12

# How a split node decides (`tree_dump.Nodes.rule`): numerical by missing type, or categorical.
NUMERICAL_NONE, NUMERICAL_ZERO, NUMERICAL_NAN, CATEGORICAL = 0, 1, 2, 3
_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold: the float 1e-35f


def _kernel(fn: Callable[..., None]) -> Any:
    """Compiled without the GIL, and cached on disk where numba finds a writable place (beside
    this file, NUMBA_CACHE_DIR or the user's cache) so that a process loads it instead of
    compiling; where there is none (a read-only install), compiled anew in each process rather
    than failing at import."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        log.warning("%s; compiling it in every process", exc)
        return numba.njit(nogil=True)(fn)


@_kernel
def fill_tables(
    table: np.ndarray,
    table_start: np.ndarray,
    feature_start: np.ndarray,
    value: np.ndarray,
    zero: np.ndarray,
    weights: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Every leaf's contributions for every pattern of met conditions (bit k: slot k met).

    phi_k = v·(o_k − z_k)·Σ_{S ⊆ others} w(|S|)·Π_{j∈S} o_j·Π_{j∉S} z_j, the sum taken as the
    coefficients of Π_{j≠k} (z_j + t·o_j) in t, weighted by w(power of t).
    """
    poly = np.empty(MAX_PATH_FEATURES + 1)
    for leaf in range(value.shape[0]):
        f0 = feature_start[leaf]
        d = feature_start[leaf + 1] - f0
        for bits in range(1 << d):
            for k in range(d):
                poly[:] = 0.0
                poly[0] = 1.0
                size = 0
                for j in range(d):
                    if j == k:
                        continue
                    one = 1.0 if (bits >> j) & 1 else 0.0
                    for s in range(size + 1, 0, -1):
                        poly[s] = poly[s] * zero[f0 + j] + poly[s - 1] * one
                    poly[0] = poly[0] * zero[f0 + j]
                    size += 1
                total = 0.0
                for s in range(d):
                    total += weights[d, s] * poly[s]
                one = 1.0 if (bits >> k) & 1 else 0.0
                table[table_start[leaf] + bits * d + k] = value[leaf] * (one - zero[f0 + k]) * total


@numba.njit(inline="always")
def _goes_left(
    v: float,
    rule: int,
    threshold: float,
    default_left: bool,
    category_bits: np.ndarray,
    first_word: int,
    words: int,
) -> bool:  # pragma: no cover - compiled
    """LightGBM's Tree::NumericalDecision / CategoricalDecision on x86-64, bit for bit."""
    if rule == CATEGORICAL:
        # static_cast<int> of NaN or of a value beyond int is INT_MIN on x86-64, and LightGBM
        # sends a negative int right; (-1, 0) truncates to category 0 (Common::FindInBitset).
        if not -1.0 < v < 2147483648.0:
            return False
        category = int(v)
        if category >> 5 >= words:
            return False
        return (category_bits[first_word + (category >> 5)] >> (category & 31)) & 1 == 1
    if np.isnan(v):
        if rule == NUMERICAL_NAN:
            return default_left
        v = 0.0
    elif -_ZERO_THRESHOLD <= v <= _ZERO_THRESHOLD:
        v = 0.0  # LightGBM's C API drops near-zero entries of a dense row: they read as 0
    if rule == NUMERICAL_ZERO and v == 0.0:
        return default_left
    return v <= threshold


@_kernel
def explain_rows(
    x: np.ndarray,
    out: np.ndarray,
    expected_value: float,
    # tree_dump.Nodes
    node_feature: np.ndarray,
    threshold: np.ndarray,
    rule: np.ndarray,
    default_left: np.ndarray,
    category_start: np.ndarray,
    category_bits: np.ndarray,
    # tree_dump.Leaves
    tree_node_start: np.ndarray,
    tree_leaf_start: np.ndarray,
    path_start: np.ndarray,
    path_node: np.ndarray,
    path_left: np.ndarray,
    path_slot: np.ndarray,
    feature_start: np.ndarray,
    feature: np.ndarray,
    table_start: np.ndarray,
    table: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Add every tree's contributions of rows `x` into the zeroed `out` (n, k + 1)."""
    n_trees = tree_node_start.shape[0] - 1
    most_nodes = 1
    for t in range(n_trees):
        most_nodes = max(most_nodes, tree_node_start[t + 1] - tree_node_start[t])
    went_left = np.empty(most_nodes, np.bool_)
    # Blocks of rows, trees outer: one tree's tables stay in cache while a block passes.
    for r0 in range(0, x.shape[0], 64):
        r1 = min(r0 + 64, x.shape[0])
        for t in range(n_trees):
            n0 = tree_node_start[t]
            for r in range(r0, r1):
                for n in range(n0, tree_node_start[t + 1]):
                    went_left[n - n0] = _goes_left(
                        x[r, node_feature[n]],
                        rule[n],
                        threshold[n],
                        default_left[n],
                        category_bits,
                        category_start[n],
                        category_start[n + 1] - category_start[n],
                    )
                for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
                    f0 = feature_start[leaf]
                    d = feature_start[leaf + 1] - f0
                    bits = (1 << d) - 1
                    for p in range(path_start[leaf], path_start[leaf + 1]):  # branch-free
                        missed = np.int64(went_left[path_node[p]] != path_left[p])
                        bits &= ~(missed << path_slot[p])
                    row = table_start[leaf] + bits * d
                    for j in range(d):
                        out[r, feature[f0 + j]] += table[row + j]
        out[r0:r1, -1] = expected_value
