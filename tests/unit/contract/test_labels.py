"""Horizon labels, censoring and the inverse-probability-of-censoring weights."""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskscreen.contract.censoring import kaplan_meier
from riskscreen.contract.labels import STATUSES, label_counts, make_labels

EXTRACT = "2024-01-01"
INTAKE = "2020-01-15"  # horizon date at 24 months: 2022-01-15


def _tables(
    *people: dict[str, object], extract: str = EXTRACT
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical-typed intake (the two columns labelling reads) and outcomes, one row each."""
    refs = [f"P{i}" for i in range(len(people))]

    def day(key: str) -> pd.DatetimeIndex:
        return pd.to_datetime([p.get(key) for p in people]).astype("datetime64[us]")

    intake = pd.DataFrame({"case_ref": pd.Series(refs, dtype="str"), "intake_date": day("intake")})
    outcomes = pd.DataFrame(
        {
            "case_ref": pd.Series(refs, dtype="str"),
            "settled_date": day("settled"),
            "lost_to_followup_date": day("lost"),
            "received_intensified_support": np.array([bool(p.get("support")) for p in people]),
            "extract_date": pd.to_datetime([extract] * len(people)).astype("datetime64[us]"),
        }
    )
    return intake, outcomes


def _labels(*people: dict[str, object], **kwargs: object) -> pd.DataFrame:
    return make_labels(*_tables(*people), **kwargs)


def test_settlement_on_the_horizon_date_counts_as_within() -> None:
    labels = _labels(
        {"intake": INTAKE, "settled": "2022-01-14"},
        {"intake": INTAKE, "settled": "2022-01-15"},
        {"intake": INTAKE, "settled": "2022-01-16"},
        {"intake": INTAKE},
    )
    assert labels["horizon_date"].eq(pd.Timestamp("2022-01-15")).all()
    assert labels["status"].eq("labelled").all()
    assert labels["long_settlement"].tolist() == [0, 0, 1, 1]


def test_recent_intakes_are_left_out_whether_or_not_they_settled() -> None:
    labels = _labels(
        {"intake": "2022-06-01", "settled": "2022-09-01"},
        {"intake": "2022-06-01"},
        {"intake": "2022-01-01"},  # horizon date == extraction date: eligible
    )
    assert labels["status"].tolist() == ["recent", "recent", "labelled"]
    assert labels["long_settlement"].isna().tolist() == [True, True, False]
    assert labels["ipcw_weight"].isna().tolist() == [True, True, False]


def test_loss_to_follow_up() -> None:
    labels = _labels(
        {"intake": INTAKE, "settled": "2020-06-01", "lost": "2021-01-01"},  # settled first: 0
        {"intake": INTAKE, "lost": "2021-01-01"},  # lost before the horizon: undefined
        {"intake": INTAKE, "lost": "2022-01-15"},  # lost on the horizon date: followed through
        {"intake": INTAKE, "lost": "2023-01-01"},  # lost after the horizon: 1
    )
    assert labels["status"].tolist() == ["labelled", "lost", "labelled", "labelled"]
    assert labels["long_settlement"].tolist() == [0, pd.NA, 1, 1]


def test_support_exclude_and_keep() -> None:
    people = (
        {"intake": INTAKE, "settled": "2020-06-01", "support": True},
        {"intake": INTAKE, "lost": "2021-01-01", "support": True},  # support before loss
        {"intake": "2023-06-01", "support": True},  # recent before support
        {"intake": INTAKE, "support": False},
    )
    excluded = _labels(*people)
    kept = _labels(*people, support="keep")
    assert excluded["status"].tolist() == [
        "support_excluded",
        "support_excluded",
        "recent",
        "labelled",
    ]
    assert excluded["long_settlement"].tolist() == [pd.NA, pd.NA, pd.NA, 1]
    assert kept["status"].tolist() == ["labelled", "lost", "recent", "labelled"]
    assert kept["long_settlement"].tolist() == [0, pd.NA, pd.NA, 1]


def test_output_columns_types_and_order() -> None:
    intake, outcomes = _tables(
        {"intake": "2021-03-01"}, {"intake": INTAKE, "settled": "2021-01-01"}
    )
    labels = make_labels(intake.iloc[::-1], outcomes)
    assert list(labels.columns) == [
        "case_ref",
        "intake_year",
        "horizon_date",
        "status",
        "long_settlement",
        "ipcw_weight",
    ]
    assert labels["case_ref"].tolist() == ["P1", "P0"]
    assert labels.index.equals(pd.RangeIndex(2))
    assert labels["intake_year"].dtype == np.int64
    assert labels["intake_year"].tolist() == [2020, 2021]
    assert list(labels["status"].cat.categories) == list(STATUSES)
    assert labels["long_settlement"].dtype == "Int8"
    assert labels["ipcw_weight"].dtype == np.float64


def test_horizon_is_in_calendar_months() -> None:
    labels = _labels({"intake": "2020-01-31"}, {"intake": "2020-03-31"}, horizon_months=1)
    assert labels["horizon_date"].tolist() == [
        pd.Timestamp("2020-02-29"),
        pd.Timestamp("2020-04-30"),
    ]


def test_tables_that_do_not_match_are_refused() -> None:
    intake, outcomes = _tables({"intake": INTAKE}, {"intake": INTAKE})
    with pytest.raises(ValueError, match="no outcome row"):
        make_labels(intake, outcomes.iloc[:1])
    with pytest.raises(ValueError, match="one row per case_ref"):
        make_labels(intake, pd.concat([outcomes, outcomes]))
    with pytest.raises(ValueError, match="support"):
        make_labels(intake, outcomes, support="drop")


def test_label_counts_lists_every_status() -> None:
    labels = _labels({"intake": INTAKE}, {"intake": "2023-06-01"}, {"intake": "2023-07-01"})
    assert label_counts(labels) == {"labelled": 1, "lost": 0, "support_excluded": 0, "recent": 2}


def _on_day(days: int, start: str = "2020-01-01") -> str:
    return (pd.Timestamp(start) + pd.Timedelta(days=days)).date().isoformat()


def test_censoring_weights_by_hand() -> None:
    # Day 0 = 2020-01-01, horizon = day 731 (2022-01-01), extraction 2024-01-01 = day 1461.
    # Loss to follow-up (days after intake; e = lost, c = followed until the extraction):
    #   F 50e (a recent intake, still in the fit), A 100e, B 200e, E 300e, G 731e, C, D 1461c.
    # Kaplan-Meier G(t) = P(not lost by t), at risk n_t = #{duration >= t}:
    #   t=50: 1 - 1/7 -> 6/7;  t=100: x (1 - 1/6) -> 5/7;  t=200: x (1 - 1/5) -> 4/7;
    #   t=300: x (1 - 1/4) -> 3/7;  t=731: x (1 - 1/3) -> 2/7.
    # Weights use the left limit G(t-) at the day the label became known:
    #   B settled day 150 (then lost at 200): 1 / G(150-) = 1 / (5/7) = 7/5
    #   C settled day 300: 1 / G(300-) = 1 / (4/7) = 7/4  (E's loss that day does not count)
    #   D not settled, h = 731: 1 / G(731-) = 1 / (3/7) = 7/3
    #   G lost on the horizon date, not settled: label 1, also 7/3 (its own loss not counted)
    labels = _labels(
        {"intake": "2020-01-01", "lost": _on_day(100)},  # A
        {"intake": "2020-01-01", "settled": _on_day(150), "lost": _on_day(200)},  # B
        {"intake": "2020-01-01", "settled": _on_day(300)},  # C
        {"intake": "2020-01-01"},  # D
        {"intake": "2020-01-01", "lost": _on_day(300)},  # E
        {"intake": "2022-01-02", "lost": _on_day(50, "2022-01-02")},  # F
        {"intake": "2020-01-01", "lost": _on_day(731)},  # G
    )
    assert labels["status"].tolist() == [
        "lost",
        "labelled",
        "labelled",
        "labelled",
        "lost",
        "recent",
        "labelled",
    ]
    assert labels["long_settlement"].tolist() == [pd.NA, 0, 0, 1, pd.NA, pd.NA, 1]
    expected = [np.nan, 7 / 5, 7 / 4, 7 / 3, np.nan, np.nan, 7 / 3]
    np.testing.assert_allclose(labels["ipcw_weight"], expected, rtol=1e-12)


def test_kaplan_meier_step_function_and_left_limit() -> None:
    g = kaplan_meier([1, 2, 2, 3, 5], [True, True, False, True, False])
    # t=1: 4/5; t=2: x (1 - 1/4) = 3/5; t=3: x (1 - 1/2) = 3/10.
    np.testing.assert_allclose(g.at([0, 1, 2, 2.5, 3, 9]), [1, 0.8, 0.6, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(g.before([0, 1, 2, 3, 3.5]), [1, 1, 0.8, 0.6, 0.3])


# --- the rule in general ----------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _reference_status(
    p: dict, extract: dt.date, months: int, support: str
) -> tuple[str, int | None]:
    """The data dictionary, one person at a time."""
    horizon = _add_months(p["intake"], months)
    settled = p["settled"] is not None and p["settled"] <= horizon
    if horizon > extract:
        return "recent", None
    if p["support"] and support == "exclude":
        return "support_excluded", None
    if p["lost"] is not None and p["lost"] < horizon and not settled:
        return "lost", None
    return "labelled", 0 if settled else 1


def _reference_followed(durations: list[float], events: list[bool], t: float) -> float:
    """P(still followed just before t): product over loss days s < t of (1 - d_s / n_s)."""
    g = 1.0
    for s in sorted({d for d, e in zip(durations, events, strict=True) if e and d < t}):
        deaths = sum(1 for d, e in zip(durations, events, strict=True) if e and d == s)
        g *= 1 - deaths / sum(1 for d in durations if d >= s)
    return g


_START = dt.date(2016, 1, 1)
_EXTRACT_DAY = dt.date(2020, 12, 15)


def _offset(draw: st.DrawFn, horizon: int, room: int) -> int | None:
    """None, any day up to `room`, or (often) a day next to the horizon, where the ties are."""
    near = st.sampled_from([horizon - 1, horizon, horizon + 1]).filter(lambda d: 0 <= d <= room)
    return draw(st.none() | st.integers(0, room) | near) if room >= 0 else None


@st.composite
def _person(draw: st.DrawFn, months: int) -> dict:
    boundary = _add_months(_EXTRACT_DAY, -months)  # horizon date == extraction date
    intake = draw(
        st.integers(0, (_EXTRACT_DAY - _START).days).map(lambda d: _START + dt.timedelta(days=d))
        | st.sampled_from([boundary + dt.timedelta(days=d) for d in (-1, 0, 1)])
    )
    horizon = (_add_months(intake, months) - intake).days
    lost = _offset(draw, horizon, (_EXTRACT_DAY - intake).days)
    settled = _offset(draw, horizon, (_EXTRACT_DAY - intake).days if lost is None else lost)
    return {
        "intake": intake,
        "settled": None if settled is None else intake + dt.timedelta(days=settled),
        "lost": None if lost is None else intake + dt.timedelta(days=lost),
        "support": draw(st.booleans()),
    }


@st.composite
def _cohort(draw: st.DrawFn) -> tuple[list[dict], int]:
    """People with settled <= lost <= extraction, as the contract allows, and a horizon."""
    months = draw(st.sampled_from([1, 6, 12, 24, 36]))
    return draw(st.lists(_person(months), min_size=1, max_size=25)), months


@settings(max_examples=200, deadline=None)
@given(cohort=_cohort(), support=st.sampled_from(["exclude", "keep"]))
def test_labels_follow_the_data_dictionary(cohort: tuple[list[dict], int], support: str) -> None:
    people, months = cohort
    rows = [
        {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in p.items()} for p in people
    ]
    labels = make_labels(
        *_tables(*rows, extract=_EXTRACT_DAY.isoformat()), horizon_months=months, support=support
    )
    durations = [((p["lost"] or _EXTRACT_DAY) - p["intake"]).days for p in people]
    lost = [p["lost"] is not None for p in people]
    for p, row in zip(people, labels.itertuples(), strict=True):
        status, label = _reference_status(p, _EXTRACT_DAY, months, support)
        assert (row.status, None if pd.isna(row.long_settlement) else row.long_settlement) == (
            status,
            label,
        )
        if status != "labelled":
            assert np.isnan(row.ipcw_weight)
            continue
        known = p["settled"] if label == 0 else _add_months(p["intake"], months)
        g = _reference_followed(durations, lost, (known - p["intake"]).days)
        assert np.isfinite(row.ipcw_weight) and row.ipcw_weight >= 1
        assert row.ipcw_weight == pytest.approx(1 / g, rel=1e-12)


# --- the weights correct the selection ---------------------------------------------------------


def _simulated_cohort(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Exponential settlement (two groups) and independent exponential loss, known truth.

    Settlement is seen only before the loss (follow-up ends there) and by the extraction, the
    loss only by the extraction, as in a real export. Returns the true P(long settlement).
    """
    rng = np.random.default_rng(seed)
    intake = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 10 * 365, n), unit="D")
    extract = pd.Timestamp("2024-12-31")
    rate = np.log(2) / 420 * np.exp(0.9 * rng.integers(0, 2, n))  # per day
    settle = rng.exponential(1 / rate)
    loss = rng.exponential(365 / 0.3, n)  # 30 % a year: about 45 % lost within two years
    h = ((intake + pd.DateOffset(months=24)) - intake).days.to_numpy()
    settled_on = intake + pd.to_timedelta(np.floor(settle), unit="D")
    lost_on = intake + pd.to_timedelta(np.floor(np.minimum(loss, 1e5)), unit="D")
    refs = pd.Series([f"S{i}" for i in range(n)], dtype="str")
    intake_frame = pd.DataFrame({"case_ref": refs, "intake_date": intake.astype("datetime64[us]")})
    outcomes = pd.DataFrame(
        {
            "case_ref": refs,
            "settled_date": settled_on.where((settle < loss) & (settled_on <= extract)),
            "lost_to_followup_date": lost_on.where(lost_on <= extract),
            "received_intensified_support": rng.random(n) < 0.1,
            "extract_date": pd.DatetimeIndex([extract] * n),
        }
    ).astype(
        {c: "datetime64[us]" for c in ("settled_date", "lost_to_followup_date", "extract_date")}
    )
    return intake_frame, outcomes, np.exp(-rate * (h + 1))  # floor(T) > h  <=>  T >= h + 1


def _rates(labels: pd.DataFrame) -> tuple[float, float]:
    labelled = labels[labels["status"] == "labelled"]
    y = labelled["long_settlement"].to_numpy(dtype=float)
    return float(y.mean()), float(np.average(y, weights=labelled["ipcw_weight"]))


def test_weights_remove_the_bias_of_loss_to_follow_up() -> None:
    intake, outcomes, truth = _simulated_cohort(200_000, seed=3)
    labels = make_labels(intake, outcomes)
    eligible = (labels["status"] != "recent").to_numpy() & ~outcomes[
        "received_intensified_support"
    ].to_numpy()
    true_rate = truth[eligible].mean()
    unweighted, weighted = _rates(labels)
    assert abs(weighted - true_rate) < 0.01
    assert true_rate - unweighted > 0.05  # long settlers must stay followed for longer


@pytest.mark.slow
def test_weighted_labels_match_the_generator_oracle() -> None:
    synth = pytest.importorskip("riskscreen.synth.generate")
    cohort = synth.generate_cohort(200_000, seed=7, horizon_months=24)
    labels = make_labels(cohort.intake, cohort.outcomes, horizon_months=24)
    oracle = labels[["case_ref"]].merge(cohort.oracle, on="case_ref", how="left", validate="1:1")
    eligible = (labels["status"] != "recent").to_numpy() & ~cohort.outcomes.set_index(
        "case_ref"
    ).loc[labels["case_ref"], "received_intensified_support"].to_numpy()
    checked = 0
    for year, in_year in [
        ("all", np.ones(len(labels), bool)),
        *(
            (y, (labels["intake_year"] == y).to_numpy())
            for y in sorted(labels["intake_year"].unique())
        ),
    ]:
        # Below ~2,000 labelled people the standard error nears 0.01/2.5: not a fair test.
        if (in_year & (labels["status"] == "labelled").to_numpy()).sum() < 2_000:
            continue
        _, weighted = _rates(labels[in_year])
        truth = oracle["p_long_settlement"].to_numpy()[in_year & eligible].mean()
        assert abs(weighted - truth) < 0.01, year
        checked += 1
    assert checked >= 2
