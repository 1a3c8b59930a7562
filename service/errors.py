"""Error translation: package exceptions become HTTP answers that leak nothing sensitive.

A 422 names the field and the rule but never echoes the submitted value: a rejected body may
hold health or disability data, or an identity number, and error bodies end up in logs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from riskscreen.audit.chain import AuditUnavailable
from riskscreen.audit.db import StoreUnavailable
from riskscreen.jobs.casework import NotFound
from riskscreen.model.scoring import ExplanationError
from riskscreen.registry import ModelNotAvailable, ModelTampered

log = logging.getLogger(__name__)
# Why FastAPI could not read a body as JSON (it answers 400 with a generic text for these).
_UNREADABLE = (
    (UnicodeDecodeError, "the body is not valid UTF-8"),
    (RecursionError, "the body is nested too deeply"),
)


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) for p in error.get("loc", ())]
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        msg = "the body is not valid JSON"
    return {
        "field": ".".join(loc[1:] if loc[:1] == ["body"] else loc),
        "location": loc[:1],
        "rule": error.get("type", "invalid"),
        "message": msg,
    }


def _problem(code: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, **extra}, status_code=code, headers={"Cache-Control": "no-store"}
    )


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_safe_error(e) for e in exc.errors()]
        return _problem(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "the request does not follow the schema",
            errors=errors,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        cause = exc.__cause__
        if exc.status_code == 400 and cause is not None:  # the body could not be parsed
            message = next(
                (text for kind, text in _UNREADABLE if isinstance(cause, kind)),
                "the body could not be read as JSON",
            )
            error = {"field": "", "location": ["body"], "rule": "json_invalid", "message": message}
            return _problem(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "the request does not follow the schema",
                errors=[error],
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(AuditUnavailable)
    async def audit_down(_: Request, exc: AuditUnavailable) -> JSONResponse:
        log.error("audit store unavailable: %s", type(exc.__cause__).__name__)
        return _problem(
            503,
            "the audit log cannot be written, so no score is given; "
            "proceed with the manual intake and try again later",
        )

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("store unavailable: %s", type(exc).__name__)
        return _problem(503, "a database is unavailable; try again later")

    @app.exception_handler(ExplanationError)
    async def unexplained(_: Request, exc: ExplanationError) -> JSONResponse:
        log.error("explanation check failed: %s", exc)
        return _problem(
            500,
            "the score could not be explained exactly, so it is not served; "
            "report this to the operator",
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, "no such record for this caller")

    @app.exception_handler(ModelNotAvailable)
    async def no_model(_: Request, exc: ModelNotAvailable) -> JSONResponse:
        return _problem(503, str(exc))

    @app.exception_handler(ModelTampered)
    async def tampered(_: Request, exc: ModelTampered) -> JSONResponse:
        log.error("model refused: %s", exc)
        return _problem(503, str(exc))
