"""Operator controls (`/v1/admin`): reload the champion, and the stop switch."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.deps import Admin, State
from service.openapi import AUTH, INVALID, UNAVAILABLE, Responses
from service.schemas import ReloadResponse, ScoringState, ScoringSwitch

router = APIRouter(prefix="/v1/admin", tags=["admin"])
_AUTH: Responses = {**AUTH, **UNAVAILABLE}


@router.post("/reload", response_model=ReloadResponse, responses=_AUTH)
def reload(request: Request, key: Admin, state: State) -> ReloadResponse:
    """Load the model the alias points at now, verified; logged in the audit trail."""
    served = state.reload()
    request.app.openapi_schema = None  # the new version's scoring bodies are published anew
    state.audit.append(
        "admin",
        {
            "key_id": key.key_id,
            "role": key.role,
            "action": "reload",
            "model": {
                "name": served.loaded.name,
                "version": served.loaded.version,
                "artifact_sha256": served.loaded.artifact_sha256,
            },
        },
    )
    return ReloadResponse(
        name=served.loaded.name,
        version=served.loaded.version,
        artifact_sha256=served.loaded.artifact_sha256,
    )


@router.post("/scoring", response_model=ScoringState, responses={**_AUTH, **INVALID})
def switch(body: ScoringSwitch, key: Admin, state: State) -> ScoringState:
    """Switch scoring off (intake proceeds manually) or back on, for every process."""
    changed = state.switch.set(body.enabled, key.key_id)
    state.forget_switch()
    state.audit.append(
        "admin",
        {
            "key_id": key.key_id,
            "role": key.role,
            "action": "scoring_enabled" if body.enabled else "scoring_disabled",
        },
    )
    return ScoringState(enabled=body.enabled, changed_at=changed)
