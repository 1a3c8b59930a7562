"""Grouped explanations and the sentences a case manager reads.

Per-field contributions are summed into the declared explanation groups (schema.GROUPS). A sum
keeps additivity: base + Σ groups = base + Σ fields = the served log-odds. (Taking the largest
member instead, as some tools do, breaks that identity and is not done here.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from riskscreen.contract.schema import FIELDS_BY_NAME, GROUPS, GROUPS_BY_NAME
from riskscreen.contract.value_labels import CATEGORY_LABELS

Lang = Literal["sv", "en"]
# Contributions smaller than this (in log-odds) are not worth a sentence: about a 1-percentage-
# point change in risk around 50%.
MIN_REASON_LOG_ODDS = 0.05

_VERBS = {
    ("en", 1): "raised the risk",
    ("en", -1): "lowered the risk",
    ("sv", 1): "höjde risken",
    ("sv", -1): "sänkte risken",
}


def group_matrix(fields: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The groups in use and a (k fields, g groups) 0/1 matrix that sums fields into groups."""
    names = tuple(g.name for g in GROUPS if any(FIELDS_BY_NAME[f].group == g.name for f in fields))
    matrix = np.zeros((len(fields), len(names)))
    for i, f in enumerate(fields):
        matrix[i, names.index(FIELDS_BY_NAME[f].group)] = 1.0
    return names, matrix


def group_contributions(
    contributions: np.ndarray, fields: Sequence[str]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Sum (n, k) per-field contributions into (n, g) per-group contributions."""
    names, matrix = group_matrix(fields)
    return names, contributions @ matrix


@dataclass(frozen=True)
class GroupReason:
    """One driver of a score: a group, its signed contribution and the fields behind it."""

    group: str
    contribution: float
    fields: tuple[str, ...]


def top_reasons(
    contributions: Mapping[str, float], *, up: int = 3, down: int = 2
) -> list[GroupReason]:
    """The strongest drivers up and down, grouped, largest first."""
    sums: dict[str, float] = {}
    members: dict[str, list[str]] = {}
    for name, value in contributions.items():
        group = FIELDS_BY_NAME[name].group
        sums[group] = sums.get(group, 0.0) + value
        members.setdefault(group, []).append(name)
    ranked = sorted(sums.items(), key=lambda kv: -abs(kv[1]))
    raising = [g for g in ranked if g[1] >= MIN_REASON_LOG_ODDS][:up]
    lowering = [g for g in ranked if g[1] <= -MIN_REASON_LOG_ODDS][:down]
    return [GroupReason(g, v, tuple(members[g])) for g, v in raising + lowering]


def _format_value(field: str, value: Any, lang: Lang) -> str:
    labels = CATEGORY_LABELS.get(field, {}).get(value) if isinstance(value, str) else None
    if labels:
        return labels[0] if lang == "sv" else labels[1]
    if isinstance(value, bool):
        return {("en", True): "yes", ("en", False): "no", ("sv", True): "ja", ("sv", False): "nej"}[
            (lang, value)
        ]
    if value is None:
        if FIELDS_BY_NAME[field].may_be_unknown:
            return "uppgift saknas" if lang == "sv" else "not known"
        return "–"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def reason_sentence(reason: GroupReason, values: Mapping[str, Any], lang: Lang) -> str:
    """E.g. "Schooling raised the risk (Years of schooling: 3; Literacy: limited)."."""
    group = GROUPS_BY_NAME[reason.group]
    label = group.label_sv if lang == "sv" else group.label_en
    verb = _VERBS[(lang, 1 if reason.contribution > 0 else -1)]
    details = "; ".join(
        f"{field_label(f, lang)}: {_format_value(f, values[f], lang)}" for f in reason.fields
    )
    return f"{label} {verb} ({details})."


def field_label(name: str, lang: Lang) -> str:
    """The case manager's name for an intake field."""
    field = FIELDS_BY_NAME[name]
    return field.label_sv if lang == "sv" else field.label_en
