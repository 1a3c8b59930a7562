"""What an import refuses before anything is fitted: a model reading fields the municipality
does not record (named), one made for another horizon, one that never learned from unknown
answers the local intake holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from family_data import SPEC, Data, family_data

from riskscreen.model import imported as imported_module
from riskscreen.model.bundle import Calibration, ModelBundle, Thresholds
from riskscreen.model.config import TrainConfig
from riskscreen.model.imported import ImportRefused, check_servable, evaluate_imported
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.training_data import TrainingData
from riskscreen.synth.generate import Cohort, generate_cohort

CFG = TrainConfig.model_validate({"config_version": 2})


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    data: Data = family_data()
    model = PenalizedLogistic(spec=SPEC, cs=(0.1,), cv=2).fit(data.x, data.y, data.w).model_
    provenance = {"horizon_months": 24, "unknown_fields": ["years_of_schooling"]}
    return ModelBundle(model, SPEC, Calibration(1.0, 0.0), Thresholds(0.6, 0.4), provenance)


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(1000, 31)


def _data(cohort: Cohort, intake: pd.DataFrame | None = None, **kw: object) -> TrainingData:
    return TrainingData(
        cohort.intake if intake is None else intake, cohort.outcomes, None, "real", **kw
    )


def test_a_model_reading_fields_not_recorded_here_is_refused_by_name(
    bundle: ModelBundle, cohort: Cohort, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_recorded = ("driving_licence", "self_rated_health")
    intake = cohort.intake.drop(columns=list(not_recorded))
    data = _data(cohort, intake, not_recorded=not_recorded)
    with pytest.raises(ImportRefused, match="reads self_rated_health, driving_licence, which"):
        check_servable(bundle, data, CFG)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing is fitted for a refused import")

    monkeypatch.setattr(imported_module, "recalibrate", never)
    monkeypatch.setattr(imported_module, "small_design_fit", never)
    with pytest.raises(ImportRefused, match="does not record"):
        evaluate_imported(bundle, data, CFG, archive_sha256="0" * 64)
    # A field the model does not read may be missing here.
    check_servable(bundle, _data(cohort, cohort.intake, not_recorded=("sex",)), CFG)


def test_a_model_for_another_horizon_is_refused(bundle: ModelBundle, cohort: Cohort) -> None:
    twelve = CFG.model_copy(update={"horizon_months": 12})
    with pytest.raises(ImportRefused, match="within 24 months, the config asks for 12"):
        check_servable(bundle, _data(cohort), twelve)
    check_servable(bundle, _data(cohort), CFG)


def test_unknown_answers_the_model_never_learned_from_are_refused(
    bundle: ModelBundle, cohort: Cohort
) -> None:
    intake = cohort.intake.copy()
    assert intake["occupation_group"].isna().any()  # null means no occupation: a value
    intake.loc[intake.index[::7], "years_of_schooling"] = np.nan  # the model learned these
    check_servable(bundle, _data(cohort, intake), CFG)
    intake.loc[intake.index[::10], "literacy"] = np.nan
    with pytest.raises(ImportRefused, match=r"never learned from: literacy \(100 people\);"):
        check_servable(bundle, _data(cohort, intake), CFG)
