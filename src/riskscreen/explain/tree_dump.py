"""From LightGBM's JSON dump of a booster to the flat arrays of the leaf tables (`treeshap`).

Why a module of its own: reading the dump is where a model is found unrepresentable (a split,
covers, categories or tables the kernels cannot take), and where the expected value is summed in
LightGBM's order; the result is plain arrays, one node or path step or table entry per element,
as the compiled kernels (`treeshap_kernels`) read them.
"""

from __future__ import annotations

from math import factorial
from typing import Any, NamedTuple

import numpy as np

from riskscreen.explain.treeshap_kernels import (
    CATEGORICAL,
    MAX_PATH_FEATURES,
    NUMERICAL_NAN,
    NUMERICAL_NONE,
    NUMERICAL_ZERO,
    fill_tables,
)

# All tables of one model together; a larger model is refused rather than held in memory.
MAX_TABLE_BYTES = 256 * 2**20
# Categorical splits on larger category codes are refused (LightGBM holds them as bitsets too).
MAX_CATEGORY = 2**16

_MISSING_TYPES = {"None": NUMERICAL_NONE, "Zero": NUMERICAL_ZERO, "NaN": NUMERICAL_NAN}


class UnsupportedModel(ValueError):
    """The booster has a tree the leaf tables cannot represent exactly; use `pred_contrib`."""


class Nodes(NamedTuple):
    """The split nodes of all trees, tree after tree."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64, numerical splits
    rule: np.ndarray  # int8: numerical by missing type, or categorical
    default_left: np.ndarray  # bool, where missing values go (numerical splits)
    category_start: np.ndarray  # int64, n + 1 offsets into `category_bits`
    category_bits: np.ndarray  # uint32, per categorical split the bitset of categories going left


class Leaves(NamedTuple):
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


class Leaf(NamedTuple):
    """A leaf of one tree, with the path to it from the tree's root."""

    value: float
    tree: int
    path: list[tuple[int, bool, float]]  # (node, goes left, zero fraction of the step), root first


def _count(node: dict[str, Any]) -> int:
    count = node.get("internal_count", node.get("leaf_count"))
    if not count:
        raise UnsupportedModel("a tree without data counts (covers) in its nodes")
    return int(count)


def flatten(trees: list[dict[str, Any]]) -> tuple[Nodes, list[int], list[Leaf], float]:
    """The split nodes (tree after tree), where each tree's nodes start, the leaves with their
    paths, and the expected value of the ensemble."""
    nodes: list[dict[str, Any]] = []
    starts: list[int] = []
    leaves: list[Leaf] = []
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
                leaves.append(Leaf(float(node["leaf_value"]), t, path))
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


def _node_arrays(nodes: list[dict[str, Any]]) -> Nodes:
    threshold = np.zeros(len(nodes))
    rule = np.zeros(len(nodes), np.int8)
    category_start = np.zeros(len(nodes) + 1, np.int64)
    bitsets: list[np.ndarray] = []
    for i, node in enumerate(nodes):
        if node["decision_type"] == "==":
            rule[i] = CATEGORICAL
            bitsets.append(_bitset([int(c) for c in str(node["threshold"]).split("||")]))
        elif node["decision_type"] == "<=" and node["missing_type"] in _MISSING_TYPES:
            rule[i] = _MISSING_TYPES[node["missing_type"]]
            threshold[i] = float(node["threshold"])
        else:
            raise UnsupportedModel(f"a split {node['decision_type']!r} / {node['missing_type']!r}")
        category_start[i + 1] = category_start[i] + (
            len(bitsets[-1]) if rule[i] == CATEGORICAL else 0
        )
    return Nodes(
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


def tabulate(leaf_list: list[Leaf], nodes: Nodes, tree_starts: list[int]) -> Leaves:
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
    leaves = Leaves(
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
    fill_tables(
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
