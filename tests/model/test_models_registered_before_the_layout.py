"""A version registered before the domain layout (c10ac4c) still loads, scores and replays.

Registered versions are MLflow "models from code": MLflow keeps a copy of the `pyfunc_model.py`
they were logged with, and that copy imports `riskscreen.bundle` and `riskscreen.features`.
An MLflow store holds absolute paths and does not travel, so the test registers a model with
c10ac4c's file (tests/fixtures/pyfunc_model_c10ac4c.py) and then uses it as before the move.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from riskscreen import registry
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import ApiKey
from riskscreen.jobs.casework import replay, score_and_audit_many
from riskscreen.jobs.explore import intake_records
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.model.scoring import Scorer, score_frame
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort

OLD_PYFUNC = Path(__file__).resolve().parents[1] / "fixtures" / "pyfunc_model_c10ac4c.py"


@pytest.fixture(scope="module")
def old_version(
    tmp_path_factory: pytest.TempPathFactory, trained: TrainingResult, small_config: TrainConfig
) -> tuple[Settings, str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("registered-by-c10ac4c"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "PYFUNC_CODE", OLD_PYFUNC)
        registration = registry.register(trained, small_config, settings)
    return settings, registration.version


def test_the_version_runs_the_old_code(old_version: tuple[Settings, str]) -> None:
    settings, version = old_version
    folder = registry.client(settings).get_model_version_download_uri("riskscreen", version)
    code = "\n".join(p.read_text() for p in Path(folder.removeprefix("file://")).rglob("*.py"))
    assert "from riskscreen.bundle import ModelBundle, load_bundle" in code
    assert "from riskscreen.features import encode_frame" in code


def test_mlflow_loads_it_and_predicts_as_before(
    old_version: tuple[Settings, str], trained: TrainingResult, small_cohort: Cohort
) -> None:
    import mlflow

    settings, version = old_version
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/riskscreen/{version}")
    frame = small_cohort.intake.head(200)
    # The python model itself, past MLflow's input enforcement: the signature these versions
    # were logged with (inferred from an object frame) declares one column of type Any, so
    # `model.predict` hands the model only `case_ref`. That is the small-cohort issue's (#15)
    # to fix; here the point is that the old code's imports still resolve and score.
    predicted = np.asarray(model.unwrap_python_model().predict(None, frame))
    expected = score_frame(frame, trained.bundle)["probability"].to_numpy()
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=1e-12)


def test_riskscreen_loads_scores_and_replays_it(
    old_version: tuple[Settings, str], small_cohort: Cohort, tmp_path: Path
) -> None:
    settings, version = old_version
    loaded = registry.load_verified(settings, version)  # hash checked after MLflow's own load
    key = ApiKey("k-old", "case manager", "case_manager", datetime.now(UTC), None)
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    try:
        items = [
            (f"OLD-{i}", record)
            for i, record in enumerate(intake_records(small_cohort.intake.head(5)))
        ]
        audited = score_and_audit_many(store, loaded, Scorer(loaded.bundle), key, items)
        for one in audited:
            comparisons = replay(one.record, lambda v: registry.load_verified(settings, v))
            assert comparisons and all(c.equal for c in comparisons), comparisons
    finally:
        store.close()
