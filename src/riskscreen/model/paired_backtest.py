"""Two models' out-of-fold predictions of the same people, compared: which serves them better?

A municipality that imports a model can also train its own (the small-cohort design). Both are
judged on the same predicted years, each person predicted by models that did not see their
year, so the comparison is paired: pooled and per year, the weighted ROC AUC of each with a
paired bootstrap SE of the difference (the same resampled people for both, as the small-cohort
design compares its families: `small_design.paired_auc_se`), and the weighted log loss of each
with the SE of its paired difference. The verdict is one sentence: which serves better and by
how much, or that the data cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from riskscreen.model.config import SmallDesignConfig
from riskscreen.model.small_design import paired_auc_se, weighted_auc

# A difference counts when it exceeds this many SEs (two-sided 95%); less is noise.
DECISIVE_Z = 1.96
Verdict = Literal["imported", "local", "undecided"]
IMPORTED: Verdict = "imported"
LOCAL: Verdict = "local"


@dataclass(frozen=True)
class BacktestRow:
    """One period (`pooled` or a year): gains are the imported model's advantage over the
    local one, so positive favours the imported model for both (log loss gain = local − imported).
    """

    period: str
    n: int
    auc_imported: float
    auc_local: float
    auc_gain: float
    auc_gain_se: float
    log_loss_imported: float
    log_loss_local: float
    log_loss_gain: float
    log_loss_gain_se: float


@dataclass(frozen=True)
class Comparison:
    """The backtest table (pooled first, then each year) and the verdict on the pooled row."""

    rows: tuple[BacktestRow, ...]
    verdict: Verdict
    sentence: str
    local_family: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "sentence": self.sentence,
            "local_family": self.local_family,
            "rows": [asdict(r) for r in self.rows],
        }


def compare_backtests(
    y: np.ndarray,
    w: np.ndarray,
    year: np.ndarray,
    p_imported: np.ndarray,
    p_local: np.ndarray,
    cfg: SmallDesignConfig,
    *,
    local_family: str,
) -> Comparison:
    """Compare two sets of out-of-fold probabilities of the same people (aligned arrays).

    Args:
        y, w, year: label, censoring weight and intake year of each predicted person.
        p_imported: the recalibrated imported model's probabilities.
        p_local: the local small-cohort design's.
        cfg: the bootstrap (`bootstrap`, `seed`) of the small-cohort design.
        local_family: the family the local design chose, for the sentence.
    """
    rows = [_row("pooled", y, w, p_imported, p_local, cfg)]
    for value in np.unique(year):
        mine = year == value
        rows.append(_row(str(value), y[mine], w[mine], p_imported[mine], p_local[mine], cfg))
    verdict, sentence = _verdict(rows[0], sorted(int(v) for v in np.unique(year)), local_family)
    return Comparison(tuple(rows), verdict, sentence, local_family)


def _row(
    period: str,
    y: np.ndarray,
    w: np.ndarray,
    p_imported: np.ndarray,
    p_local: np.ndarray,
    cfg: SmallDesignConfig,
) -> BacktestRow:
    scores: dict[str, np.ndarray] = {IMPORTED: p_imported, LOCAL: p_local}
    auc = {n: float(weighted_auc(y, s, w[np.newaxis])[0]) for n, s in scores.items()}
    se = paired_auc_se(y, w, scores, IMPORTED, cfg)[LOCAL]
    loss = {n: _losses(y, s) for n, s in scores.items()}
    mean = {n: float(np.average(v, weights=w)) for n, v in loss.items()}
    return BacktestRow(
        period=period,
        n=len(y),
        auc_imported=auc[IMPORTED],
        auc_local=auc[LOCAL],
        auc_gain=auc[IMPORTED] - auc[LOCAL],
        auc_gain_se=se,
        log_loss_imported=mean[IMPORTED],
        log_loss_local=mean[LOCAL],
        log_loss_gain=mean[LOCAL] - mean[IMPORTED],
        log_loss_gain_se=_mean_se(loss[LOCAL] - loss[IMPORTED], w),
    )


def _losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def _mean_se(d: np.ndarray, w: np.ndarray) -> float:
    """SE of a weighted mean of per-person values (sandwich: the weights are sampling weights)."""
    mean = np.average(d, weights=w)
    return float(np.sqrt(np.sum(w**2 * (d - mean) ** 2)) / np.sum(w))


def _decisive(gain: float, se: float) -> bool:
    """Beyond its noise, and beyond float rounding (two rankings that agree have an SE of 0)."""
    return abs(gain) > max(DECISIVE_Z * se, 1e-9)


def _verdict(row: BacktestRow, years: list[int], local_family: str) -> tuple[Verdict, str]:
    span = f"{years[0]}" if len(years) == 1 else f"{years[0]}–{years[-1]}"
    where = f"on the {row.n:,} people of {span}, each year predicted by models that never saw it"
    names = {
        IMPORTED: "the recalibrated imported model",
        LOCAL: f"a model trained here (small-cohort design, {local_family})",
    }
    by_auc = _decisive(row.auc_gain, row.auc_gain_se)
    by_loss = _decisive(row.log_loss_gain, row.log_loss_gain_se)
    if not by_auc and not by_loss:
        return "undecided", (
            f"The data cannot tell {names[IMPORTED]} and {names[LOCAL]} apart: {where}, ROC AUC "
            f"{row.auc_imported:.3f} imported against {row.auc_local:.3f} local (imported − "
            f"local {row.auc_gain:+.3f} ± {row.auc_gain_se:.3f} SE), log loss "
            f"{row.log_loss_imported:.3f} against {row.log_loss_local:.3f} (imported − local "
            f"{-row.log_loss_gain:+.3f} ± {row.log_loss_gain_se:.3f} SE)."
        )
    winner: Verdict = IMPORTED if (row.auc_gain if by_auc else row.log_loss_gain) > 0 else LOCAL
    other: Verdict = LOCAL if winner == IMPORTED else IMPORTED
    sign = 1.0 if winner == IMPORTED else -1.0
    auc = {IMPORTED: row.auc_imported, LOCAL: row.auc_local}
    loss = {IMPORTED: row.log_loss_imported, LOCAL: row.log_loss_local}
    auc_text = (
        f"ROC AUC {auc[winner]:.3f} against {auc[other]:.3f} "
        f"({sign * row.auc_gain:+.3f} ± {row.auc_gain_se:.3f} SE)"
    )
    loss_text = (
        f"log loss {loss[winner]:.3f} against {loss[other]:.3f} "
        f"({-sign * row.log_loss_gain:+.3f} ± {row.log_loss_gain_se:.3f} SE)"
    )
    how = (
        f"it ranks them better, {auc_text}, with {loss_text}"
        if by_auc
        else f"its probabilities fit better, {loss_text}, while the ranking differs by no more "
        f"than noise, {auc_text}"
    )
    lead = names[winner]
    return winner, (
        f"{lead[0].upper()}{lead[1:]} serves this municipality better than {names[other]}: "
        f"{where}, {how}."
    )
