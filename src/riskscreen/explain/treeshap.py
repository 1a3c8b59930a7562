"""Exact path-dependent TreeSHAP of a LightGBM booster, computed from per-leaf tables.

Why: the exact explanation is the dominant cost of every score, and LightGBM's `pred_contrib`
(which `shap.TreeExplainer` also calls for a LightGBM booster) costs O(L·D²) per tree and row.
For a leaf with d distinct features on its path, that leaf's contribution to each of them
depends on the row only through d bits: whether the row satisfies the path's conditions on each
feature. So the Shapley values TreeSHAP's EXTEND/UNWIND recursion finds on the fly are tabulated
once per model (2^d × d numbers per leaf; the idea of Fast TreeSHAP v2, Yang 2021), and a row then
costs one decision per node and one table row per leaf: O(N + L·D) per tree.

Exactness: the tables hold the same Shapley values of the same path-dependent expectation (covers
are LightGBM's data counts), so contributions equal `pred_contrib` up to float rounding (~1e-15)
and the expected value equals it bit for bit (summed in LightGBM's order). Rows are routed as
LightGBM's predictor routes them (`Tree::NumericalDecision` / `CategoricalDecision` as compiled
for x86-64). A model the tables cannot represent exactly is refused with `UnsupportedModel`, and
`build` checks the tables against `pred_contrib` on probe rows at every threshold before
returning, so a platform or model that routes differently is refused, not explained wrongly.
Each row's numbers depend only on that row, not on the batch it came in or the thread count.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from math import factorial
from typing import Any, NamedTuple

import lightgbm as lgb
import numba
import numpy as np

log = logging.getLogger(__name__)

# Names the arithmetic: bump it whenever a change could alter any output bit, so that a replay
# of an audit record can tell which explainer produced it.
EXPLAINER_ID = "leaf-tables/1"
# A leaf's table has 2^d × d entries: beyond this many distinct path features it is refused.
MAX_PATH_FEATURES = 12
# All tables of one model together; a larger model is refused rather than held in memory.
MAX_TABLE_BYTES = 256 * 2**20
# Categorical splits on larger category codes are refused (LightGBM holds them as bitsets too).
MAX_CATEGORY = 2**16
# A thread pool costs more than it saves on fewer rows than this per thread.
MIN_ROWS_PER_THREAD = 1024
# At least this many probe rows `build` checks the tables with, against LightGBM's pred_contrib.
PROBE_ROWS = 128

_NUMERICAL_NONE, _NUMERICAL_ZERO, _NUMERICAL_NAN, _CATEGORICAL = 0, 1, 2, 3
_MISSING_TYPES = {"None": _NUMERICAL_NONE, "Zero": _NUMERICAL_ZERO, "NaN": _NUMERICAL_NAN}
_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold: the float 1e-35f


class UnsupportedModel(ValueError):
    """The booster has a tree the leaf tables cannot represent exactly; use `pred_contrib`."""


class _Nodes(NamedTuple):
    """The split nodes of all trees, tree after tree."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64, numerical splits
    rule: np.ndarray  # int8: numerical by missing type, or categorical
    default_left: np.ndarray  # bool, where missing values go (numerical splits)
    category_start: np.ndarray  # int64, n + 1 offsets into `category_bits`
    category_bits: np.ndarray  # uint32, per categorical split the bitset of categories going left


class _Leaves(NamedTuple):
    """Per tree its nodes and leaves; per leaf its path, features and table (CSR offsets)."""

    tree_node_start: np.ndarray  # int64, trees + 1
    tree_leaf_start: np.ndarray  # int64, trees + 1
    path_start: np.ndarray  # int64, leaves + 1
    path_node: np.ndarray  # int64, the node (local to its tree) of each path step
    path_left: np.ndarray  # bool, whether the path goes left there
    path_slot: np.ndarray  # int64, which of the leaf's distinct features the node splits
    feature_start: np.ndarray  # int64, leaves + 1
    feature: np.ndarray  # int64, the leaf's distinct path features, by slot
    table_start: np.ndarray  # int64, leaves + 1
    table: np.ndarray  # float64, per leaf 2^d rows (bit k: condition on slot k met) × d


@dataclass(frozen=True)
class LeafTables:
    """The tables of one booster; `contributions` is LightGBM's `pred_contrib`, faster."""

    num_features: int
    expected_value: float
    nodes: _Nodes
    leaves: _Leaves

    def contributions(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Raw-score contributions (n, k + 1), the expected value last, as `pred_contrib`.

        Args:
            x: the (n, k) encoded rows.
            num_threads: LightGBM's convention, <= 0 for every core. Batches are split by rows
                over threads (the kernel releases the GIL); small batches stay on one thread.
        """
        # One kernel signature (C-ordered, writeable float64), so the one compiled at build is
        # the one every call uses.
        if not (x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable):
            x = np.require(x, np.float64, ["C_CONTIGUOUS", "WRITEABLE"])
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected rows of {self.num_features} features, got {x.shape}")
        out = np.zeros((x.shape[0], self.num_features + 1))
        threads = min(_threads(num_threads), max(1, x.shape[0] // MIN_ROWS_PER_THREAD))
        if threads == 1:
            _explain_rows(x, out, self.expected_value, *self.nodes, *self.leaves)
            return out
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(np.int64)
        with ThreadPoolExecutor(threads) as pool:
            parts = [
                pool.submit(
                    _explain_rows, x[a:b], out[a:b], self.expected_value, *self.nodes, *self.leaves
                )
                for a, b in pairwise(bounds)
            ]
            for part in parts:
                part.result()
        return out


def _threads(num_threads: int) -> int:
    """LightGBM's convention: a positive count as given, 0 or less for every usable core."""
    if num_threads > 0:
        return num_threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build(booster: lgb.Booster) -> LeafTables:
    """Tabulate every leaf of `booster` and check the tables against LightGBM's pred_contrib
    (which also compiles the kernel, or loads it from numba's cache).

    Raises:
        UnsupportedModel: a tree the tables cannot hold, or tables that disagree with
            `pred_contrib` on the probe rows.
    """
    dump = booster.dump_model()
    if dump.get("num_tree_per_iteration", 1) != 1:
        raise UnsupportedModel("only single-output models (one tree per iteration)")
    if dump.get("average_output"):
        raise UnsupportedModel("random-forest models (averaged output)")
    nodes, tree_starts, leaf_list, expected_value = _flatten(dump["tree_info"])
    leaves = _tabulate(leaf_list, nodes, tree_starts)
    tables = LeafTables(booster.num_feature(), expected_value, nodes, leaves)
    _check_against_lightgbm(tables, booster)
    return tables


# --- from LightGBM's dump to flat arrays ---------------------------------------------------


class _Leaf(NamedTuple):
    value: float
    tree: int
    path: list[tuple[int, bool, float]]  # (node, goes left, zero fraction of the step), root first


def _count(node: dict[str, Any]) -> int:
    count = node.get("internal_count", node.get("leaf_count"))
    if not count:
        raise UnsupportedModel("a tree without data counts (covers) in its nodes")
    return int(count)


def _flatten(trees: list[dict[str, Any]]) -> tuple[_Nodes, list[int], list[_Leaf], float]:
    """The split nodes (tree after tree), where each tree's nodes start, the leaves with their
    paths, and the expected value of the ensemble."""
    nodes: list[dict[str, Any]] = []
    starts: list[int] = []
    leaves: list[_Leaf] = []
    expected_value = 0.0
    for t, tree in enumerate(trees):
        starts.append(len(nodes))
        root = tree["tree_structure"]
        if "split_index" not in root:  # a single leaf: its value is all expected value
            expected_value += float(root["leaf_value"])
            continue
        total = float(_count(root))
        weighted: dict[int, float] = {}
        stack: list[tuple[dict[str, Any], list[tuple[int, bool, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "split_index" not in node:
                if "leaf_coeff" in node:
                    raise UnsupportedModel("linear trees (pred_contrib refuses them too)")
                leaves.append(_Leaf(float(node["leaf_value"]), t, path))
                weighted[node["leaf_index"]] = (_count(node) / total) * node["leaf_value"]
                continue
            local = len(nodes) - starts[-1]
            nodes.append(node)
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                stack.append((child, [*path, (local, left, _count(child) / _count(node))]))
        tree_value = 0.0
        for leaf_index in sorted(weighted):  # Tree::ExpectedValue's order: LightGBM's sum, exactly
            tree_value += weighted[leaf_index]
        expected_value += tree_value
    return _node_arrays(nodes), [*starts, len(nodes)], leaves, expected_value


def _node_arrays(nodes: list[dict[str, Any]]) -> _Nodes:
    threshold = np.zeros(len(nodes))
    rule = np.zeros(len(nodes), np.int8)
    category_start = np.zeros(len(nodes) + 1, np.int64)
    bitsets: list[np.ndarray] = []
    for i, node in enumerate(nodes):
        if node["decision_type"] == "==":
            rule[i] = _CATEGORICAL
            bitsets.append(_bitset([int(c) for c in str(node["threshold"]).split("||")]))
        elif node["decision_type"] == "<=" and node["missing_type"] in _MISSING_TYPES:
            rule[i] = _MISSING_TYPES[node["missing_type"]]
            threshold[i] = float(node["threshold"])
        else:
            raise UnsupportedModel(f"a split {node['decision_type']!r} / {node['missing_type']!r}")
        category_start[i + 1] = category_start[i] + (
            len(bitsets[-1]) if rule[i] == _CATEGORICAL else 0
        )
    return _Nodes(
        feature=np.array([node["split_feature"] for node in nodes], np.int64),
        threshold=threshold,
        rule=rule,
        default_left=np.array([bool(node["default_left"]) for node in nodes], np.bool_),
        category_start=category_start,
        category_bits=np.concatenate(bitsets) if bitsets else np.zeros(0, np.uint32),
    )


def _bitset(categories: list[int]) -> np.ndarray:
    """The categories as LightGBM's bitset of 32-bit words (bit c % 32 of word c // 32)."""
    if min(categories) < 0 or max(categories) >= MAX_CATEGORY:
        raise UnsupportedModel(
            f"a categorical split on category {max(categories)} (the tables take 0 to "
            f"{MAX_CATEGORY - 1})"
        )
    bits = np.zeros(max(categories) // 32 + 1, np.uint32)
    for c in categories:
        bits[c // 32] |= np.uint32(1 << (c % 32))
    return bits


def _tabulate(leaf_list: list[_Leaf], nodes: _Nodes, tree_starts: list[int]) -> _Leaves:
    """Each leaf's path as (node, direction, feature slot) and its filled table."""
    path_start, feature_start, table_start = [0], [0], [0]
    path_node: list[int] = []
    path_left: list[bool] = []
    path_slot: list[int] = []
    features: list[int] = []
    zero_fractions: list[float] = []
    for leaf in leaf_list:
        slots: dict[int, int] = {}
        zero: list[float] = []
        for node, left, fraction in leaf.path:
            f = int(nodes.feature[tree_starts[leaf.tree] + node])
            if f not in slots:
                slots[f] = len(slots)
                zero.append(1.0)
            zero[slots[f]] *= fraction  # TreeSHAP's zero fraction of a repeated feature
            path_node.append(node)
            path_left.append(left)
            path_slot.append(slots[f])
        d = len(slots)
        if d > MAX_PATH_FEATURES:
            raise UnsupportedModel(
                f"tree {leaf.tree} has a leaf with {d} distinct features on its path "
                f"(the tables hold at most {MAX_PATH_FEATURES})"
            )
        path_start.append(len(path_node))
        features.extend(slots)
        zero_fractions.extend(zero)
        feature_start.append(len(features))
        table_start.append(table_start[-1] + (d << d))
    if table_start[-1] * 8 > MAX_TABLE_BYTES:
        raise UnsupportedModel(
            f"the tables would take {table_start[-1] * 8 / 2**20:.0f} MiB "
            f"(at most {MAX_TABLE_BYTES / 2**20:.0f} MiB)"
        )
    trees = np.bincount([leaf.tree for leaf in leaf_list], minlength=len(tree_starts) - 1)
    leaves = _Leaves(
        tree_node_start=np.array(tree_starts, np.int64),
        tree_leaf_start=np.concatenate([[0], np.cumsum(trees)]).astype(np.int64),
        path_start=np.array(path_start, np.int64),
        path_node=np.array(path_node, np.int64),
        path_left=np.array(path_left, np.bool_),
        path_slot=np.array(path_slot, np.int64),
        feature_start=np.array(feature_start, np.int64),
        feature=np.array(features, np.int64),
        table_start=np.array(table_start, np.int64),
        table=np.empty(table_start[-1]),
    )
    _fill_tables(
        leaves.table,
        leaves.table_start,
        leaves.feature_start,
        np.array([leaf.value for leaf in leaf_list]),
        np.array(zero_fractions),
        _SHAPLEY_WEIGHTS,
    )
    return leaves


# w[d, s] = s! (d - s - 1)! / d!, the Shapley weight of a coalition of s of d players.
_SHAPLEY_WEIGHTS = np.array(
    [
        [factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)]
        + [0.0] * (MAX_PATH_FEATURES - d)
        for d in range(MAX_PATH_FEATURES + 1)
    ]
)


# --- the kernels ---------------------------------------------------------------------------
# They take the arrays one by one: numba types a tuple argument in Python on every call (tens of
# µs) and re-counts references to arrays taken out of it inside loops.


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
def _fill_tables(
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
    if rule == _CATEGORICAL:
        # static_cast<int> of NaN or of a value beyond int is INT_MIN on x86-64, and LightGBM
        # sends a negative int right; (-1, 0) truncates to category 0 (Common::FindInBitset).
        if not -1.0 < v < 2147483648.0:
            return False
        category = int(v)
        if category >> 5 >= words:
            return False
        return (category_bits[first_word + (category >> 5)] >> (category & 31)) & 1 == 1
    if np.isnan(v):
        if rule == _NUMERICAL_NAN:
            return default_left
        v = 0.0
    elif -_ZERO_THRESHOLD <= v <= _ZERO_THRESHOLD:
        v = 0.0  # LightGBM's C API drops near-zero entries of a dense row: they read as 0
    if rule == _NUMERICAL_ZERO and v == 0.0:
        return default_left
    return v <= threshold


@_kernel
def _explain_rows(
    x: np.ndarray,
    out: np.ndarray,
    expected_value: float,
    # _Nodes
    node_feature: np.ndarray,
    threshold: np.ndarray,
    rule: np.ndarray,
    default_left: np.ndarray,
    category_start: np.ndarray,
    category_bits: np.ndarray,
    # _Leaves
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


# --- the check against LightGBM ------------------------------------------------------------


def _probe_rows(nodes: _Nodes, num_features: int) -> np.ndarray:
    """Rows that meet every split at and just past its threshold, every category and the next
    code, missing values, zeros and negatives: each value at least once, in random combinations
    (fixed seed)."""
    candidates: list[list[float]] = [[np.nan, 0.0, -1.0] for _ in range(num_features)]
    for n, f in enumerate(nodes.feature):
        if nodes.rule[n] == _CATEGORICAL:
            words = nodes.category_bits[nodes.category_start[n] : nodes.category_start[n + 1]]
            cats = [32 * w + b for w, word in enumerate(words) for b in range(32) if word >> b & 1]
            candidates[f].extend(float(c) + step for c in cats for step in (0.0, 1.0))
        else:
            t = float(nodes.threshold[n])
            candidates[f].extend((t, float(np.nextafter(t, np.inf))))
    values = [np.unique(c) for c in candidates]  # (one NaN each)
    rows = max([PROBE_ROWS, *(len(v) for v in values)])
    rng = np.random.default_rng(0)
    columns = [np.resize(rng.permutation(v), rows) for v in values]
    return np.column_stack(columns) if columns else np.empty((rows, 0))


def _check_against_lightgbm(tables: LeafTables, booster: lgb.Booster) -> None:
    rows = _probe_rows(tables.nodes, tables.num_features)
    ours = tables.contributions(rows)
    theirs = np.asarray(booster.predict(rows, pred_contrib=True, num_threads=1))
    gap = float(np.abs(ours - theirs).max(initial=0.0))
    if not gap <= 1e-9 * max(1.0, float(np.abs(theirs).max(initial=0.0))):
        raise UnsupportedModel(
            f"the tables differ from LightGBM's pred_contrib by {gap!r} on probe rows"
        )
