"""Response declarations shared by the routers, so the OpenAPI document lists every status."""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]

AUTH: Responses = {
    401: {"description": "Missing, unknown or revoked API key"},
    403: {"description": "The key's role may not do this"},
}
NOT_FOUND: Responses = {404: {"description": "No such record for this caller"}}
INVALID: Responses = {
    422: {"description": "Invalid input: names the field and the rule, never the value"}
}
TOO_LARGE: Responses = {413: {"description": "Body larger than the service accepts"}}
UNAVAILABLE: Responses = {
    503: {"description": "Scoring switched off, model unavailable or audit log unwritable"}
}
