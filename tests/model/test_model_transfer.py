"""A model carried from one municipality to another, through the command line.

The exporting side is the session's registered model (trees on 60,000 people, seed 11). The
receiving municipality has 3,000 people of another cohort (seed 21) as Parquet files named in
its training config. Export twice gives the same bytes; import checks the hash before opening
the archive, refuses what cannot be served here, and registers a recalibrated version whose
bundle and report name both sources, whose explanations add up and whose scores replay.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from riskscreen import registry
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import ApiKey
from riskscreen.cli import app
from riskscreen.contract.features import encode_frame
from riskscreen.jobs.casework import replay, score_and_audit_many
from riskscreen.jobs.explore import intake_records
from riskscreen.model import archive
from riskscreen.model.config import load_train_config
from riskscreen.model.imported import DESIGN
from riskscreen.model.scoring import Scorer
from riskscreen.model.training_data import load_training_data
from riskscreen.registry import Registration
from riskscreen.settings import Settings
from riskscreen.synth.generate import write_cohort

EXIT = {"yes": 0, "no": 2, "needs_approval": 3}


@dataclass(frozen=True)
class Exported:
    path: Path
    sha256: str
    source: Registration


@dataclass(frozen=True)
class Municipality:
    root: Path
    config: Path
    env: dict[str, Any]

    def settings(self) -> Settings:
        return Settings(data_dir=self.root / "state")


def _config(root: Path, **changes: Any) -> dict[str, Any]:
    return {
        "config_version": 2,
        "data": {
            "source": "files",
            "intake_path": str(root / "cohort" / "intake.parquet"),
            "outcomes_path": str(root / "cohort" / "outcomes.parquet"),
        },
        # One candidate family keeps the local comparison quick; the design is the same.
        "design": {"folds": {"candidates": ["trees"]}},
        "fairness": {"bootstrap": 30},
        "gates": {"bootstrap": 100},
        **changes,
    }


def _invoke(args: list[str], env: dict[str, Any]) -> Any:
    return CliRunner().invoke(app, args, env=env)


@pytest.fixture(scope="module")
def exported(
    registered: tuple[Settings, Registration], tmp_path_factory: pytest.TempPathFactory
) -> Exported:
    settings, registration = registered
    out = tmp_path_factory.mktemp("export") / "model.tar"
    env = {"RISKSCREEN_DATA_DIR": str(settings.data_dir)}
    result = _invoke(["model", "export", "--version", registration.version, "--out", str(out)], env)
    assert result.exit_code == 0, result.output
    match = re.search(r"SHA-256 ([0-9a-f]{64})", result.output)
    assert match and str(out) in result.output, result.output
    return Exported(out, match.group(1), registration)


@pytest.fixture(scope="module")
def municipality(tmp_path_factory: pytest.TempPathFactory) -> Municipality:
    root = tmp_path_factory.mktemp("municipality")
    write_cohort(root / "cohort", n=3000, seed=21)
    config = root / "train.yaml"
    config.write_text(yaml.safe_dump(_config(root)), encoding="utf-8")
    return Municipality(root, config, {"RISKSCREEN_DATA_DIR": str(root / "state")})


@pytest.fixture(scope="module")
def imported(exported: Exported, municipality: Municipality) -> tuple[Any, str]:
    """`riskscreen model import`, run where the municipality keeps its files."""
    args = ["model", "import", str(exported.path), "--sha256", exported.sha256]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(municipality.root)
        result = _invoke([*args, "--config", str(municipality.config)], municipality.env)
    versions = registry.client(municipality.settings()).search_model_versions("name='riskscreen'")
    assert len(versions) == 1, (result.output, result.exception)
    return result, str(versions[0].version)


def test_export_is_byte_identical_and_names_its_version(
    exported: Exported, registered: tuple[Settings, Registration], tmp_path: Path
) -> None:
    settings, registration = registered
    again = tmp_path / "again.tar"
    env = {"RISKSCREEN_DATA_DIR": str(settings.data_dir)}
    result = _invoke(
        ["model", "export", "--version", registration.version, "--out", str(again)], env
    )
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == exported.path.read_bytes()
    assert hashlib.sha256(again.read_bytes()).hexdigest() == exported.sha256
    bundle = archive.read_archive(again, exported.sha256)
    assert bundle.provenance["run_id"] == registration.run_id
    assert bundle.provenance["exported_from"] == {
        "model_name": "riskscreen",
        "version": registration.version,
        "artifact_sha256": registration.artifact_sha256,
        "verdict": registration.verdict,
    }


def test_import_registers_a_version_that_names_both_sources(
    imported: tuple[Any, str], exported: Exported, municipality: Municipality
) -> None:
    result, version = imported
    settings = municipality.settings()
    tags = registry.client(settings).get_model_version("riskscreen", version).tags
    assert result.exit_code == EXIT[tags["verdict"]], result.output
    assert tags["design"] == DESIGN
    local = load_training_data(load_train_config(municipality.config))
    prov = registry.load_verified(settings, version).bundle.provenance
    source, rec = prov["source"], prov["recalibration"]
    assert source["archive_sha256"] == exported.sha256
    assert source["provenance"]["run_id"] == exported.source.run_id
    assert source["provenance"]["exported_from"]["version"] == exported.source.version
    assert rec["data_sha256"] == prov["data_sha256"] == local.fingerprint()
    assert rec["test_years"] == prov["test_years"] and len(rec["test_years"]) == 3
    assert prov["run_id"] != exported.source.run_id and prov["design"] == DESIGN
    sentence = rec["backtest"]["sentence"]
    assert sentence in result.output and "people of" in sentence
    html = (municipality.root / "models" / f"riskscreen-v{version}.html").read_text()
    for value in (
        exported.sha256,
        exported.source.run_id,
        exported.source.artifact_sha256,
        local.fingerprint(),
        'id="imported-backtest"',
        f"{rec['slope']:.4f} × imported {rec['intercept']:+.4f}",
    ):
        assert value in html, value
    assert "The data cannot tell" in html or "serves this municipality better" in html


def test_the_imported_version_explains_exactly_and_replays(
    imported: tuple[Any, str], municipality: Municipality, tmp_path: Path
) -> None:
    _, version = imported
    settings = municipality.settings()
    loaded = registry.load_verified(settings, version)
    intake = load_training_data(load_train_config(municipality.config)).intake
    x = encode_frame(intake, loaded.bundle.spec)
    base, contrib = loaded.bundle.contributions(x)
    np.testing.assert_allclose(
        base + contrib.sum(axis=1), loaded.bundle.log_odds(x), rtol=0, atol=1e-9
    )
    key = ApiKey("k-1", "case manager", "case_manager", datetime.now(UTC), None)
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    try:
        items = [(f"IMP-{i}", r) for i, r in enumerate(intake_records(intake.head(5)))]
        audited = score_and_audit_many(store, loaded, Scorer(loaded.bundle), key, items)
        for one in audited:
            comparisons = replay(one.record, lambda v: registry.load_verified(settings, v))
            assert comparisons and all(c.equal for c in comparisons), comparisons
    finally:
        store.close()


def test_a_wrong_hash_is_refused_before_the_archive_is_opened(
    imported: tuple[Any, str],
    exported: Exported,
    municipality: Municipality,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    tampered = tmp_path / "model.tar"
    data = bytearray(exported.path.read_bytes())
    data[data.index(b'"horizon_months": ') + 18] = ord("3")  # 24 months becomes 34
    tampered.write_bytes(bytes(data))
    opened: list[str] = []
    monkeypatch.setattr(archive.tarfile, "open", lambda *a, **k: opened.append("tar"))
    monkeypatch.setattr(archive, "load_bundle", lambda *a, **k: opened.append("bundle"))
    args = ["model", "import", str(tampered), "--sha256", exported.sha256]
    result = _invoke([*args, "--config", str(municipality.config)], municipality.env)
    assert result.exit_code == 1 and "refused unopened" in result.output, result.output
    assert opened == []
    versions = registry.client(municipality.settings()).search_model_versions("name='riskscreen'")
    assert len(versions) == 1  # only the import of the test above


def test_what_cannot_be_served_here_is_refused_with_its_reason(
    imported: tuple[Any, str], exported: Exported, municipality: Municipality, tmp_path: Path
) -> None:
    root = municipality.root
    # An export without two fields the model reads, its mapping declaring them not recorded.
    not_recorded = ["driving_licence", "self_rated_health"]
    intake = pd.read_parquet(root / "cohort" / "intake.parquet").drop(columns=not_recorded)
    intake.to_parquet(tmp_path / "intake.parquet", index=False)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f"mapping_version: 1\nintake:\n  not_recorded: {not_recorded}\n")
    mapped = {
        **_config(root)["data"],
        "intake_path": str(tmp_path / "intake.parquet"),
        "mapping": str(mapping),
    }
    refusals = {
        "horizon": (_config(root, horizon_months=12), "within 24 months, the config asks for 12"),
        "fields": (
            _config(root, data=mapped),
            "reads self_rated_health, driving_licence, which this municipality does not record",
        ),
    }
    for name, (config, message) in refusals.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        args = ["model", "import", str(exported.path), "--sha256", exported.sha256]
        result = _invoke([*args, "--config", str(path)], municipality.env)
        assert result.exit_code == 1, (name, result.output)
        assert message in " ".join(result.output.split()), (name, result.output)
    versions = registry.client(municipality.settings()).search_model_versions("name='riskscreen'")
    assert len(versions) == 1  # nothing registered by a refused import
