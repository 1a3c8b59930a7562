"""The authorization matrix: role x route x method x ownership, and the tokens that are not keys.

MATRIX is the specification. The tests iterate it against the app, and a route the app serves
that the matrix does not name fails the suite: a new endpoint cannot ship without someone
deciding who may call it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from reliability_support import Keys, add_keys, client, score_body

from riskscreen.audit.keys import KeyStore
from riskscreen.settings import Settings

# Who calls: the owner of the score in the path, another case manager, the two other roles,
# and nobody (no Authorization header).
CALLERS = ("owner", "other_case_manager", "auditor", "admin", "nobody")
OPEN = dict.fromkeys(CALLERS, 200)


def _only(role: str, ok: int = 200, *, case_managers: int = 403) -> dict[str, int]:
    expected = {
        "owner": case_managers,
        "other_case_manager": case_managers,
        "auditor": 403,
        "admin": 403,
        "nobody": 401,
    }
    if role == "case_manager":
        expected |= {"owner": ok, "other_case_manager": ok}
    else:
        expected[role] = ok
    return expected


MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/v1/scores"): _only("case_manager", 201),
    ("POST", "/v1/scores/batch"): _only("case_manager", 201),
    # Another case manager's score does not exist for them: 404, the same as a missing one.
    ("GET", "/v1/scores/{score_id}"): _only("case_manager")
    | {"other_case_manager": 404, "auditor": 200},
    ("POST", "/v1/scores/{score_id}/decision"): _only("case_manager", 201)
    | {"other_case_manager": 404},
    ("GET", "/v1/audit/records"): _only("auditor"),
    ("GET", "/v1/audit/verify"): _only("auditor"),
    ("GET", "/v1/audit/records/{record_id}/replay"): _only("auditor"),
    ("GET", "/v1/model"): {**OPEN, "nobody": 401},
    ("POST", "/v1/admin/reload"): _only("admin"),
    ("POST", "/v1/admin/scoring"): _only("admin"),
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/openapi.json"): OPEN,
    ("GET", "/docs"): OPEN,
    ("GET", "/docs/oauth2-redirect"): OPEN,
    ("GET", "/redoc"): OPEN,
}
DECISION = {"support": "intensified", "agrees_with_flag": False, "reason_code": "client_declined"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path template) the app answers, HEAD aside (it mirrors GET)."""
    found = set()
    for route in iter_route_contexts(app.routes):  # included routers resolved, as OpenAPI does
        methods = getattr(route, "methods", None) or ()
        found |= {(m, str(route.path_format)) for m in methods if m != "HEAD"}
    return found


@dataclass
class World:
    client: TestClient
    keys: Keys
    score_id: str
    revoked: str


@pytest.fixture(scope="module")
def world(model_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("authz")
    settings = model_settings.model_copy(
        update={
            "audit_url": f"sqlite:///{folder / 'audit.db'}",
            "rate_limit_per_minute": 10**9,
            "rate_limit_burst": 10**9,
        }
    )
    keys = add_keys(
        settings.resolved_audit_url,
        owner="case_manager",
        other_case_manager="case_manager",
        gone="auditor",
    )
    store = KeyStore.from_url(settings.resolved_audit_url)
    store.revoke(keys.ids["gone"])
    store.close()
    with client(settings) as c:
        r = c.post("/v1/scores", json=score_body("authz-1"), headers=keys.auth("owner"))
        assert r.status_code == 201
        yield World(c, keys, r.json()["score_id"], keys.tokens["gone"])


def request_for(method: str, path: str, score_id: str) -> tuple[str, str, dict[str, Any]]:
    """A well-formed request to the route, so that only the caller decides the answer."""
    url = path.replace("{score_id}", score_id).replace("{record_id}", score_id)
    kwargs: dict[str, Any] = {}
    if path == "/v1/scores":
        kwargs["json"] = score_body("authz-2")
    elif path == "/v1/scores/batch":
        kwargs["json"] = {"records": [score_body("authz-3")]}
    elif path.endswith("/decision"):
        kwargs["json"] = DECISION
    elif path == "/v1/admin/scoring":
        kwargs["json"] = {"enabled": True}
    return method, url, kwargs


def test_every_route_is_in_the_matrix(world: World) -> None:
    served = app_routes(world.client.app)
    assert served - set(MATRIX) == set(), "routes nobody decided the access rules for"
    assert set(MATRIX) - served == set(), "the matrix names routes the app no longer has"


CELLS = [(route, caller) for route in MATRIX for caller in CALLERS]


@pytest.mark.parametrize(
    ("route", "caller"), CELLS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_matrix_cell(world: World, route: tuple[str, str], caller: str) -> None:
    method, url, kwargs = request_for(*route, world.score_id)
    token = world.keys.tokens.get(caller)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = world.client.request(method, url, headers=headers, **kwargs)
    assert response.status_code == MATRIX[route][caller], response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def bad_tokens(world: World) -> Iterator[tuple[str, str]]:
    key_id = world.keys.ids["owner"]
    secret = world.keys.tokens["owner"].rsplit("_", 1)[1]
    yield "forged secret", f"Bearer rs_{key_id}_{secrets.token_urlsafe(32)}"
    yield "unknown key id", f"Bearer rs_{secrets.token_hex(8)}_{secret}"
    yield "revoked key", f"Bearer {world.revoked}"
    yield "secret one character short", f"Bearer rs_{key_id}_{secret[:-1]}"
    yield "secret one character long", f"Bearer rs_{key_id}_{secret}A"
    yield "upper-case key id", f"Bearer rs_{key_id.upper()}_{secret}"
    yield "no scheme", world.keys.tokens["owner"]
    yield "basic scheme", f"Basic {world.keys.tokens['owner']}"
    yield "empty bearer", "Bearer "
    yield "garbage", "Bearer ' OR 1=1 --"
    yield "very long", "Bearer " + "A" * 8000


AUTHENTICATED = [route for route, cells in MATRIX.items() if cells["nobody"] == 401]


@pytest.mark.parametrize("route", AUTHENTICATED, ids=" ".join)
def test_forged_revoked_and_malformed_tokens_are_401(world: World, route: tuple[str, str]) -> None:
    method, url, kwargs = request_for(*route, world.score_id)
    for name, header in bad_tokens(world):
        response = world.client.request(method, url, headers={"Authorization": header}, **kwargs)
        assert response.status_code == 401, (name, response.text)
        assert world.keys.tokens["owner"].rsplit("_", 1)[1] not in response.text
