"""The trees' raw score of one row through LightGBM's single-row C API, prepared once per model.

Why: every served score checks that its explanation adds up to the model's own log-odds, so the
request path asks LightGBM for one row's raw score. `Booster.predict` sets up a predictor and
converts its input on every call: about 22 µs in a tight loop and about 100 µs inside a request,
where its Python work runs with cold caches. `LGBM_BoosterPredictForMatSingleRowFast`, with its
configuration made once, costs about 8 µs. It runs the same C++ predictor on the same dense row,
so the number is the same to the bit (tests compare the two on every kind of value).

LightGBM's single-row predictor counts its trees from whatever its booster was last asked to
predict with (`num_iteration`), not from its own configuration, so the predictor gets a booster
of its own that nothing else predicts with: the same trees `Booster.predict` uses by default
(`model_to_string` keeps the best iteration of an early-stopped booster, as `predict` does).

The C API is reached through the `lightgbm` package's own loaded library; should a future
version stop exposing it, or its answer differ from `Booster.predict` on probe rows,
`SingleRowPredictor.create` says why and the caller falls back to `Booster.predict`. LightGBM
serialises single-row calls on a booster with its own lock, so one predictor may be shared by
threads.
"""

from __future__ import annotations

import ctypes
import weakref

import lightgbm as lgb
import numpy as np

_PREDICT_RAW_SCORE = 1  # C_API_PREDICT_RAW_SCORE
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowUnavailable(RuntimeError):
    """This LightGBM build offers no single-row prediction to this package."""


class SingleRowPredictor:
    """Raw score of one float64 row of `num_features` values, as `Booster.predict` gives it."""

    def __init__(self, booster: lgb.Booster, library: ctypes.CDLL, handle: ctypes.c_void_p) -> None:
        self._booster = booster  # its own; the configuration points into it: kept as long
        self._predict = library.LGBM_BoosterPredictForMatSingleRowFast
        self._library = library
        self._handle = handle
        self.num_features = booster.num_feature()
        weakref.finalize(self, library.LGBM_FastConfigFree, handle)

    @classmethod
    def create(cls, booster: lgb.Booster) -> SingleRowPredictor:
        """A predictor of `booster`'s default raw score (the trees `Booster.predict` uses when
        not told otherwise), on a copy of its trees, one thread.

        Raises:
            SingleRowUnavailable: the C API or a booster's handle is not reachable, LightGBM
                refused the copy or the configuration, or its scores differ from
                `Booster.predict`.
        """
        try:
            return cls._prepare(booster)
        except lgb.basic.LightGBMError as exc:
            raise SingleRowUnavailable(f"LightGBM refused it: {exc}") from None

    @classmethod
    def _prepare(cls, booster: lgb.Booster) -> SingleRowPredictor:
        own = lgb.Booster(model_str=booster.model_to_string())
        try:
            from lightgbm.basic import _LIB as library

            init = library.LGBM_BoosterPredictForMatSingleRowFastInit
            own_handle = own._handle
        except (ImportError, AttributeError) as exc:
            raise SingleRowUnavailable(
                f"LightGBM's single-row C API is not reachable: {exc}"
            ) from None
        if booster.num_model_per_iteration() != 1:  # the output buffer holds one score
            raise SingleRowUnavailable("the booster gives more than one score per row")
        handle = ctypes.c_void_p()
        status = init(
            own_handle,
            ctypes.c_int(_PREDICT_RAW_SCORE),
            ctypes.c_int(0),  # start iteration
            ctypes.c_int(-1),  # every tree of its own booster
            ctypes.c_int(_DTYPE_FLOAT64),
            ctypes.c_int32(booster.num_feature()),
            ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(handle),
        )
        if status != 0:
            raise SingleRowUnavailable(_error_text(library))
        predictor = cls(own, library, handle)
        probes = np.array([[0.0] * predictor.num_features, [np.nan] * predictor.num_features])
        expected = np.asarray(booster.predict(probes, raw_score=True, num_threads=1)).tolist()
        if [predictor.raw_score(probes[i : i + 1]) for i in range(len(probes))] != expected:
            raise SingleRowUnavailable("its scores differ from Booster.predict on probe rows")
        return predictor

    def raw_score(self, row: np.ndarray) -> float:
        """The trees' raw score (log-odds before calibration) of one row.

        Raises:
            ValueError: the row is not one C-contiguous float64 row of `num_features` values
                (the C API would read past it).
            lgb.basic.LightGBMError: LightGBM refused the call.
        """
        if row.dtype != np.float64 or row.size != self.num_features or not row.flags.c_contiguous:
            raise ValueError(
                f"expected one C-contiguous float64 row of {self.num_features} values, "
                f"got {row.dtype} {row.shape}"
            )
        out = ctypes.c_double()
        written = ctypes.c_int64()
        status = self._predict(
            self._handle, ctypes.c_void_p(row.ctypes.data), ctypes.byref(written), ctypes.byref(out)
        )
        if status != 0:
            raise lgb.basic.LightGBMError(_error_text(self._library))
        return out.value


def _error_text(library: ctypes.CDLL) -> str:
    message: bytes = library.LGBM_GetLastError()
    return message.decode("utf-8")
