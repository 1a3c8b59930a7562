"""Reading a scoring body against the served version's own request model.

FastAPI validates a body against the type in the route's signature, fixed when the app is
built; the fields a scoring body must hold depend on the model version in service, which a
reload can change. So the scoring routes read the body here, after authentication, with the
same JSON parsing and the same errors FastAPI gives (fastapi/routing.py), and the OpenAPI
document is filled in from the same models (`service.openapi.install_request_schemas`).
"""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Body = TypeVar("Body", bound=BaseModel)


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body validated as `model`; 422 (or FastAPI's 400) as FastAPI would."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error]) from exc
    except Exception as exc:  # invalid UTF-8, nesting past the recursion limit
        raise HTTPException(400, "There was an error parsing the body") from exc
    if data is None:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None
