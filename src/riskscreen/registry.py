"""MLflow logging, gated registration and hash-verified loading of the served model.

The registered model is an MLflow pyfunc ("models from code": no pickled Python object) whose
only artifact is the bundle directory (bundle.json and the model in its family's own text file:
LightGBM's text model, or a linear model's or EBM's JSON). At registration the SHA-256 of the
whole downloaded model directory is stored as a model-version tag; loading recomputes it over
the downloaded files and refuses a mismatch before any file is parsed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riskscreen.contract.schema import FIELDS_BY_NAME, IntakeField
from riskscreen.model.bundle import ModelBundle, load_bundle, save_bundle
from riskscreen.model.config import TrainConfig
from riskscreen.model.pipeline import TrainingResult
from riskscreen.settings import Settings

log = logging.getLogger(__name__)
ARTIFACT_HASH_TAG = "artifact_sha256"
PYFUNC_CODE = Path(__file__).parent / "model" / "pyfunc_model.py"


class ModelNotAvailable(RuntimeError):
    """No model is registered under the configured alias, or it cannot be fetched."""


class ModelTampered(RuntimeError):
    """The downloaded artifacts differ from what was registered: refuse to load them."""


def mlflow_environment() -> None:
    """Process defaults for MLflow, set by entry points: no telemetry to the internet (the
    machines have none, and usage data about a public-sector system is not ours to send), and no
    per-file progress bars in logs."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


# MLflow itself writes this file into a stored model folder whenever the model is loaded through
# a models:/ URI (e.g. by `mlflow models serve`). It only names the registered model and version,
# and riskscreen never reads it; hashing it would make any MLflow load look like tampering.
MLFLOW_WRITTEN = frozenset({"registered_model_meta"})


def tree_sha256(root: Path) -> str:
    """One hash over every file below `root`: relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file())
    for path in sorted(p for p in files if p.relative_to(root).as_posix() not in MLFLOW_WRITTEN):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def client(settings: Settings) -> Any:
    """An MLflow client on the configured tracking and registry store (no global side effect)."""
    from mlflow import MlflowClient

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(mlc: Any, name: str, settings: Settings) -> str:
    exp = mlc.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(mlc.create_experiment(name, artifact_location=settings.resolved_artifact_root))


@dataclass(frozen=True)
class Registration:
    version: str
    run_id: str
    champion: bool
    failed_gates: tuple[str, ...]
    artifact_sha256: str
    # "needs_approval": only not-assessable gates are open; `riskscreen model approve` may
    # make it champion with a recorded reason. "no": a gate failed.
    verdict: str = "yes"
    open_gates: tuple[str, ...] = ()


def _flat_params(cfg: TrainConfig) -> dict[str, str]:
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat[prefix] = json.dumps(value, default=str)[:500]

    walk("", cfg.model_dump(mode="json"))
    return flat


def register(
    result: TrainingResult, cfg: TrainConfig, settings: Settings, report: Path | None = None
) -> Registration:
    """Log the run, register a version with provenance tags, move the alias if every gate holds."""
    import mlflow

    mlc = client(settings)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_tracking_uri)
    experiment_id = _experiment_id(mlc, cfg.experiment, settings)
    failed = result.failed_gates
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(_flat_params(cfg))
        mlflow.log_metrics({k: v for k, v in result.evaluation.metrics.items() if v == v})
        mlflow.log_dict(
            {"candidates": [asdict(c) for c in result.candidates], "chosen": result.chosen},
            "capacity_candidates.json",
        )
        if result.families is not None:
            mlflow.log_text(result.families.to_csv(index=False), "families.csv")
        mlflow.log_dict(result.label_counts, "label_counts.json")
        mlflow.log_dict(
            {"gates": result.gates, "outcomes": [o.to_dict() for o in result.gate_outcomes]},
            "gates.json",
        )
        for attr, table in result.evaluation.fairness.items():
            mlflow.log_text(table.to_csv(), f"fairness/{attr}.csv")
        if report is not None:
            mlflow.log_artifact(str(report))
        bundle_dir = Path(tmp) / "bundle"
        result.bundle.provenance.update(
            {
                "run_id": run.info.run_id,
                "model_name": cfg.model_name,
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        save_bundle(result.bundle, bundle_dir)
        logged = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={"bundle": str(bundle_dir)},
            signature=_signature(result.bundle.spec.fields),
            input_example=_input_example(result.bundle),
            pip_requirements=_requirements(),
        )
        version = mlflow.register_model(logged.model_uri, cfg.model_name).version
    tags = _version_tags(result, cfg, failed)
    for key, value in tags.items():
        mlc.set_model_version_tag(cfg.model_name, version, key, value)
    digest = _hash_registered(mlc, cfg.model_name, str(version))
    mlc.set_model_version_tag(cfg.model_name, version, ARTIFACT_HASH_TAG, digest)
    if result.verdict == "yes":
        mlc.set_registered_model_alias(cfg.model_name, settings.model_alias, version)
    return Registration(
        str(version),
        run.info.run_id,
        result.verdict == "yes",
        failed,
        digest,
        result.verdict,
        result.open_gates,
    )


# What the pyfunc imports to load and score a bundle of any family: the trees (LightGBM, numba
# for the TreeSHAP kernels that `model.bundle` imports), the linear family (scikit-learn) and the
# EBM family (interpret-core), all imported when the bundle module is, whatever the family.
_PYFUNC_DISTRIBUTIONS = (
    "lightgbm",
    "numba",
    "numpy",
    "pandas",
    "scikit-learn",
    "interpret-core",
    "mlflow",
)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in _PYFUNC_DISTRIBUTIONS]


def _column_type(f: IntakeField) -> Any:
    """The MLflow column type of one intake field, chosen for what MLflow's schema enforcement
    (`mlflow.models.utils._enforce_mlflow_datatype`, and the server's cast before it) lets
    through. `Any` where every typed column would refuse, or alter, real intake data:

    - a category: the canonical intake frame holds a pandas categorical, which `string` refuses;
    - an integer or boolean that may be missing: the canonical frame holds pandas' nullable
      Int64/boolean, which `long` and `boolean` refuse when a value is missing, and `double`
      refuses int64 even when none is; at the server, `boolean` would cast a JSON null to False,
      turning "unknown" into "no" without a word.

    Elsewhere MLflow's types hold (int64, float64, bool). `Any` gives up few checks (MLflow checks
    no values of a `string` column either: an object column passes as it is), but MLflow rebuilds
    an `Any` column value by value: about 2.5 s per 100,000 rows on these machines, nothing for a
    request to `mlflow models serve`, noticeable in a large in-process `predict`. riskscreen's
    own scoring paths do not go through the pyfunc.
    """
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType

    may_be_missing = f.may_be_unknown or f.nullable
    if f.kind == "category" or (may_be_missing and f.kind in ("integer", "boolean")):
        return AnyType()
    types = {"integer": DataType.long, "number": DataType.double, "boolean": DataType.boolean}
    if f.kind not in types:
        raise ValueError(f"{f.name}: no MLflow column type for a {f.kind} feature")
    return types[f.kind]


def _signature(fields: Sequence[str]) -> Any:
    """The pyfunc's signature, from the declaration of the model's fields (not inferred from rows,
    whose dtypes vary with the data and whose inference warns): one required column per field,
    and the calibrated probabilities out."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    inputs = Schema([ColSpec(_column_type(FIELDS_BY_NAME[f]), f) for f in fields])
    return ModelSignature(inputs, Schema([TensorSpec(np.dtype(np.float64), (-1,))]))


def _example_value(f: IntakeField) -> Any:
    if f.kind == "category":
        return f.categories[0]
    if f.kind == "boolean":
        return False
    if f.kind == "integer":
        return int(f.minimum or 0)
    return float(f.minimum or 0.0)


def _input_example(bundle: ModelBundle) -> list[dict[str, Any]]:
    """Request rows for MLflow's input_example.json and serving_input_example.json.

    Made from the declaration, never from data rows: real rows are personal (health) data, and
    the model store is no place for them. A second row leaves unknown the fields this version
    learned unknowns for. Records rather than a DataFrame: MLflow 3.17 serialises a DataFrame
    example with a comparison that pandas 3 warns about (Pandas4Warning); records it takes as they
    are. Without any example MLflow warns that none was given.
    """
    declared = {f: _example_value(FIELDS_BY_NAME[f]) for f in bundle.spec.fields}
    rows = [declared]
    if bundle.unknown_fields:
        rows.append({f: None if f in bundle.unknown_fields else v for f, v in declared.items()})
    return rows


def _version_tags(
    result: TrainingResult, cfg: TrainConfig, failed: tuple[str, ...]
) -> dict[str, str]:
    b = result.bundle
    return {
        "data_kind": str(result.provenance["data_kind"]),
        "data_sha256": str(result.provenance["data_sha256"]),
        "schema_sha256": str(result.provenance["schema_sha256"]),
        "horizon_months": str(cfg.horizon_months),
        "features": ",".join(b.spec.fields),
        "design": str(result.provenance.get("design", "split")),
        "family": b.family.name,
        "unknown_fields": ",".join(b.unknown_fields) or "none",
        "threshold": repr(b.thresholds.flag),
        "calibration": json.dumps(
            {"slope": b.calibration.slope, "intercept": b.calibration.intercept}
        ),
        "config": cfg.model_dump_json(),
        "gates": json.dumps(result.gates),
        "gates_failed": ",".join(failed) or "none",
        "gate_outcomes": json.dumps([o.to_dict() for o in result.gate_outcomes]),
        "verdict": result.verdict,
        "trained_at": str(b.provenance.get("trained_at", "")),
    }


def _download(mlc: Any, name: str, version: str, dest: Path) -> Path:
    import mlflow

    source = mlc.get_model_version_download_uri(name, version)
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(dest), tracking_uri=mlc.tracking_uri
        )
    )


def _hash_registered(mlc: Any, name: str, version: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return tree_sha256(_download(mlc, name, version, Path(tmp)))


@dataclass(frozen=True)
class LoadedModel:
    bundle: ModelBundle
    name: str
    version: str
    artifact_sha256: str
    tags: dict[str, str]


def load_verified(settings: Settings, version: str | None = None) -> LoadedModel:
    """Fetch the aliased (or a named) version, check its hash, then parse the bundle."""
    mlc = client(settings)
    name = settings.model_name
    try:
        mv = (
            mlc.get_model_version(name, version)
            if version
            else mlc.get_model_version_by_alias(name, settings.model_alias)
        )
    except Exception as exc:  # MLflow raises its own RestException for a missing model
        target = f"{name} version {version}" if version else settings.model_uri
        raise ModelNotAvailable(f"no registered model {target}: {exc}") from exc
    expected = mv.tags.get(ARTIFACT_HASH_TAG)
    if not expected:
        raise ModelTampered(f"{name} version {mv.version} has no {ARTIFACT_HASH_TAG} tag")
    with tempfile.TemporaryDirectory() as tmp:
        root = _download(mlc, name, str(mv.version), Path(tmp))
        actual = tree_sha256(root)
        if actual != expected:
            raise ModelTampered(
                f"{name} version {mv.version}: artifacts hash {actual[:12]}…, registered "
                f"{expected[:12]}…; refusing to load an altered model"
            )
        bundle = load_bundle(root / "artifacts" / "bundle")
    return LoadedModel(bundle, name, str(mv.version), actual, dict(mv.tags))


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """`models:/NAME@ALIAS` -> (NAME, None, ALIAS); `models:/NAME/VERSION` -> (NAME, VERSION, None).

    Anything else is refused rather than guessed at, so batch scoring never uses an unverified
    artifact by accident.
    """
    if not uri.startswith("models:/"):
        raise ValueError(f"not a registered-model URI: {uri!r}")
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, None, alias
    name, _, version = rest.partition("/")
    if not version.isdigit():
        raise ValueError(f"expected models:/NAME/VERSION or models:/NAME@ALIAS, got {uri!r}")
    return name, version, None


def run_metrics(settings: Settings, loaded: LoadedModel) -> dict[str, float]:
    """The test metrics logged with the run that produced a loaded model version."""
    run_id = loaded.bundle.provenance.get("run_id")
    if not run_id:
        return {}
    return dict(client(settings).get_run(run_id).data.metrics)
