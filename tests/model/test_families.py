"""Every model family in a bundle: stored without pickle, scored and explained exactly by
riskscreen from its own files, served alike by the request path, batch scoring and the pyfunc,
and replayed from a registered version to the same numbers.

Each family is fitted on a small synthetic cohort (4,000 people) and bundled with a calibration
that is not the identity, so every number below has been through the affine map.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskscreen import registry
from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import ApiKey
from riskscreen.contract.features import FeatureSpec, encode_frame
from riskscreen.contract.labels import make_labels
from riskscreen.contract.schema import DEFAULT_FEATURES, schema_hash
from riskscreen.jobs.casework import replay, score_and_audit_many
from riskscreen.jobs.explore import intake_records
from riskscreen.model.bundle import (
    LEAF_TABLES,
    Calibration,
    ModelBundle,
    Thresholds,
    load_bundle,
    save_bundle,
)
from riskscreen.model.config import ModelConfig, TrainConfig, TreeCandidate
from riskscreen.model.ebm import MainEffectsEBM
from riskscreen.model.evaluate import Evaluation
from riskscreen.model.families import EBM, EBM_TERMS, LINEAR, LINEAR_TERMS, TREES
from riskscreen.model.gate_rules import GateOutcome
from riskscreen.model.linear import PenalizedLogistic
from riskscreen.model.pipeline import TrainingResult
from riskscreen.model.scoring import Scorer, score_frame
from riskscreen.model.train import YearSplit, fit_trees
from riskscreen.settings import Settings
from riskscreen.synth.generate import generate_cohort

SPEC = FeatureSpec(DEFAULT_FEATURES)
FAMILIES = (TREES, LINEAR, EBM)
EXPLAINER = {TREES: LEAF_TABLES, LINEAR: LINEAR_TERMS, EBM: EBM_TERMS}
FILES = {TREES: "model.txt", LINEAR: "linear.json", EBM: "ebm.json"}


@dataclass(frozen=True)
class Cohort:
    x: np.ndarray  # the labelled training rows, with their labels and censoring weights
    y: np.ndarray
    w: np.ndarray
    intake: pd.DataFrame  # another cohort's intake, to score
    awkward: np.ndarray  # its rows, with every field missing somewhere


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    generated = generate_cohort(4000, 11)
    labels = make_labels(generated.intake, generated.outcomes)
    keep = (labels["status"] == "labelled").to_numpy()
    intake = generate_cohort(400, 12).intake.reset_index(drop=True)
    awkward = encode_frame(intake, SPEC)
    for i in range(awkward.shape[1]):
        awkward[i :: awkward.shape[1] + 1, i] = np.nan
    return Cohort(
        encode_frame(generated.intake[keep], SPEC),
        labels["long_settlement"][keep].to_numpy(dtype=float),
        labels["ipcw_weight"][keep].to_numpy(),
        intake,
        awkward,
    )


@pytest.fixture(scope="module")
def bundles(cohort: Cohort) -> dict[str, ModelBundle]:
    """One bundle per family, each with a calibration that is not the identity."""
    x, y, w = cohort.x, cohort.y, cohort.w
    models = {
        TREES: fit_trees(
            x, y, w, SPEC, ModelConfig(num_threads=1), TreeCandidate(num_trees=30, num_leaves=7)
        ),
        LINEAR: PenalizedLogistic(spec=SPEC, cs=(0.01, 0.1, 1.0), cv=3).fit(x, y, w).model_,
        EBM: MainEffectsEBM(spec=SPEC, outer_bags=2).fit(x, y, w).model_,
    }
    return {
        name: ModelBundle(
            model, SPEC, Calibration(0.9, -0.1), Thresholds(0.6, 0.45), {"horizon_months": 24}
        )
        for name, model in models.items()
    }


def _contributions(bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    return np.column_stack(bundle.contributions(x))


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_give_the_same_numbers_bit_for_bit(
    bundles: dict[str, ModelBundle], cohort: Cohort, family: str, tmp_path: Path
) -> None:
    bundle = bundles[family]
    save_bundle(bundle, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(
        ["bundle.json", FILES[family]]
    )
    loaded = load_bundle(tmp_path / "a")
    assert loaded.family.name == family and loaded.explainer == EXPLAINER[family]
    for x in (cohort.x, cohort.awkward):
        assert np.array_equal(loaded.log_odds(x), bundle.log_odds(x))
        assert np.array_equal(_contributions(loaded, x), _contributions(bundle, x))
    # Deterministic, and the model's fingerprint is its file's.
    save_bundle(loaded, tmp_path / "b")
    for name in ("bundle.json", FILES[family]):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    model_file = (tmp_path / "a" / FILES[family]).read_bytes()
    assert bundle.model_sha256() == hashlib.sha256(model_file).hexdigest()


def test_bundle_json_names_the_family_and_trees_stay_format_1(
    bundles: dict[str, ModelBundle], tmp_path: Path
) -> None:
    for family, bundle in bundles.items():
        save_bundle(bundle, tmp_path / family)
        meta = json.loads((tmp_path / family / "bundle.json").read_text())
        if family == TREES:
            assert meta["format"] == 1 and "family" not in meta
        else:
            assert meta["format"] == 2 and meta["family"] == family
        assert meta["features"] == list(SPEC.fields)
    # The report's fingerprint of trees is still the LightGBM text model's.
    trees = bundles[TREES]
    expected = hashlib.sha256(trees.booster.model_to_string().encode()).hexdigest()
    assert trees.model_sha256() == expected
    with pytest.raises(AttributeError, match="a linear bundle has no trees"):
        _ = bundles[LINEAR].booster


def test_a_bundle_written_before_families_loads_and_scores_as_before(
    bundles: dict[str, ModelBundle], cohort: Cohort, tmp_path: Path
) -> None:
    trees = bundles[TREES]
    trees.booster.save_model(str(tmp_path / "model.txt"))  # as the format-1 writer did
    meta = {
        "format": 1,
        "features": list(SPEC.fields),
        "calibration": {"slope": 0.9, "intercept": -0.1},
        "thresholds": {"flag": 0.6, "elevated": 0.45},
        "provenance": {"horizon_months": 24},
    }
    (tmp_path / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    loaded = load_bundle(tmp_path)
    assert loaded.family.name == TREES
    assert np.array_equal(loaded.log_odds(cohort.awkward), trees.log_odds(cohort.awkward))
    assert np.array_equal(_contributions(loaded, cohort.x), _contributions(trees, cohort.x))


def test_unknown_formats_families_and_mismatched_fields_are_refused(
    bundles: dict[str, ModelBundle], tmp_path: Path
) -> None:
    save_bundle(bundles[LINEAR], tmp_path)
    meta = json.loads((tmp_path / "bundle.json").read_text())
    refusals = (
        ({"format": 3}, "unsupported bundle format 3"),
        ({"family": "svm"}, "unknown model family 'svm'"),
    )
    for change, error in refusals:
        (tmp_path / "bundle.json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(ValueError, match=error):
            load_bundle(tmp_path)
    fewer = FeatureSpec(SPEC.fields[:-1])
    for bundle in bundles.values():
        with pytest.raises(ValueError, match="feature"):
            ModelBundle(bundle.model, fewer, bundle.calibration, bundle.thresholds)


@pytest.mark.parametrize("family", FAMILIES)
def test_contributions_add_up_and_one_row_is_the_batchs_row(
    bundles: dict[str, ModelBundle], cohort: Cohort, family: str
) -> None:
    bundle = bundles[family]
    for x in (cohort.x[:1000], cohort.awkward):
        base, contrib = bundle.contributions(x)
        log_odds = bundle.log_odds(x)
        np.testing.assert_allclose(base + contrib.sum(axis=1), log_odds, rtol=0, atol=1e-9)
        # One row (every request) takes the family's one-row path: the same contributions to
        # the bit, the same log-odds (trees, EBM) or the same up to rounding (a BLAS dot).
        rows = [bundle.contributions(x[i : i + 1]) for i in range(len(x))]
        assert np.array_equal(np.concatenate([b for b, _ in rows]), base)
        assert np.array_equal(np.vstack([c for _, c in rows]), contrib)
        single = np.concatenate([bundle.log_odds(x[i : i + 1]) for i in range(len(x))])
        if family == LINEAR:
            np.testing.assert_allclose(single, log_odds, rtol=0, atol=1e-12)
        else:
            assert np.array_equal(single, log_odds)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_request_scores_as_batch_scoring_does_and_names_the_explainer(
    bundles: dict[str, ModelBundle], cohort: Cohort, family: str
) -> None:
    bundle = bundles[family]
    frame = cohort.intake.head(100)
    scored = score_frame(frame, bundle, num_threads=1)
    scorer = Scorer(bundle)
    assert scorer.explainer == bundle.explainer == EXPLAINER[family]
    for i, record in enumerate(intake_records(frame)):
        result = scorer.score(record)
        row = scored.iloc[i]
        assert result.explainer == EXPLAINER[family]
        assert (result.probability, result.log_odds, result.base_log_odds) == (
            row["probability"],
            row["log_odds"],
            row["base_log_odds"],
        )
        assert (result.band, result.flagged) == (row["band"], row["flagged"])
        for c in result.contributions:
            assert c.contribution == row[f"contribution_{c.field}"], c.field


def test_an_explainer_of_another_family_is_refused(
    bundles: dict[str, ModelBundle], cohort: Cohort
) -> None:
    for family, bundle in bundles.items():
        assert bundle.explainers[0] == EXPLAINER[family]
        for other in set(EXPLAINER.values()) - set(bundle.explainers):
            with pytest.raises(ValueError, match=f"unknown explainer '{other}'"):
                bundle.contributions(cohort.x[:2], explainer=other)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_pyfunc_predicts_the_served_probabilities(
    bundles: dict[str, ModelBundle], cohort: Cohort, family: str, tmp_path: Path
) -> None:
    from riskscreen.model.pyfunc_model import RiskscreenModel

    save_bundle(bundles[family], tmp_path)
    model = RiskscreenModel()
    model.load_context(SimpleNamespace(artifacts={"bundle": str(tmp_path)}))
    frame = cohort.intake.head(200)
    predicted = model.predict(None, frame[list(SPEC.fields)])
    expected = score_frame(frame, bundles[family])["probability"].to_numpy()
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=1e-12)


# --- registered, loaded, scored, audited and replayed ----------------------------------------


def _training_result(bundle: ModelBundle, frame: pd.DataFrame) -> TrainingResult:
    """What `registry.register` reads of a training run, for a bundle fitted here."""
    bundle = dataclasses.replace(bundle, provenance={**bundle.provenance, "horizon_months": 24})
    test = frame.assign(probability=score_frame(frame, bundle)["probability"])
    return TrainingResult(
        bundle=bundle,
        evaluation=Evaluation({"roc_auc": 0.7}, {}, pd.DataFrame()),
        candidates=[],
        chosen=0,
        split=YearSplit((), (), (), ()),
        label_counts={},
        split_sizes={},
        gate_outcomes=[
            GateOutcome(
                "auc_gain_over_checklist",
                "pass",
                "ROC AUC gain",
                0.1,
                0.05,
                0.15,
                ">= 0.05",
                100,
                0.9,
            )
        ],
        verdict="yes",
        importance=pd.Series(dtype=float),
        test_frame=test,
        test_contributions=np.empty((0, len(SPEC.fields))),
        provenance={
            "data_kind": "synthetic",
            "data_sha256": "0" * 64,
            "schema_sha256": schema_hash(),
        },
    )


@pytest.mark.parametrize("family", [LINEAR, EBM])
def test_a_registered_version_of_the_family_scores_and_replays(
    bundles: dict[str, ModelBundle], cohort: Cohort, family: str, tmp_path: Path
) -> None:
    import mlflow

    settings = Settings(data_dir=tmp_path / "data")
    cfg = TrainConfig.model_validate({"config_version": 2})
    frame = cohort.intake.head(50)
    version = registry.register(_training_result(bundles[family], frame), cfg, settings).version
    loaded = registry.load_verified(settings, version)
    assert loaded.bundle.family.name == family
    key = ApiKey("k-1", "case manager", "case_manager", datetime.now(UTC), None)
    store = AuditStore.from_url(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    try:
        items = [(f"C-{i}", r) for i, r in enumerate(intake_records(frame.head(5)))]
        audited = score_and_audit_many(store, loaded, Scorer(loaded.bundle), key, items)
        for one in audited:
            assert one.record.payload["model"]["explainer"] == EXPLAINER[family]
            comparisons = replay(one.record, lambda v: registry.load_verified(settings, v))
            assert comparisons and all(c.equal for c in comparisons), comparisons
    finally:
        store.close()
    # MLflow's own loading runs the logged pyfunc code on the same files. (Past MLflow's input
    # enforcement: under pytest's warnings-as-errors, `register` infers no signature; see
    # tests/model/test_models_registered_before_the_layout.py.)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    mlflow.set_registry_uri(settings.resolved_tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{cfg.model_name}/{version}")
    predicted = np.asarray(pyfunc.unwrap_python_model().predict(None, frame))
    expected = score_frame(frame, bundles[family])["probability"].to_numpy()
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=1e-12)
