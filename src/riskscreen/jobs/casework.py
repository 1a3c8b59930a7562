"""What a request does, from validated intake to audited result; the service's routes call these.

A score exists only as an audit record: its id is the record's id, and the record is committed
before the score is returned. The record holds everything needed to replay the score from the
registered model version it names: the model inputs, the outputs and the model's hash. Sex and
region of origin travel beside the inputs under `audit_attributes`, never into the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import ApiKey
from riskscreen.audit.records import AuditRecord
from riskscreen.contract.schema import SENSITIVE_AUDIT_FIELDS
from riskscreen.explain.reasons import Lang
from riskscreen.model.bundle import PRED_CONTRIB
from riskscreen.model.scoring import FieldContribution, Scorer, ScoreResult
from riskscreen.registry import LoadedModel

_NOTICE = {
    "en": (
        "Risk of no work or studies within {h} months of intake. Decision support only: "
        "the case manager decides, and records their decision."
    ),
    "sv": (
        "Risk för varken arbete eller studier inom {h} månader från kartläggningen. "
        "Endast beslutsstöd: handläggaren fattar beslutet och registrerar det."
    ),
}
REASON_CODES = (
    "agrees_with_assessment",
    "additional_information",
    "client_declined",
    "already_receiving_support",
    "capacity_unavailable",
    "professional_judgement",
    "other",
)


def notice(lang: Lang, horizon_months: int) -> str:
    """What every score says of itself: the question it answers, and that a person decides."""
    return _NOTICE[lang].format(h=horizon_months)


class NotFound(LookupError):
    """No such score, or not one this caller may see (the two are not told apart)."""


@dataclass(frozen=True)
class AuditedScore:
    record: AuditRecord
    result: ScoreResult
    case_ref: str
    model: LoadedModel


def _json_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def score_payload(
    key: ApiKey, case_ref: str, intake: Mapping[str, Any], result: ScoreResult, model: LoadedModel
) -> dict[str, Any]:
    """The audit record of one score: who, which model, what went in and what came out."""
    fields = model.bundle.spec.fields
    return {
        "key_id": key.key_id,
        "role": key.role,
        "case_ref": case_ref,
        "intake_date": _json_value(intake["intake_date"]),
        "model": {
            "name": model.name,
            "version": model.version,
            "artifact_sha256": model.artifact_sha256,
            "explainer": result.explainer,
        },
        "inputs": {f: intake[f] for f in fields},
        "audit_attributes": {f: intake.get(f) for f in SENSITIVE_AUDIT_FIELDS},
        "outputs": outputs_of(result),
    }


def score_figures(result: ScoreResult) -> dict[str, Any]:
    """The score itself, as both the audit record and the API response carry it."""
    return {
        "probability": result.probability,
        "log_odds": result.log_odds,
        "base_log_odds": result.base_log_odds,
        "band": result.band,
        "flagged": result.flagged,
        "threshold": result.threshold,
    }


def outputs_of(result: ScoreResult) -> dict[str, Any]:
    """The replayable part of a score, in the form it is stored and compared."""
    contributions = {c.field: c.contribution for c in result.contributions}
    return {**score_figures(result), "contributions": contributions}


@dataclass(frozen=True)
class PendingScore:
    """A score whose audit record is on its way into the log: serve it only once `committed`
    has resolved (it raises AuditUnavailable when the record could not be committed)."""

    result: ScoreResult
    case_ref: str
    model: LoadedModel
    committed: Future[AuditRecord]


def submit_score(
    store: AuditStore,
    model: LoadedModel,
    scorer: Scorer,
    key: ApiKey,
    case_ref: str,
    intake: Mapping[str, Any],
) -> PendingScore:
    """Score and explain, and hand the record to the audit log's writer without waiting.

    Async routes await the commit instead of blocking a thread on it, and records that arrive
    together share one commit (see `AuditStore.submit`).
    """
    result = scorer.score(intake)
    committed = store.submit("score", score_payload(key, case_ref, intake, result, model))
    return PendingScore(result, case_ref, model, committed)


def score_and_audit_many(
    store: AuditStore,
    model: LoadedModel,
    scorer: Scorer,
    key: ApiKey,
    items: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[AuditedScore]:
    """Score every (case_ref, intake) item, then log them in one commit: all or none.

    Scoring them all first means an explanation failure in the last item logs nothing.
    """
    results = [scorer.score(intake) for _, intake in items]
    records = store.append_many(
        [
            ("score", score_payload(key, case_ref, intake, result, model))
            for (case_ref, intake), result in zip(items, results, strict=True)
        ]
    )
    return [
        AuditedScore(record, result, case_ref, model)
        for record, result, (case_ref, _) in zip(records, results, items, strict=True)
    ]


def visible_score(store: AuditStore, key: ApiKey, score_id: str) -> AuditRecord:
    """A score record its owner (or an auditor) may read."""
    record = store.get(score_id)
    if record is None or record.kind != "score":
        raise NotFound(score_id)
    if key.role != "auditor" and record.payload["key_id"] != key.key_id:
        raise NotFound(score_id)
    return record


def result_from_record(record: AuditRecord, fields: Sequence[str]) -> ScoreResult:
    """Rebuild the served result from its audit record (for reading a score back).

    The record stores contributions as a JSON object with sorted keys; `fields` (the model's
    feature order) restores the served order: by size, ties as `Scorer.score` breaks them.
    """
    payload = record.payload
    out = payload["outputs"]
    stored = out["contributions"]
    return ScoreResult(
        probability=out["probability"],
        log_odds=out["log_odds"],
        base_log_odds=out["base_log_odds"],
        band=out["band"],
        flagged=out["flagged"],
        threshold=out["threshold"],
        contributions=tuple(
            FieldContribution(f, payload["inputs"][f], stored[f])
            for f in sorted(fields, key=lambda f: -abs(stored[f]))
        ),
        explainer=payload["model"].get("explainer"),
    )


def record_decision(
    store: AuditStore,
    key: ApiKey,
    score_id: str,
    *,
    support: Literal["intensified", "usual"],
    agrees_with_flag: bool,
    reason_code: str,
    comment: str | None,
) -> AuditRecord:
    """Append the case manager's own decision beside the score it concerns (owner only)."""
    score = visible_score(store, key, score_id)
    if score.payload["key_id"] != key.key_id:
        raise NotFound(score_id)
    return store.append(
        "decision",
        {
            "key_id": key.key_id,
            "role": key.role,
            "score_id": score_id,
            "case_ref": score.payload["case_ref"],
            "model": score.payload["model"],
            "flagged": score.payload["outputs"]["flagged"],
            "support": support,
            "agrees_with_flag": agrees_with_flag,
            "reason_code": reason_code,
            "comment": comment,
        },
    )


@dataclass(frozen=True)
class FieldComparison:
    name: str
    logged: Any
    replayed: Any
    equal: bool


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def replay(record: AuditRecord, load: Callable[[str], LoadedModel]) -> list[FieldComparison]:
    """Recompute a logged score from the model version it names and compare every output."""
    payload = record.payload
    model = load(str(payload["model"]["version"]))
    if model.artifact_sha256 != payload["model"]["artifact_sha256"]:
        return [
            FieldComparison(
                "model.artifact_sha256",
                payload["model"]["artifact_sha256"],
                model.artifact_sha256,
                False,
            )
        ]
    # Both exact explainers agree only to float rounding, and replay compares with ==, so it
    # recomputes with the one the record names (records from before it was named: pred_contrib).
    explainer = payload["model"].get("explainer", PRED_CONTRIB)
    replayed = outputs_of(Scorer(model.bundle).score(payload["inputs"], explainer=explainer))
    logged = payload["outputs"]
    rows = [
        FieldComparison(k, logged[k], replayed[k], _same(logged[k], replayed[k]))
        for k in logged
        if k != "contributions"
    ]
    for name, value in logged["contributions"].items():
        again = replayed["contributions"].get(name)
        rows.append(FieldComparison(f"contributions.{name}", value, again, _same(value, again)))
    return rows
