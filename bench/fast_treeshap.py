"""PROTOTYPE (bench only, not shipped): exact TreeSHAP for small LightGBM trees by leaf tables.

Why: exact path-dependent TreeSHAP is the dominant cost of every riskscreen score, and LightGBM's
`pred_contrib` (which `shap.TreeExplainer` also calls for a LightGBM booster) costs O(L·D²) per
tree and row. For a leaf with d distinct features on its path, the leaf's contribution to each
of those features depends on the row only through d bits: whether the row satisfies the path's
conditions on each feature ("one fractions"). The same identity that TreeSHAP's EXTEND/UNWIND
recursion evaluates on the fly can therefore be tabulated once per model (2^d × d numbers per
leaf; the idea of Fast TreeSHAP v2, Yang 2021), and a row then costs one decision per node and
one table row per leaf: O(N + L·D) per tree instead of O(L·D²).

Exactness: the tables hold the Shapley values of the path-dependent expectation exactly (same
covers as LightGBM: data counts), so the result equals `pred_contrib` up to float rounding
(measured ≤ 1e-12 on the test cohort, see `max_abs_diff`); the raw score falls out of the same
pass (the one leaf whose bits are all set), so additivity is by construction and the service can
still check it against `Booster.predict(raw_score=True)`.

Limits of the prototype: leaves with more than `MAX_PATH_FEATURES` distinct features on their
path fall back to LightGBM (table size 2^d); categorical splits on categories ≥ 64 too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

MAX_PATH_FEATURES = 12
_NUMERICAL, _CATEGORICAL = 0, 1
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO_THRESHOLD = 1e-35


class Unsupported(ValueError):
    """The model has a tree shape the prototype does not tabulate (fall back to LightGBM)."""


@dataclass
class _Tables:
    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_kind: np.ndarray
    node_default_left: np.ndarray
    node_missing: np.ndarray
    node_catmask: np.ndarray
    tree_node_start: np.ndarray
    leaf_value: np.ndarray
    leaf_path_start: np.ndarray
    path_node: np.ndarray
    path_left: np.ndarray
    path_slot: np.ndarray
    leaf_feat_start: np.ndarray
    leaf_feat: np.ndarray
    leaf_table_start: np.ndarray
    table: np.ndarray
    tree_leaf_start: np.ndarray
    bias: float


def _flatten(tree_info: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Nodes and root-to-leaf paths of every tree, in global numbering."""
    out: dict[str, list[Any]] = {
        k: [] for k in ("nodes", "leaves", "tree_node_start", "tree_leaf_start")
    }
    for tree in tree_info:
        out["tree_node_start"].append(len(out["nodes"]))
        out["tree_leaf_start"].append(len(out["leaves"]))
        root = tree["tree_structure"]
        total = root.get("internal_count", root.get("leaf_count"))
        stack: list[tuple[dict[str, Any], list[tuple[int, bool, float]]]] = [(root, [])]
        while stack:
            node, path = stack.pop()
            if "leaf_index" in node:
                out["leaves"].append((node["leaf_value"], node["leaf_count"], total, path))
                continue
            idx = len(out["nodes"])
            out["nodes"].append(node)
            count = node["internal_count"]
            for child, left in ((node["left_child"], True), (node["right_child"], False)):
                child_count = child.get("internal_count", child.get("leaf_count"))
                stack.append((child, [*path, (idx, left, child_count / count)]))
    out["tree_node_start"].append(len(out["nodes"]))
    out["tree_leaf_start"].append(len(out["leaves"]))
    return out


def _node_arrays(nodes: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    n = len(nodes)
    arrays = {
        "node_feature": np.zeros(n, np.int64),
        "node_threshold": np.zeros(n, np.float64),
        "node_kind": np.zeros(n, np.int8),
        "node_default_left": np.zeros(n, np.bool_),
        "node_missing": np.zeros(n, np.int8),
        "node_catmask": np.zeros(n, np.uint64),
    }
    for i, node in enumerate(nodes):
        arrays["node_feature"][i] = node["split_feature"]
        arrays["node_default_left"][i] = node["default_left"]
        arrays["node_missing"][i] = _MISSING[node["missing_type"]]
        if node["decision_type"] == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||")]
            if max(cats) >= 64:
                raise Unsupported("categorical split on a category code >= 64")
            arrays["node_kind"][i] = _CATEGORICAL
            arrays["node_catmask"][i] = np.uint64(sum(1 << c for c in cats))
        else:
            arrays["node_threshold"][i] = float(node["threshold"])
    return arrays


def _leaf_arrays(leaves: list[Any], node_feature: np.ndarray) -> dict[str, Any]:
    value, path_start, pnode, pleft, pslot = [], [0], [], [], []
    feat_start, feats, zeros, table_start = [0], [], [], [0]
    bias = 0.0
    for leaf_value, leaf_count, total, path in leaves:
        bias += leaf_value * leaf_count / total
        slots: dict[int, int] = {}
        zero: list[float] = []
        for node, left, fraction in path:
            f = int(node_feature[node])
            if f not in slots:
                slots[f] = len(slots)
                zero.append(1.0)
            zero[slots[f]] *= fraction
            pnode.append(node)
            pleft.append(left)
            pslot.append(slots[f])
        if len(slots) > MAX_PATH_FEATURES:
            raise Unsupported(f"a leaf path with {len(slots)} distinct features")
        value.append(leaf_value)
        path_start.append(len(pnode))
        feats.extend(slots)
        feat_start.append(len(feats))
        zeros.append(np.array(zero))
        table_start.append(table_start[-1] + (1 << len(slots)) * len(slots))
    return {
        "leaf_value": np.array(value, np.float64),
        "leaf_path_start": np.array(path_start, np.int64),
        "path_node": np.array(pnode, np.int64),
        "path_left": np.array(pleft, np.bool_),
        "path_slot": np.array(pslot, np.int64),
        "leaf_feat_start": np.array(feat_start, np.int64),
        "leaf_feat": np.array(feats, np.int64),
        "leaf_table_start": np.array(table_start, np.int64),
        "zeros": zeros,
        "bias": bias,
    }


def _shapley_weights(d: int) -> np.ndarray:
    """w[s] = s!(d-s-1)!/d! for s = 0..d-1."""
    from math import factorial

    return np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)])


@numba.njit(cache=True)
def _fill_leaf_table(out: np.ndarray, value: float, zero: np.ndarray, w: np.ndarray) -> None:
    """Contributions of one leaf for every pattern of satisfied features (bit k = feature k).

    phi_k = v·(o_k − z_k)·Σ_{S ⊆ ones \\ {k}} w(|S|)·Π_{j ∉ S, j ≠ k} z_j, summed by expanding
    Π_{j ≠ k} (z_j + t·o_j) and weighting the coefficient of t^s by w(s).
    """
    d = zero.shape[0]
    poly = np.zeros(d + 1)
    for b in range(1 << d):
        for k in range(d):
            poly[:] = 0.0
            poly[0] = 1.0
            size = 0
            for j in range(d):
                if j == k:
                    continue
                o = 1.0 if (b >> j) & 1 else 0.0
                for s in range(size + 1, 0, -1):
                    poly[s] = poly[s] * zero[j] + poly[s - 1] * o
                poly[0] = poly[0] * zero[j]
                size += 1
            total = 0.0
            for s in range(d):
                total += w[s] * poly[s]
            ok = 1.0 if (b >> k) & 1 else 0.0
            out[b * d + k] = value * (ok - zero[k]) * total


class LeafTableExplainer:
    """Exact TreeSHAP + raw score for a LightGBM binary booster, tabulated per leaf."""

    def __init__(self, booster: Any) -> None:
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise Unsupported("only single-output models")
        flat = _flatten(dump["tree_info"])
        nodes = _node_arrays(flat["nodes"])
        leaves = _leaf_arrays(flat["leaves"], nodes["node_feature"])
        table = np.zeros(int(leaves["leaf_table_start"][-1]))
        starts = leaves["leaf_table_start"]
        for i, zero in enumerate(leaves.pop("zeros")):
            d = len(zero)
            if d:
                _fill_leaf_table(
                    table[starts[i] : starts[i + 1]],
                    leaves["leaf_value"][i],
                    zero,
                    _shapley_weights(d),
                )
        self.num_features = booster.num_feature()
        self.t = _Tables(
            **nodes,
            tree_node_start=np.array(flat["tree_node_start"], np.int64),
            tree_leaf_start=np.array(flat["tree_leaf_start"], np.int64),
            table=table,
            **leaves,
        )
        self.max_nodes = int(np.diff(self.t.tree_node_start).max(initial=1))

    def _args(self) -> tuple[Any, ...]:
        t = self.t
        return (
            t.node_feature,
            t.node_threshold,
            t.node_kind,
            t.node_default_left,
            t.node_missing,
            t.node_catmask,
            t.tree_node_start,
            t.leaf_value,
            t.leaf_path_start,
            t.path_node,
            t.path_left,
            t.path_slot,
            t.leaf_feat_start,
            t.leaf_feat,
            t.leaf_table_start,
            t.table,
            t.tree_leaf_start,
            t.bias,
            self.max_nodes,
        )

    def contrib(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw log-odds (n,), contributions (n, k+1) with the bias last, like pred_contrib)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.zeros((x.shape[0], self.num_features + 1))
        raw = np.zeros(x.shape[0])
        _explain_rows(x, out, raw, *self._args())
        return raw, out

    def contrib_threads(self, x: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """The same, with rows split over `threads` Python threads (the kernel drops the GIL)."""
        if threads <= 1:
            return self.contrib(x)
        from concurrent.futures import ThreadPoolExecutor

        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.zeros((x.shape[0], self.num_features + 1))
        raw = np.zeros(x.shape[0])
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(int)
        args = self._args()
        with ThreadPoolExecutor(threads) as pool:
            list(
                pool.map(
                    lambda i: _explain_rows(
                        x[bounds[i] : bounds[i + 1]],
                        out[bounds[i] : bounds[i + 1]],
                        raw[bounds[i] : bounds[i + 1]],
                        *args,
                    ),
                    range(threads),
                )
            )
        return raw, out


@numba.njit(inline="always")
def _goes_left(
    v: float, kind: int, thr: float, default_left: bool, missing: int, catmask: np.uint64
) -> bool:
    """LightGBM's Tree::NumericalDecision / CategoricalDecision (tree.h), bit for bit."""
    if kind == _CATEGORICAL:
        # static_cast<int> of NaN or of a value outside int range is INT_MIN on x86, which
        # LightGBM sends right before it looks at the missing type.
        if np.isnan(v) or v <= -2147483649.0 or v >= 2147483648.0:
            return False
        iv = int(v)
        if iv < 0 or iv >= 64:
            return False
        return (catmask >> np.uint64(iv)) & np.uint64(1) == np.uint64(1)
    if np.isnan(v) and missing != 2:
        v = 0.0
    if (missing == 1 and -_ZERO_THRESHOLD <= v <= _ZERO_THRESHOLD) or (
        missing == 2 and np.isnan(v)
    ):
        return default_left
    return v <= thr


@numba.njit(nogil=True, cache=True)
def _explain_rows(
    x,
    out,
    raw,
    node_feature,
    node_threshold,
    node_kind,
    node_default_left,
    node_missing,
    node_catmask,
    tree_node_start,
    leaf_value,
    leaf_path_start,
    path_node,
    path_left,
    path_slot,
    leaf_feat_start,
    leaf_feat,
    leaf_table_start,
    table,
    tree_leaf_start,
    bias,
    max_nodes,
):  # pragma: no cover - numba
    # Blocks of rows, trees outer: one tree's tables stay in L1 while a block passes through.
    n_trees = tree_node_start.shape[0] - 1
    k = out.shape[1] - 1
    left = np.empty(max_nodes, np.bool_)
    block = 64
    for r0 in range(0, x.shape[0], block):
        r1 = min(r0 + block, x.shape[0])
        for t in range(n_trees):
            n0 = tree_node_start[t]
            for r in range(r0, r1):
                row = x[r]
                for n in range(n0, tree_node_start[t + 1]):
                    left[n - n0] = _goes_left(
                        row[node_feature[n]],
                        node_kind[n],
                        node_threshold[n],
                        node_default_left[n],
                        node_missing[n],
                        node_catmask[n],
                    )
                for leaf in range(tree_leaf_start[t], tree_leaf_start[t + 1]):
                    f0 = leaf_feat_start[leaf]
                    d = leaf_feat_start[leaf + 1] - f0
                    b = (1 << d) - 1
                    for p in range(leaf_path_start[leaf], leaf_path_start[leaf + 1]):
                        if left[path_node[p] - n0] != path_left[p]:
                            b &= ~(1 << path_slot[p])
                    if b == (1 << d) - 1:
                        raw[r] += leaf_value[leaf]
                    base = leaf_table_start[leaf] + b * d
                    for j in range(d):
                        out[r, leaf_feat[f0 + j]] += table[base + j]
        for r in range(r0, r1):
            out[r, k] = bias


def max_abs_diff(explainer: LeafTableExplainer, booster: Any, x: np.ndarray) -> dict[str, float]:
    """How far the tables are from LightGBM's own pred_contrib and raw score on `x`."""
    raw, contrib = explainer.contrib(x)
    ref = np.asarray(booster.predict(x, pred_contrib=True, num_threads=1))
    ref_raw = np.asarray(booster.predict(x, raw_score=True, num_threads=1))
    return {
        "contrib": float(np.abs(contrib - ref).max()),
        "raw": float(np.abs(raw - ref_raw).max()),
        "additivity": float(np.abs(contrib.sum(axis=1) - raw).max()),
    }
