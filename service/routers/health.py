"""Unauthenticated probes for the load balancer and the monitoring system."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={200: {"description": "The process is up"}})
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"description": "Ready to score"},
        503: {"description": "Not ready (model or audit store)"},
    },
)
def readyz(state: State, response: Response) -> dict[str, object]:
    """Ready when a verified model is loaded and the audit store accepts a write lock."""
    checks = {
        "model_loaded": state.model is not None,
        "audit_writable": state.audit_writable(),
        "scoring_enabled": state.scoring_enabled(),
    }
    if not (checks["model_loaded"] and checks["audit_writable"]):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if response.status_code != 503 else "not ready", **checks}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus metrics"}},
)
def metrics(request: Request) -> Response:
    """Request counts, latencies and the score distribution; no personal data in any label."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
