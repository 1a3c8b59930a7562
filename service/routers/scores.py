"""Scores and the case manager's decisions (`/v1/scores`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status

from riskscreen.audit import AuditRecord
from riskscreen.casework import (
    NOTICE,
    AuditedScore,
    record_decision,
    result_from_record,
    score_and_audit,
    visible_score,
)
from riskscreen.explain import Lang
from riskscreen.scoring import ScoreResult
from service.deps import CaseManager, CaseManagerOrAuditor, Language, RecordId, State
from service.openapi import (
    AUTH,
    INVALID,
    NOT_FOUND,
    TOO_LARGE,
    UNAVAILABLE,
    UNEXPLAINED,
    Responses,
)
from service.schemas import (
    BatchRequest,
    BatchResponse,
    DecisionRequest,
    DecisionResponse,
    ScoreRequest,
    ScoreResponse,
)

router = APIRouter(prefix="/v1/scores", tags=["scores"])
NO_STORE = {"Cache-Control": "no-store"}
_SCORING: Responses = {**AUTH, **TOO_LARGE, **INVALID, **UNAVAILABLE, **UNEXPLAINED}


def _response(
    record: AuditRecord, result: ScoreResult, lang: Lang, model_info: dict[str, Any]
) -> ScoreResponse:
    payload = record.payload
    return ScoreResponse(
        score_id=record.record_id,
        case_ref=payload["case_ref"],
        probability=result.probability,
        log_odds=result.log_odds,
        base_log_odds=result.base_log_odds,
        band=result.band,
        flagged=result.flagged,
        threshold=result.threshold,
        contributions=result.labelled_contributions(lang),
        reasons=result.reasons(lang),
        lang=lang,
        model=model_info,
        audit_record_id=record.record_id,
        created_at=record.created_at,
        notice=NOTICE[lang],
    )


def _model_info(state: State, version: str) -> dict[str, Any]:
    loaded = state.model_version(version)
    prov = loaded.bundle.provenance
    return {
        "name": loaded.name,
        "version": loaded.version,
        "data_kind": str(prov.get("data_kind", "")),
        "trained_at": str(prov.get("trained_at", "")),
    }


def _ensure_enabled(state: State) -> None:
    if not state.scoring_enabled():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "scoring is switched off by the operator: intake proceeds manually",
        )


def _score_one(state: State, key: Any, body: Any) -> AuditedScore:
    served = state.model
    intake = body.intake.model_dump()
    return score_and_audit(state.audit, served.loaded, served.scorer, key, body.case_ref, intake)


@router.post("", response_model=ScoreResponse, status_code=201, responses=_SCORING)
def create_score(
    body: ScoreRequest, key: CaseManager, state: State, lang: Language, response: Response
) -> ScoreResponse:
    """Score one intake record, explain it, and log it before answering."""
    _ensure_enabled(state)
    scored = _score_one(state, key, body)
    response.headers.update(NO_STORE)
    return _response(scored.record, scored.result, lang, _model_info(state, scored.model.version))


@router.post("/batch", response_model=BatchResponse, status_code=201, responses=_SCORING)
def create_scores(
    body: BatchRequest, key: CaseManager, state: State, lang: Language, response: Response
) -> BatchResponse:
    """Score up to 100 records; the whole batch is validated before any is scored."""
    _ensure_enabled(state)
    scored = [_score_one(state, key, item) for item in body.records]
    response.headers.update(NO_STORE)
    return BatchResponse(
        scores=[
            _response(s.record, s.result, lang, _model_info(state, s.model.version)) for s in scored
        ]
    )


@router.get(
    "/{score_id:uuid}", response_model=ScoreResponse, responses={**AUTH, **NOT_FOUND, **INVALID}
)
def read_score(
    score_id: RecordId, key: CaseManagerOrAuditor, state: State, lang: Language, response: Response
) -> ScoreResponse:
    """A score as it was served; its owner or an auditor may read it."""
    record = visible_score(state.audit, key, score_id)
    response.headers.update(NO_STORE)
    version = str(record.payload["model"]["version"])
    fields = state.model_version(version).bundle.spec.fields
    return _response(record, result_from_record(record, fields), lang, _model_info(state, version))


@router.post(
    "/{score_id:uuid}/decision",
    response_model=DecisionResponse,
    status_code=201,
    responses={**AUTH, **NOT_FOUND, **TOO_LARGE, **INVALID, **UNAVAILABLE},
)
def decide(
    score_id: RecordId, body: DecisionRequest, key: CaseManager, state: State, response: Response
) -> DecisionResponse:
    """Record the case manager's own decision beside the score (its owner only)."""
    record = record_decision(
        state.audit,
        key,
        score_id,
        support=body.support,
        agrees_with_flag=body.agrees_with_flag,
        reason_code=body.reason_code,
        comment=body.comment,
    )
    response.headers.update(NO_STORE)
    return DecisionResponse(
        decision_id=record.record_id,
        score_id=score_id,
        support=body.support,
        agrees_with_flag=body.agrees_with_flag,
        reason_code=body.reason_code,
        recorded_at=record.created_at,
        audit_record_id=record.record_id,
    )
