"""The auditor's view of the log (`/v1/audit`): records, chain verification, replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from riskscreen.jobs.casework import NotFound, replay
from service.deps import Auditor, Instant, RecordId, State
from service.openapi import AUTH, INVALID, NOT_FOUND, UNAVAILABLE, UNEXPLAINED, Responses
from service.schemas import AuditPage, AuditRecordOut, FieldCheck, ReplayResponse, VerifyResponse

router = APIRouter(prefix="/v1/audit", tags=["audit"])
_AUTH: Responses = {**AUTH, **UNAVAILABLE}


@router.get("/records", response_model=AuditPage, responses={**_AUTH, **INVALID})
def list_records(
    _: Auditor,
    state: State,
    response: Response,
    since: Annotated[
        Instant | None, Query(description="Inclusive, RFC 3339 with time zone")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Exclusive, RFC 3339 with time zone")
    ] = None,
    model_version: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$")] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Records in log order, filtered by time and model version; page with `after_seq`."""
    rows = state.audit.list(
        since=since, until=until, model_version=model_version, after_seq=after_seq, limit=limit
    )
    response.headers["Cache-Control"] = "no-store"  # payloads hold scores and intake data
    records = [
        AuditRecordOut(
            seq=r.seq,
            record_id=r.record_id,
            kind=r.kind,
            created_at=r.created_at,
            payload=r.payload,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in rows
    ]
    return AuditPage(records=records, next_after_seq=rows[-1].seq if len(rows) == limit else None)


@router.get("/verify", response_model=VerifyResponse, responses=_AUTH)
def verify(_: Auditor, state: State) -> VerifyResponse:
    """Walk the whole hash chain; report the first broken link, if any."""
    result = state.audit.verify()
    head = result.head or (None, None)
    return VerifyResponse(
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        head_seq=head[0],
        head_hash=head[1],
    )


@router.get(
    "/records/{record_id:uuid}/replay",
    response_model=ReplayResponse,
    responses={**_AUTH, **NOT_FOUND, **UNEXPLAINED},
)
def replay_record(
    record_id: RecordId, _: Auditor, state: State, response: Response
) -> ReplayResponse:
    """Recompute a logged score from the registered model version it names, field by field."""
    record = state.audit.get(record_id)
    if record is None or record.kind != "score":
        raise NotFound(record_id)
    checks = replay(record, state.model_version)
    response.headers["Cache-Control"] = "no-store"
    return ReplayResponse(
        record_id=record_id,
        model_version=str(record.payload["model"]["version"]),
        matches=all(c.equal for c in checks),
        fields=[
            FieldCheck(name=c.name, logged=c.logged, replayed=c.replayed, equal=c.equal)
            for c in checks
        ],
    )
