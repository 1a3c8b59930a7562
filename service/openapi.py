"""Response declarations shared by the routers, so the OpenAPI document lists every status."""

from __future__ import annotations

from typing import Any

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
