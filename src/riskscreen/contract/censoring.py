"""Kaplan-Meier survival of the follow-up itself, for inverse-probability-of-censoring weights.

People lost to follow-up before their horizon have no label. Those who remain labelled are a
selected group: a long settler has to stay in follow-up for the whole horizon, an early settler
only until settling. Weighting each labelled person by 1 / P(still followed when their label
became known) lets the labelled people stand for the whole eligible cohort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class StepSurvival:
    """A right-continuous step function S(t), stepping down at `times` to `survival`."""

    times: FloatArray
    survival: FloatArray

    def at(self, t: npt.ArrayLike) -> FloatArray:
        """S(t): survival including the events at time t itself."""
        return self._lookup(np.searchsorted(self.times, t, side="right"))

    def before(self, t: npt.ArrayLike) -> FloatArray:
        """S(t-): survival just before t, i.e. counting only the events strictly before t."""
        return self._lookup(np.searchsorted(self.times, t, side="left"))

    def _lookup(self, n_steps_taken: npt.NDArray[np.intp]) -> FloatArray:
        padded = np.concatenate(([1.0], self.survival))
        return padded[n_steps_taken]


def kaplan_meier(durations: npt.ArrayLike, events: npt.ArrayLike) -> StepSurvival:
    """Kaplan-Meier estimate of P(T > t) from durations and event indicators.

    Ties follow the usual convention: someone censored at t is still at risk at t, so
    S steps by (1 - d_t / n_t) with n_t = #{T_i >= t}. Vectorised: one sort, then cumulative
    sums and products over the distinct times.

    Args:
        durations: time to the event or to censoring, one per person (any unit, e.g. days).
        events: True where the duration ends in the event, False where it is censored.
    """
    t = np.asarray(durations, dtype=np.float64)
    e = np.asarray(events, dtype=bool)
    if t.shape != e.shape or t.ndim != 1 or not np.isfinite(t).all():
        raise ValueError("durations and events must be finite 1-d arrays of equal length")
    times, position = np.unique(t, return_inverse=True)
    leaving = np.bincount(position, minlength=times.size)
    deaths = np.bincount(position, weights=e, minlength=times.size)
    at_risk = t.size - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    return StepSurvival(times=times, survival=np.cumprod(1.0 - deaths / at_risk))
