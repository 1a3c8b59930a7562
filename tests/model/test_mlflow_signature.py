"""What MLflow's own tools see of a registered version: a signature made from the declaration,
a pyfunc that takes intake frames as riskscreen's tables hold them, and a quiet training run.

`riskscreen train` used to print MLflow's integer-schema and input-example hints at the user;
under pytest's "error" filter the first made `infer_signature` give up and log `Any` for the
whole input. The training test records every warning rather than raising it, so that a warning
a library catches and swallows is still seen.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from riskscreen.cli import app as cli
from riskscreen.contract.features import encode_frame
from riskscreen.contract.schema import FIELDS_BY_NAME, MAY_BE_UNKNOWN
from riskscreen.model.bundle import ModelBundle
from riskscreen.model.pipeline import TrainingResult
from riskscreen.registry import Registration, _input_example, client, load_verified
from riskscreen.settings import Settings

# A cohort the small-cohort design trains in seconds, with every candidate family fitted.
QUIET_CONFIG = {
    "config_version": 2,
    "data": {"source": "synthetic", "synthetic": {"n": 3000, "seed": 11}},
    "fairness": {"bootstrap": 30},
    "gates": {"bootstrap": 100},
}


def _mlflow_input(settings: Settings, version: str) -> list[tuple[str, str]]:
    """(name, type) of each column of a registered version's MLflow signature."""
    import mlflow

    source = client(settings).get_model_version_download_uri(settings.model_name, version)
    info = mlflow.models.get_model_info(source.removeprefix("file://"))
    assert info.signature is not None
    inputs = info.signature.inputs
    assert inputs.has_input_names(), f"no column names: {inputs}"  # the AnyType fallback has none
    return [(c.name, repr(c.type)) for c in inputs.inputs]


def _expected_type(name: str) -> str:
    f = FIELDS_BY_NAME[name]
    if f.kind == "category" or (name in MAY_BE_UNKNOWN and f.kind in ("integer", "boolean")):
        return "Any"
    return {"integer": "long", "number": "double", "boolean": "boolean"}[f.kind]


def test_training_prints_no_library_warning_and_logs_the_fields_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(QUIET_CONFIG), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the report goes to models/ under the working directory
    # Import-time notices of MLflow's own modules are not the training run's: import them first.
    import mlflow.pyfunc  # noqa: F401
    from mlflow.store.tracking import sqlalchemy_store  # noqa: F401

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(
            cli,
            ["train", "--config", str(config)],
            env={"RISKSCREEN_DATA_DIR": str(tmp_path / "data")},
        )
    assert result.exit_code in (0, 3), result.output  # 3: registered, awaiting an approval
    assert [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught] == []
    assert "Warning" not in result.stderr, result.stderr

    settings = Settings(data_dir=tmp_path / "data")
    mv = client(settings).search_model_versions(f"name='{settings.model_name}'")[0]
    fields = load_verified(settings, str(mv.version)).bundle.spec.fields
    columns = _mlflow_input(settings, str(mv.version))
    assert [name for name, _ in columns] == list(fields)
    assert columns == [(name, _expected_type(name)) for name in fields]


def test_the_stored_example_is_made_from_the_declaration(registered: tuple) -> None:
    """No data row reaches the model store; the example is valid input for this version."""
    settings, registration = registered
    uri = client(settings).get_model_version_download_uri("riskscreen", registration.version)
    folder = Path(uri.removeprefix("file://"))
    rows = json.loads((folder / "serving_input_example.json").read_text())["inputs"]
    first = rows[0]
    for name, value in first.items():
        f = FIELDS_BY_NAME[name]
        if f.kind == "category":
            assert value == f.categories[0]
        elif f.kind == "boolean":
            assert value is False
        else:
            assert value == (f.minimum or 0)
    requirements = (folder / "requirements.txt").read_text().split()
    names = {r.split("==")[0] for r in requirements}
    assert names == {
        "lightgbm",
        "numba",
        "numpy",
        "pandas",
        "scikit-learn",
        "interpret-core",
        "mlflow",
    }


def test_the_example_leaves_unknown_what_the_version_learned_unknown(
    trained: TrainingResult,
) -> None:
    learned = ["years_of_schooling", "driving_licence"]
    provenance = {**trained.bundle.provenance, "unknown_fields": learned}
    bundle = dataclasses.replace(trained.bundle, provenance=provenance)
    known, unknown = _input_example(bundle)
    assert None not in known.values()
    assert [f for f, v in unknown.items() if v is None] == learned
    assert {f: v for f, v in unknown.items() if f not in learned} == {
        f: v for f, v in known.items() if f not in learned
    }
    assert len(_input_example(trained.bundle)) == 1 + bool(trained.bundle.unknown_fields)


def intake_with_unknowns(frame: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    """The model's fields of `frame`, with every field that may be unknown left unknown on every
    third row, in the dtypes riskscreen's canonical intake gives them (Int64, boolean, NaN)."""
    out = frame[list(bundle.spec.fields)].reset_index(drop=True).copy()
    for name in out.columns:
        f = FIELDS_BY_NAME[name]
        if not f.may_be_unknown:
            continue
        if f.kind == "integer":
            out[name] = out[name].astype("Int64")
        elif f.kind == "boolean":
            out[name] = out[name].astype("boolean")
        out.loc[::3, name] = None
    return out


def probabilities(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    """The bundle's own calibrated probabilities, computed without MLflow."""
    return np.asarray(1.0 / (1.0 + np.exp(-bundle.log_odds(encode_frame(frame, bundle.spec)))))


def test_the_pyfunc_takes_intake_frames_as_they_come(
    registered: tuple[Settings, Registration], trained: TrainingResult
) -> None:
    import mlflow

    settings, registration = registered
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/riskscreen/{registration.version}")
    bundle = trained.bundle
    canonical = trained.test_frame[list(bundle.spec.fields)].head(200)  # pandas categoricals
    unknowns = intake_with_unknowns(canonical, bundle)  # nullable Int64 and boolean, NaN
    categories = [c for c in canonical if FIELDS_BY_NAME[c].kind == "category"]
    frames = {
        "canonical": canonical,
        "unknowns": unknowns,
        "categories as str": unknowns.astype(dict.fromkeys(categories, "str")),
        "categories as object": unknowns.astype(dict.fromkeys(categories, object)),
        "unknown integers as float": unknowns.astype(
            {c: "float64" for c in unknowns if str(unknowns[c].dtype) == "Int64"}
        ),
    }
    for name, frame in frames.items():
        np.testing.assert_allclose(
            model.predict(frame), probabilities(bundle, frame), rtol=0, atol=1e-12, err_msg=name
        )
