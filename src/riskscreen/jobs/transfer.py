"""`riskscreen model export` and `import`: a model carried from one municipality to another.

The exporting side writes a registered version, verified against its registered artifact hash,
as one deterministic archive and gives its SHA-256 to the receiver out of band. The receiving
side checks that hash before opening the archive, refuses a model it could not serve, then
recalibrates it on its own people, compares it with a model trained there, evaluates and gates
it as training does, and registers it with both provenances and a report. The I/O edge around
the pure flows of `model.archive` and `model.imported`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskscreen.jobs.training import register_with_report
from riskscreen.model.archive import read_archive, write_archive
from riskscreen.model.config import load_train_config
from riskscreen.model.imported import ImportedResult, evaluate_imported
from riskscreen.model.training_data import load_training_data
from riskscreen.registry import Registration, load_verified
from riskscreen.settings import Settings


@dataclass(frozen=True)
class Exported:
    path: Path
    sha256: str
    name: str
    version: str


def export_version(settings: Settings, version: str, out: Path | None = None) -> Exported:
    """Write a registered version's bundle as an archive; the same version gives the same bytes.

    The bundle is the one `registry.load_verified` parsed after checking the registered
    artifact hash, with the version it was exported from and that version's verdict at the
    source added to its provenance (no time: a second export is byte-identical).

    Raises:
        ModelNotAvailable, ModelTampered: as `registry.load_verified`.
    """
    loaded = load_verified(settings, version)
    bundle = loaded.bundle
    bundle.provenance["exported_from"] = {
        "model_name": loaded.name,
        "version": loaded.version,
        "artifact_sha256": loaded.artifact_sha256,
        "verdict": loaded.tags.get("verdict", "unknown"),  # its gates at the source
    }
    path = out or Path(f"{loaded.name}-v{loaded.version}.tar")
    return Exported(path, write_archive(bundle, path), loaded.name, loaded.version)


@dataclass(frozen=True)
class Imported:
    registration: Registration
    outcome: ImportedResult
    report: Path


def import_archive(
    archive: Path,
    sha256: str,
    config_path: Path,
    settings: Settings,
    echo: Callable[[str], object] = lambda _: None,
    report_dir: Path = Path("models"),
) -> Imported:
    """Check, recalibrate, compare, evaluate, register and report an imported bundle.

    Raises:
        ArchiveRefused: the file's SHA-256 is not `sha256` (nothing in it was read), or it is
            not exactly a bundle.
        ImportRefused: the model cannot be served here (fields not recorded, horizon, unknowns).
        TooFewPeople: too few local labelled people for the backtest.
    """
    start = time.perf_counter()

    def step(message: str) -> None:
        echo(f"[{time.perf_counter() - start:5.1f}s] {message}")

    bundle = read_archive(archive, sha256)
    archive_sha256 = sha256.strip().lower()
    step(f"{archive.name}: SHA-256 verified; a {bundle.family.name} model")
    cfg = load_train_config(config_path)
    step(f"loading local data ({cfg.data.source})")
    data = load_training_data(cfg)
    outcome = evaluate_imported(bundle, data, cfg, archive_sha256=archive_sha256, step=step)
    result = outcome.result
    registration, report = register_with_report(
        result, cfg, settings, data.data_card, report_dir, step
    )
    return Imported(registration, outcome, report)
