"""The data the family tests fit on: labelled people of a small cohort, and a second cohort
with values the first never had (a disability category, missing ages and work experience)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)
AGE = SPEC.fields.index("age")
WORK = SPEC.fields.index("work_experience_years")
DISABILITY = SPEC.fields.index("disability")
COGNITIVE = float(SPEC.declarations[DISABILITY].categories.index("cognitive"))


@dataclass(frozen=True)
class Data:
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    x_new: np.ndarray  # another cohort, with values the training rows never had


def family_data() -> Data:
    """Training rows without the cognitive disability category; new rows with it, and with
    ages (never missing in training) and work experience missing. The callers blank work
    experience in training their own way."""
    cohort = generate_cohort(3000, 11)
    labels = make_labels(cohort.intake, cohort.outcomes)
    keep = (labels["status"] == "labelled").to_numpy() & (
        cohort.intake["disability"] != "cognitive"  # a category never seen in training
    ).to_numpy()
    x = encode_frame(cohort.intake[keep], SPEC)
    y = labels["long_settlement"][keep].to_numpy(dtype=float)
    w = labels["ipcw_weight"][keep].to_numpy()
    x_new = encode_frame(generate_cohort(2000, 12).intake, SPEC)
    x_new[::7, AGE] = np.nan
    x_new[::5, WORK] = np.nan
    return Data(x, y, w, x_new)
