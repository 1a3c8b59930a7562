"""The OpenAPI document: response declarations shared by the routers, so it lists every status,
and the scoring bodies of the model version in service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from service.schemas import RequestModels

Responses = dict[int | str, dict[str, Any]]

AUTH: Responses = {
    401: {"description": "Missing, unknown or revoked API key"},
    403: {"description": "The key's role may not do this"},
    429: {
        "description": "Rate limit of this API key reached; see Retry-After",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
NOT_FOUND: Responses = {404: {"description": "No such record for this caller"}}
INVALID: Responses = {
    422: {"description": "Invalid input: names the field and the rule, never the value"}
}
TOO_LARGE: Responses = {413: {"description": "Body larger than the service accepts"}}
# Answered by middleware before any route runs (service/telemetry.py, service/limits.py).
EVERY_ROUTE: Responses = {
    **TOO_LARGE,
    415: {"description": "A body that is not application/json"},
    503: {"description": "At capacity, or no answer within the request timeout; see Retry-After"},
}
UNAVAILABLE: Responses = {
    503: {"description": "Scoring switched off, model unavailable or audit log unwritable"}
}
UNEXPLAINED: Responses = {
    500: {"description": "The explanation does not add up to the score, so no score is served"}
}


def request_body(component: str) -> dict[str, Any]:
    """The requestBody of a route that reads its body itself (`service.bodies`), pointing at the
    component `install_request_schemas` fills in."""
    schema = {"$ref": f"#/components/schemas/{component}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_request_schemas(app: FastAPI, served: Callable[[], RequestModels]) -> None:
    """Publish the served version's scoring bodies in the app's document.

    FastAPI builds the document once and keeps it; a reload of the model clears it
    (`app.openapi_schema = None`) so that the next request for it says what the new version needs.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            models = served()
            _, top = models_json_schema(
                [(models.score, "validation"), (models.batch, "validation")],
                ref_template="#/components/schemas/{model}",
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(top["$defs"])
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]
