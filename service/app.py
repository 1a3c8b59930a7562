"""The FastAPI application: case managers score and decide, auditors inspect, admins operate.

`create_app` builds a fresh app around an AppState opened at start-up; routes are thin and call
one package function each (riskscreen.jobs.casework), so batch scoring and the API agree.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from riskscreen import __version__
from riskscreen.settings import Settings
from service import errors
from service.limits import AdmissionMiddleware, Limits
from service.openapi import EVERY_ROUTE, install_request_schemas
from service.routers import admin, audit, health, scores
from service.routers import model as model_routes
from service.schemas import RequestModels, request_models
from service.state import AppState, open_state
from service.telemetry import Metrics, RequestMiddleware

DESCRIPTION = """Decision support at refugee intake: the risk of a long settlement time, explained.

The score supports the case manager's judgement and never decides; a flag means an offer of
more support, never less. Every score and decision is logged tamper-evidently before the answer.
"""


def create_app(
    settings: Settings | None = None, *, state: AppState | None = None, model: Any = None
) -> FastAPI:
    """An app whose lifespan opens the stores and loads the verified model (or uses `state`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.riskscreen = state or open_state(settings, model)
        # What start-up imported and loaded (~440k objects: MLflow, scikit-learn, the model)
        # lives as long as the process. Frozen, the collector stops rescanning it: a full
        # collection took ~250 ms, a pause every few thousand scores, and ~1.5 ms frozen.
        gc.collect()  # start-up's garbage first, or it would stay for good
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # an app made in a longer-lived process (tests) leaves it as it was
            if state is None:  # however the server stops, what was queued is committed or failed
                app.state.riskscreen.audit.close()

    app = FastAPI(
        title="riskscreen",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=EVERY_ROUTE,
    )
    app.state.metrics = Metrics()
    app.state.limits = Limits(settings)
    # Added first, so it runs inside the request middleware (which counts and tags its answers).
    app.add_middleware(AdmissionMiddleware, limits=app.state.limits)
    app.add_middleware(
        RequestMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    errors.install(app)
    for router in (scores.router, audit.router, model_routes.router, admin.router, health.router):
        app.include_router(router)
    install_request_schemas(app, lambda: _served_requests(app))
    return app


def _served_requests(app: FastAPI) -> RequestModels:
    """The served version's scoring bodies; the whole contract's before start-up has run."""
    state: AppState | None = getattr(app.state, "riskscreen", None)
    return state.model.requests if state is not None else request_models()
