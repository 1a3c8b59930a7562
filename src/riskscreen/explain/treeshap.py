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

This module is the explainer's public face and its check against LightGBM; the dump is read into
flat arrays in `tree_dump`, and the compiled kernels that fill the tables and explain rows are in
`treeshap_kernels`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import lightgbm as lgb
import numpy as np

from riskscreen.explain.tree_dump import Leaves, Nodes, UnsupportedModel, flatten, tabulate
from riskscreen.explain.treeshap_kernels import CATEGORICAL, explain_rows

__all__ = [
    "EXPLAINER_ID",
    "MIN_ROWS_PER_THREAD",
    "PROBE_ROWS",
    "LeafTables",
    "UnsupportedModel",
    "build",
]

# Names the arithmetic: bump it whenever a change could alter any output bit, so that a replay
# of an audit record can tell which explainer produced it.
EXPLAINER_ID = "leaf-tables/1"
# A thread pool costs more than it saves on fewer rows than this per thread.
MIN_ROWS_PER_THREAD = 1024
# At least this many probe rows `build` checks the tables with, against LightGBM's pred_contrib.
PROBE_ROWS = 128


@dataclass(frozen=True)
class LeafTables:
    """The tables of one booster; `contributions` is LightGBM's `pred_contrib`, faster."""

    num_features: int
    expected_value: float
    nodes: Nodes
    leaves: Leaves

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
            explain_rows(x, out, self.expected_value, *self.nodes, *self.leaves)
            return out
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(np.int64)
        with ThreadPoolExecutor(threads) as pool:
            parts = [
                pool.submit(
                    explain_rows, x[a:b], out[a:b], self.expected_value, *self.nodes, *self.leaves
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
    nodes, tree_starts, leaf_list, expected_value = flatten(dump["tree_info"])
    leaves = tabulate(leaf_list, nodes, tree_starts)
    tables = LeafTables(booster.num_feature(), expected_value, nodes, leaves)
    _check_against_lightgbm(tables, booster)
    return tables


# --- the check against LightGBM ------------------------------------------------------------


def _probe_rows(nodes: Nodes, num_features: int) -> np.ndarray:
    """Rows that meet every split at and just past its threshold, every category and the next
    code, missing values, zeros and negatives: each value at least once, in random combinations
    (fixed seed)."""
    candidates: list[list[float]] = [[np.nan, 0.0, -1.0] for _ in range(num_features)]
    for n, f in enumerate(nodes.feature):
        if nodes.rule[n] == CATEGORICAL:
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
