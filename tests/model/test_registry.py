"""Registration with provenance, gates that hold the alias, and verified loading."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from riskscreen.contract.features import encode_frame
from riskscreen.contract.schema import schema_hash
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import (
    ARTIFACT_HASH_TAG,
    ModelNotAvailable,
    ModelTampered,
    client,
    load_verified,
    parse_model_uri,
    register,
)
from riskscreen.settings import Settings


def test_registered_version_carries_provenance(registered: tuple, trained: TrainingResult) -> None:
    settings, registration = registered
    mv = client(settings).get_model_version("riskscreen", registration.version)
    tags = mv.tags
    assert tags[ARTIFACT_HASH_TAG] == registration.artifact_sha256
    assert tags["schema_sha256"] == schema_hash()
    assert tags["data_sha256"] == trained.provenance["data_sha256"]
    assert tags["data_kind"] == "synthetic"
    assert tags["horizon_months"] == "24"
    assert float(tags["threshold"]) == trained.bundle.thresholds.flag
    assert tags["gates_failed"] == "none"
    assert "slope" in tags["calibration"] and "config_version" in tags["config"]
    run = client(settings).get_run(registration.run_id)
    for name in (
        "test_roc_auc",
        "test_pr_auc",
        "test_brier",
        "test_ece",
        "test_recall_at_capacity",
        "test_precision_at_capacity",
        "test_checklist_roc_auc",
        "test_checklist_recall_at_capacity",
        "test_logreg_roc_auc",
        "test_oracle_roc_auc",
        "test_oracle_gap",
    ):
        assert name in run.data.metrics


def test_loaded_model_scores_like_the_trained_one(
    registered: tuple, trained: TrainingResult
) -> None:
    settings, registration = registered
    loaded = load_verified(settings)
    assert loaded.version == registration.version
    x = encode_frame(trained.test_frame.head(500), trained.bundle.spec)
    np.testing.assert_array_equal(loaded.bundle.log_odds(x), trained.bundle.log_odds(x))


def test_a_failing_gate_keeps_the_alias_where_it_was(
    registered: tuple, trained: TrainingResult, small_config: TrainConfig
) -> None:
    settings, first = registered
    outcomes = list(trained.gate_outcomes)
    outcomes[0] = dataclasses.replace(outcomes[0], outcome="fail")
    failing = dataclasses.replace(trained, gate_outcomes=outcomes, verdict="no")
    second = register(failing, small_config, settings)
    name = outcomes[0].name
    assert not second.champion and second.failed_gates == (name,) and second.verdict == "no"
    mlc = client(settings)
    assert str(mlc.get_model_version_by_alias("riskscreen", "champion").version) == first.version
    tags = mlc.get_model_version("riskscreen", second.version).tags
    assert tags["gates_failed"] == name and tags["verdict"] == "no"
    assert json.loads(tags["gate_outcomes"])[0]["outcome"] == "fail"
    assert json.loads(tags["gates"])[name] is False


def test_an_altered_artifact_is_refused_before_loading(
    registered: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, registration = registered
    source = client(settings).get_model_version_download_uri("riskscreen", registration.version)
    model_txt = Path(source.removeprefix("file://")) / "artifacts" / "bundle" / "model.txt"
    original = model_txt.read_bytes()
    loaded_files: list[str] = []
    import riskscreen.registry as reg

    monkeypatch.setattr(reg, "load_bundle", lambda path: loaded_files.append(str(path)))
    try:
        model_txt.write_bytes(original.replace(b"Tree=0", b"Tree=0 ", 1))
        with pytest.raises(ModelTampered):
            load_verified(settings)
        assert loaded_files == []  # nothing was parsed
    finally:
        model_txt.write_bytes(original)
    load_verified(settings)
    assert len(loaded_files) == 1


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="riskscreen@champion"):
        load_verified(Settings(data_dir=tmp_path))


def test_model_uri_forms() -> None:
    assert parse_model_uri("models:/riskscreen@champion") == ("riskscreen", None, "champion")
    assert parse_model_uri("models:/riskscreen/3") == ("riskscreen", "3", None)
    for bad in ("runs:/x/model", "models:/riskscreen/latest"):
        with pytest.raises(ValueError):
            parse_model_uri(bad)


def test_loading_through_mlflow_does_not_look_like_tampering(registered: tuple) -> None:
    """`mlflow models serve` and pyfunc loads write registered_model_meta into the model folder."""
    import mlflow

    settings, registration = registered
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/riskscreen/{registration.version}")
    assert model is not None
    source = client(settings).get_model_version_download_uri("riskscreen", registration.version)
    assert (Path(source.removeprefix("file://")) / "registered_model_meta").exists()
    assert load_verified(settings, registration.version).version == registration.version
