"""Dependencies shared by the routers: the process state and who is calling, in which role.

All are `async def` and run on the event loop, because a trip to the thread pool costs more
than the work these do (a context switch each way); authentication, the one that may read a
database, sends only that read to the pool, and only when its one-second memory misses.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from starlette.concurrency import run_in_threadpool

from riskscreen.audit.keys import ApiKey, Role
from riskscreen.explain.reasons import Lang
from service.limits import enforce_rate_limit
from service.state import AppState

_bearer = HTTPBearer(auto_error=False, description="An API key from `riskscreen keys create`.")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.riskscreen
    return state


State = Annotated[AppState, Depends(get_state)]


async def _authenticate(request: Request, token: str | None) -> ApiKey:
    """401 unless the bearer token belongs to an active key; 429 past the key's rate limit.

    A key authenticated within the last second is recognised from memory on the event loop;
    otherwise the database is read in the thread pool, never on the loop.
    """
    keys = request.app.state.riskscreen.keys
    key = keys.recently_authenticated(token)
    if key is None:
        key = await run_in_threadpool(keys.authenticate, token)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing, unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    enforce_rate_limit(request, key.key_id)
    return key


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_key(request: Request, credentials: Credentials) -> ApiKey:
    """The caller's key, whatever its role (see `_authenticate`)."""
    return await _authenticate(request, credentials.credentials if credentials else None)


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that authenticates the caller and lets only the given roles through (403
    for the others).

    One dependency rather than a role check on top of `current_key`: FastAPI's resolution of
    each dependency costs more than the check itself, and every scored request pays it.
    """

    async def check(request: Request, credentials: Credentials) -> ApiKey:
        key = await _authenticate(request, credentials.credentials if credentials else None)
        if key.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this operation needs the role {' or '.join(roles)}"
            )
        return key

    return check


AnyRole = Annotated[ApiKey, Depends(current_key)]
CaseManager = Annotated[ApiKey, Depends(require("case_manager"))]
Auditor = Annotated[ApiKey, Depends(require("auditor"))]
CaseManagerOrAuditor = Annotated[ApiKey, Depends(require("case_manager", "auditor"))]
Admin = Annotated[ApiKey, Depends(require("admin"))]


async def language(
    request: Request,
    lang: Annotated[
        Literal["sv", "en"] | None, Query(description="Language of the reasons.")
    ] = None,
) -> Lang:
    """`?lang=` wins; then the first of sv/en in Accept-Language; Swedish by default."""
    if lang:
        return lang
    header = request.headers.get("accept-language", "").lower()
    for part in header.split(","):
        tag = part.split(";")[0].strip()[:2]
        if tag in ("sv", "en"):
            return tag  # type: ignore[return-value]
    return "sv"


Language = Annotated[Lang, Depends(language)]


# --- parameter types: what the OpenAPI document promises is exactly what is accepted ---------

# A record id in a path: routes declare it as `{name:uuid}`, so only a UUID reaches them (any
# other text is a 404, and /v1/scores/batch stays a POST-only path: 405 for a GET), and the
# route receives it as text in canonical form.
RecordId = Annotated[
    str,
    BeforeValidator(str),
    Path(
        description="A record id (UUID) as the API returned it",
        json_schema_extra={"format": "uuid"},
    ),
]
# RFC 3339 date-time, the JSON Schema `date-time` format: pydantic alone would also read "0.5"
# as a Unix time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: Any) -> Any:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time with a time zone, e.g. 2025-01-31T12:00:00Z"
        )
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the dates that can be expressed in UTC") from None


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]
