"""Tables for the numbered notebooks: small pure functions over what the package returns.

The notebooks (`notebooks/0*.ipynb`) only call the package and show the result; anything that
takes more than a line of pandas lives here instead, so it is typed, linted and unit-tested.
Nothing here reads or writes files or talks to MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskscreen.contract.features import encode_frame
from riskscreen.contract.labels import STATUSES
from riskscreen.contract.record import IntakeRecord
from riskscreen.explain.reasons import group_contributions

if TYPE_CHECKING:
    from riskscreen.model.bundle import ModelBundle
    from riskscreen.model.config import TrainConfig
    from riskscreen.model.pipeline import TrainingResult

_CARD_HEADER = "| quantity | target | realised |"
_TAGGED = re.compile(r"^(?P<target>.*?)\s*\[(?P<source>[^\]]+)\]$")


def calibration_targets(data_card: str) -> pd.DataFrame:
    """The data card's calibration table: quantity, target, source tag, realised value.

    The card is where the realised quantities are tallied (over the uncensored settlement
    times, which the exported frames no longer hold), so they are read back from it rather than
    recomputed. Source tags: V = official or primary source, S = second-hand, A = assumption.
    """
    lines = data_card.splitlines()
    try:
        start = lines.index(_CARD_HEADER) + 2  # skip the header and the |---| rule
    except ValueError:
        raise ValueError("no calibration table in this data card") from None
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        quantity, target, realised = (cell.strip() for cell in line.strip("|").split("|"))
        tagged = _TAGGED.match(target)
        rows.append(
            {
                "quantity": quantity,
                "target": tagged["target"] if tagged else target,
                "source": tagged["source"] if tagged else "",
                "realised": realised,
            }
        )
    return pd.DataFrame(rows)


def label_status_by_year(labels: pd.DataFrame) -> pd.DataFrame:
    """People per intake year and label status (`make_labels` output), with totals.

    Every status is a column, zeros included, in the order of precedence of `labels.STATUSES`,
    so censoring shows year by year: the newest years are all `recent`.
    """
    table = pd.crosstab(labels["intake_year"], labels["status"].astype(str))
    table = table.reindex(columns=list(STATUSES), fill_value=0).astype("int64")
    table.columns.name = "status"
    table["total"] = table[list(STATUSES)].sum(axis=1)
    table["labelled_share"] = table["labelled"] / table["total"]
    return table


def comparison_table(result: TrainingResult, cfg: TrainConfig) -> pd.DataFrame:
    """Model against checklist, logistic regression and oracle: the report's metrics table.

    Built from `comparison.metrics_section`, so the notebook shows the very cells (formatted, and
    filled in the same way where a comparator's metric was not logged) that the report shows.
    """
    from riskscreen.reports.comparison import TestScores, metrics_section

    section = metrics_section(result, cfg, TestScores.from_result(result, cfg))
    return pd.DataFrame(
        [[cell["value"] for cell in row["cells"]] for row in section["rows"]],
        index=pd.Index([row["title"] for row in section["rows"]], name="metric"),
        columns=section["columns"],
    )


def contribution_groups(scored: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """`score_frame` output summed into explanation groups, one column per group in use.

    Columns: base, the groups (log-odds), log_odds, probability; base + the groups = log_odds.
    """
    per_field = scored[[f"contribution_{f}" for f in fields]].to_numpy()
    names, grouped = group_contributions(per_field, fields)
    out = pd.DataFrame(grouped, columns=list(names), index=scored.index)
    out.insert(0, "base", scored["base_log_odds"])
    out["log_odds"] = scored["log_odds"]
    out["probability"] = scored["probability"]
    return out


def additivity_error(frame: pd.DataFrame, bundle: ModelBundle) -> float:
    """Largest |base + Σ group contributions − calibrated log-odds| over a canonical intake frame.

    The log-odds come from the trees' ordinary prediction path, not from the SHAP values, so
    the grouped explanation is checked against the model rather than against itself.
    """
    x = encode_frame(frame, bundle.spec)
    base, contributions = bundle.contributions(x)
    _, grouped = group_contributions(contributions, bundle.spec.fields)
    gap = np.abs(base + grouped.sum(axis=1) - bundle.log_odds(x))
    return float(gap.max(initial=0.0))


def intake_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row as the scoring API receives it: validated by `record.IntakeRecord`.

    Missing values become None and numpy scalars plain Python values, so `Scorer.score` gets
    exactly what a request body gives it; case_ref travels beside the record, not in it.
    """
    rows = frame.drop(columns="case_ref").astype(object)
    rows = rows.where(rows.notna(), None)
    return [IntakeRecord.model_validate(row).model_dump() for row in rows.to_dict("records")]
