"""Scores and the case manager's decisions (`/v1/scores`)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from riskscreen.audit.records import AuditRecord
from riskscreen.explain.reasons import Lang
from riskscreen.jobs.casework import (
    notice,
    record_decision,
    result_from_record,
    score_and_audit_many,
    score_figures,
    submit_score,
    visible_score,
)
from riskscreen.model.scoring import ScoreResult
from service.bodies import read_body
from service.deps import CaseManager, CaseManagerOrAuditor, Language, RecordId, State
from service.openapi import (
    AUTH,
    INVALID,
    NOT_FOUND,
    TOO_LARGE,
    UNAVAILABLE,
    UNEXPLAINED,
    Responses,
    request_body,
)
from service.schemas import (
    BatchResponse,
    DecisionRequest,
    DecisionResponse,
    ScoreResponse,
)

router = APIRouter(prefix="/v1/scores", tags=["scores"])
NO_STORE = {"Cache-Control": "no-store"}
_SCORING: Responses = {**AUTH, **TOO_LARGE, **INVALID, **UNAVAILABLE, **UNEXPLAINED}


def _response(
    record: AuditRecord, case_ref: str, result: ScoreResult, lang: Lang, model_info: dict[str, Any]
) -> dict[str, Any]:
    """The ScoreResponse body as plain data: building the pydantic model for every score cost
    more than scoring it; tests check each served body against the model instead."""
    return {
        "score_id": record.record_id,
        "case_ref": case_ref,
        **score_figures(result),
        "contributions": result.labelled_contributions(lang),
        "reasons": result.reasons(lang),
        "lang": lang,
        "horizon_months": model_info["horizon_months"],
        "model": model_info,
        "audit_record_id": record.record_id,
        "created_at": record.created_at,
        "notice": notice(lang, model_info["horizon_months"]),
    }


def _model_info(state: State, version: str) -> dict[str, Any]:
    loaded = state.model_version(version)
    prov = loaded.bundle.provenance
    return {
        "name": loaded.name,
        "version": loaded.version,
        "data_kind": str(prov.get("data_kind", "")),
        "trained_at": str(prov.get("trained_at", "")),
        "horizon_months": loaded.bundle.horizon_months,
    }


def _item(body: Any) -> tuple[str, dict[str, Any]]:
    """(case_ref, intake mapping) of a validated ScoreRequest."""
    return body.case_ref, body.intake.model_dump()


def _switched_off() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "scoring is switched off by the operator: intake proceeds manually",
    )


async def _ensure_enabled(state: State) -> None:
    enabled = state.cached_switch()
    if enabled is None:  # stale: read the shared switch off the event loop
        enabled = await run_in_threadpool(state.scoring_enabled)
    if not enabled:
        raise _switched_off()


def _json(content: Any, status_code: int = 200) -> Response:
    # Returned as bytes, FastAPI neither validates the body again nor walks it through
    # jsonable_encoder; the response_model still documents it.
    return Response(
        orjson.dumps(content), status_code, headers=NO_STORE, media_type="application/json"
    )


@router.post(
    "",
    response_model=ScoreResponse,
    status_code=201,
    responses=_SCORING,
    openapi_extra=request_body("ScoreRequest"),
)
async def create_score(
    request: Request, key: CaseManager, state: State, lang: Language
) -> Response:
    """Score one intake record, explain it, and log it before answering.

    Runs on the event loop: scoring a record takes tens of microseconds, and the commit of its
    audit record is awaited, not waited for in a thread. Should the request be cancelled (its
    deadline passed, the client left), the commit still completes and the record stays: the
    log may hold scores nobody received, never a served score it lacks.
    """
    served = state.model
    body = await read_body(request, served.requests.score)
    await _ensure_enabled(state)
    pending = submit_score(state.audit, served.loaded, served.scorer, key, *_item(body))
    record = await asyncio.shield(asyncio.wrap_future(pending.committed))
    model_info = _model_info(state, pending.model.version)
    return _json(_response(record, pending.case_ref, pending.result, lang, model_info), 201)


@router.post(
    "/batch",
    response_model=BatchResponse,
    status_code=201,
    responses=_SCORING,
    openapi_extra=request_body("BatchRequest"),
)
async def create_scores(
    request: Request, key: CaseManager, state: State, lang: Language
) -> Response:
    """Score up to 100 records; the whole batch is validated, scored and logged, or none is."""
    served = state.model
    body = await read_body(request, served.requests.batch)
    await _ensure_enabled(state)
    items = [_item(item) for item in body.records]  # type: ignore[attr-defined]
    scored = await run_in_threadpool(
        score_and_audit_many, state.audit, served.loaded, served.scorer, key, items
    )
    model_info = _model_info(state, served.loaded.version)
    scores = [_response(s.record, s.case_ref, s.result, lang, model_info) for s in scored]
    return _json({"scores": scores}, 201)


@router.get(
    "/{score_id:uuid}", response_model=ScoreResponse, responses={**AUTH, **NOT_FOUND, **INVALID}
)
def read_score(
    score_id: RecordId, key: CaseManagerOrAuditor, state: State, lang: Language
) -> Response:
    """A score as it was served; its owner or an auditor may read it."""
    record = visible_score(state.audit, key, score_id)
    payload = record.payload
    version = str(payload["model"]["version"])
    fields = state.model_version(version).bundle.spec.fields
    result = result_from_record(record, fields)
    return _json(_response(record, payload["case_ref"], result, lang, _model_info(state, version)))


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
