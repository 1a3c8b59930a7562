"""Horizon labels for long settlement time, with censoring and intensified support handled.

Exactly the label of the data dictionary (shared/INTAKE_SCHEMA.md): for a horizon of H
calendar months, `long_settlement` is 1 when a person followed through the horizon has not
settled by `intake_date + H months`, 0 when they settled on or before that date, and undefined
(NA) for everyone else. Censored people are never counted as settled or not settled.

Each row gets one status, the first that applies, in this order of precedence:

1. `recent`: the horizon date lies after the extraction date, so the horizon is not observed,
   whether or not the person has already settled (keeping only early settlers of a recent
   cohort would bias the labels towards 0).
2. `support_excluded`: received intensified support and `support="exclude"`. This comes before
   loss because it decides which population the model describes (risk under usual care); a
   supported person is out whatever their follow-up.
3. `lost`: lost to follow-up strictly before the horizon date without having settled by the
   horizon date. Lost on the horizon date counts as followed through.
4. `labelled`: everyone else.

Labelled people carry inverse-probability-of-censoring weights, so that they stand for every
eligible person of the modelled population. See `make_labels` for the exact timing.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from riskscreen.contract.censoring import kaplan_meier
from riskscreen.contract.cross import EXTRACT_DATE, INTAKE_DATE, LOST_DATE, SETTLED_DATE, SUPPORT
from riskscreen.contract.schema import INTAKE_FIELDS

STATUSES: tuple[str, ...] = ("labelled", "lost", "support_excluded", "recent")
SUPPORT_HANDLING: tuple[str, ...] = ("exclude", "keep")
_KEY = next(f.name for f in INTAKE_FIELDS if f.role == "key")
_DAY = pd.Timedelta(days=1)


def make_labels(
    intake: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    horizon_months: int = 24,
    support: Literal["exclude", "keep"] = "exclude",
) -> pd.DataFrame:
    """One label row per intake row (same order, fresh index) from canonical tables.

    Weights: G(t) = P(L > t) is the Kaplan-Meier survival of the time L from intake to loss to
    follow-up, in days, fitted on every intake row (loss is the event; follow-up ends, i.e. is
    censored, at the extraction date). A label becomes known at day t* = the settlement day for
    label 0 and the person's own horizon day h for label 1, and it is observed iff the person
    was not lost before that day, L >= t* (a loss on the settlement day still sees the
    settlement; a loss on the horizon date counts as followed through). So the weight is
    1 / P(L >= t*) = 1 / G(t*-), the left limit: losses on day t* itself do not lower it.
    Weights are >= 1 and finite for labelled rows, NaN otherwise.

    Args:
        intake: canonical intake (`data.to_canonical_intake`).
        outcomes: canonical outcomes with exactly one row per intake case_ref.
        horizon_months: H, in calendar months (Jan 31 + 1 month is Feb 28 or 29).
        support: "exclude" leaves people who received intensified support out, so that the
            model learns risk under usual care; "keep" labels them like everyone else.

    Returns:
        case_ref, intake_year, horizon_date, status (categorical, `STATUSES`),
        long_settlement (Int8, NA unless labelled), ipcw_weight (float64, NaN unless labelled).
    """
    if horizon_months < 1 or support not in SUPPORT_HANDLING:
        raise ValueError(f"need horizon_months >= 1 and support in {SUPPORT_HANDLING}")
    people = _join(intake, outcomes)
    horizon = people[INTAKE_DATE] + pd.DateOffset(months=horizon_months)
    settled = (people[SETTLED_DATE] <= horizon).to_numpy()
    status = _status(people, horizon, settled, exclude_support=support == "exclude")
    labelled = status == "labelled"
    return pd.DataFrame(
        {
            _KEY: people[_KEY],
            "intake_year": people[INTAKE_DATE].dt.year.astype("int64"),
            "horizon_date": horizon,
            "status": pd.Categorical(status, categories=STATUSES),
            "long_settlement": pd.Series(~settled, dtype="Int8").where(labelled),
            "ipcw_weight": _ipcw_weights(people, horizon, settled, labelled),
        }
    )


def _join(intake: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Intake rows in their order, each with its one outcome row."""
    refs = pd.Index(outcomes[_KEY])
    if not refs.is_unique:
        raise ValueError("outcomes must have one row per case_ref")
    position = refs.get_indexer(intake[_KEY])
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} intake row(s) have no outcome row")
    matched = outcomes.drop(columns=_KEY).iloc[position].reset_index(drop=True)
    return pd.concat([intake[[_KEY, INTAKE_DATE]].reset_index(drop=True), matched], axis=1)


def _status(
    people: pd.DataFrame, horizon: pd.Series, settled: np.ndarray, *, exclude_support: bool
) -> np.ndarray:
    """The first status that applies, in the order of precedence in the module docstring."""
    recent = (horizon > people[EXTRACT_DATE]).to_numpy()
    supported = people[SUPPORT].to_numpy(dtype=bool) & exclude_support
    lost = (people[LOST_DATE] < horizon).to_numpy() & ~settled
    return np.select(
        [recent, supported, lost], ["recent", "support_excluded", "lost"], default="labelled"
    )


def _days_after_intake(people: pd.DataFrame, dates: pd.Series) -> np.ndarray:
    return ((dates - people[INTAKE_DATE]) / _DAY).to_numpy(dtype=np.float64, na_value=np.nan)


def _ipcw_weights(
    people: pd.DataFrame, horizon: pd.Series, settled: np.ndarray, labelled: np.ndarray
) -> np.ndarray:
    """1 / G(t*-) for labelled rows (see `make_labels`), NaN elsewhere."""
    lost = people[LOST_DATE].notna().to_numpy()
    follow_up_end = people[LOST_DATE].where(lost, people[EXTRACT_DATE])
    followed_for = kaplan_meier(_days_after_intake(people, follow_up_end), lost)
    known_at = np.where(
        settled,
        _days_after_intake(people, people[SETTLED_DATE]),
        _days_after_intake(people, horizon),
    )
    weights = np.full(len(people), np.nan)
    weights[labelled] = 1.0 / followed_for.before(known_at[labelled])
    return weights


def label_counts(labels: pd.DataFrame) -> dict[str, int]:
    """Number of rows per status, every status listed (zero included), for the model report."""
    counts = labels["status"].value_counts().reindex(list(STATUSES), fill_value=0)
    return {str(status): int(n) for status, n in counts.items()}
