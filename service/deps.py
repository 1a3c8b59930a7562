"""Dependencies shared by the routers: the process state and who is calling, in which role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from riskscreen.explain import Lang
from riskscreen.keys import ApiKey, Role
from service.state import AppState

_bearer = HTTPBearer(auto_error=False, description="An API key from `riskscreen keys create`.")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.riskscreen
    return state


State = Annotated[AppState, Depends(get_state)]


def current_key(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """401 unless the bearer token belongs to an active key."""
    key = state.keys.authenticate(credentials.credentials if credentials else None)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing, unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


def require(*roles: Role) -> Callable[[ApiKey], ApiKey]:
    """A dependency that lets only the given roles through (403 for the others)."""

    def check(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
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


def language(
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
