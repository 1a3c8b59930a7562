"""PROTOTYPE app (bench only): the real service app with the proposed hot-path changes applied.

It is `service.app.create_app` itself (same routes, middleware, admission limits, error
handlers, telemetry and access log) around an AppState whose parts are swapped for the
prototypes in `bench.proto`, plus dependency overrides:

1. Dependencies that do no I/O (`get_state`, `language`, the case-manager role check) run as
   `async def` wrappers around the very same functions, so FastAPI no longer sends each to the
   thread pool (a hop costs a context switch, and more when the cores are busy).
2. The key lookup is one prepared DB-API statement (`FastKeyStore`).
3. The audit append goes through the DB-API with wake-at-once writer locks
   (`LockedSqliteAuditStore`), WAL + synchronous=FULL and commit-before-answer as before.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request

from bench.proto import FastKeyStore, LockedSqliteAuditStore, sqlite_path
from riskscreen.explain import Lang
from riskscreen.keys import ApiKey
from riskscreen.registry import LoadedModel, load_verified
from riskscreen.settings import Settings
from service import deps
from service.app import create_app
from service.state import AppState, open_state


def open_proto_state(settings: Settings, loaded: LoadedModel | None = None) -> AppState:
    """The service's own state, with the prototype stores swapped in."""
    loaded = loaded or load_verified(settings)
    state = open_state(settings, loaded)
    path = sqlite_path(settings.resolved_audit_url)
    state.audit.close()
    state.audit = LockedSqliteAuditStore(path)
    state.keys = FastKeyStore(path)
    return state


async def _get_state(request: Request) -> AppState:
    return deps.get_state(request)


async def _language(
    request: Request,
    lang: Annotated[
        Literal["sv", "en"] | None, Query(description="Language of the reasons.")
    ] = None,
) -> Lang:
    return deps.language(request, lang)


def _role_check(alias: Any) -> Any:
    """The `check` closure behind an alias such as `deps.CaseManager`."""
    return typing.get_args(alias)[1].dependency


def _async_role(check: Any) -> Any:
    async def async_check(key: Annotated[ApiKey, Depends(deps.current_key)]) -> ApiKey:
        return typing.cast(ApiKey, check(key))

    return async_check


def create_proto_app(
    settings: Settings | None = None, loaded: LoadedModel | None = None
) -> FastAPI:
    settings = settings or Settings()
    app = create_app(settings, state=open_proto_state(settings, loaded))
    app.dependency_overrides[deps.get_state] = _get_state
    app.dependency_overrides[deps.language] = _language
    for alias in ("CaseManager", "CaseManagerOrAuditor", "Auditor", "Admin"):
        if hasattr(deps, alias):
            check = _role_check(getattr(deps, alias))
            app.dependency_overrides[check] = _async_role(check)
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn bench.proto_app:app` builds the app (and opens its state) on first access.
    if name == "app":
        globals()["app"] = app = create_proto_app()
        return app
    raise AttributeError(name)
