"""The OpenAPI document declares every status code each route can answer.

Rather than trusting a list, every operation in `app.openapi()` is provoked into each failure
that can reach it (no key, each role, too large, not JSON, malformed body, bad query or path
values, an unknown id, scoring switched off, the database down, an explanation that does not add
up) and every status it answers must be among the ones it declares.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from http_support import Service

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.keys import KeyStore
from riskscreen.audit.switch import ScoringSwitchStore

Operation = tuple[str, str, dict[str, Any]]  # (method, path template, OpenAPI operation)
DECISION = {"support": "usual", "agrees_with_flag": False, "reason_code": "other"}


@pytest.fixture(scope="module")
def openapi_service(service: Service, bodies: list[dict[str, Any]]) -> tuple[Service, str]:
    """The module's service and the id of one score its case manager `cm` made."""
    return service, service.score(bodies[0])["score_id"]


def operations(service: Service) -> list[Operation]:
    doc = service.client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


def _path(template: str, value: str) -> str:
    for name in ("score_id", "record_id"):
        template = template.replace("{" + name + "}", value)
    return template


def _valid_body(path: str, bodies: list[dict[str, Any]]) -> Any:
    if path == "/v1/scores":
        return bodies[1]
    if path == "/v1/scores/batch":
        return {"records": bodies[2:4]}
    if path.endswith("/decision"):
        return DECISION
    if path == "/v1/admin/scoring":
        return {"enabled": True}
    return None


@contextmanager
def database_down(service: Service) -> Iterator[None]:
    """Every store on a database that cannot be opened, as when the database server is gone."""
    state = service.state
    dead = AuditStore.from_url("sqlite:////nonexistent/riskscreen/audit.db")
    saved = state.audit, state.keys, state.switch
    state.audit, state.keys, state.switch = (
        dead,
        KeyStore(dead.engine),
        ScoringSwitchStore(dead.engine),
    )
    state.forget_switch()
    try:
        yield
    finally:
        state.audit, state.keys, state.switch = saved
        state.forget_switch()
        dead.close()


@contextmanager
def scoring_off(service: Service) -> Iterator[None]:
    admin = service.auth("admin")
    assert service.client.post("/v1/admin/scoring", json={"enabled": False}, headers=admin)
    try:
        yield
    finally:
        service.client.post("/v1/admin/scoring", json={"enabled": True}, headers=admin)


@contextmanager
def explanation_broken(service: Service) -> Iterator[None]:
    bundle = service.state.model.loaded.bundle
    exact = bundle.contributions

    def off(x: np.ndarray, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        base, contributions = exact(x, *args, **kwargs)
        return base + 1e-3, contributions

    bundle.contributions = off  # type: ignore[method-assign]
    try:
        yield
    finally:
        del bundle.contributions  # the instance attribute; the method shows through again


def provocations(
    service: Service, score_id: str, bodies: list[dict[str, Any]], op: Operation
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(name, call) for every way this operation can be made to answer something."""
    method, template, spec = op
    client = service.client
    path = _path(template, score_id)
    body = _valid_body(template, bodies)
    secured = bool(spec.get("security"))
    has_body = "requestBody" in spec

    def send(path: str = path, who: str | None = "cm", **kw: Any) -> Any:
        headers = {**(service.auth(who) if who else {}), **kw.pop("headers", {})}
        if body is not None and not {"json", "content"} & set(kw):
            kw["json"] = body
        return client.request(method, path, headers=headers, **kw)

    for who in ("cm", "auditor", "admin"):
        yield f"as {who}", lambda who=who: send(who=who)
    if secured:
        yield "no key", lambda: send(who=None)
    yield "too large", lambda: send(content=b" " * (service.settings.max_body_bytes + 1))
    if has_body:
        json_type = {"Content-Type": "application/json"}
        yield "not JSON", lambda: send(content=b"a=1", headers={"Content-Type": "text/plain"})
        yield "broken JSON", lambda: send(content=b'{"a": ', headers=json_type)
        yield "wrong shape", lambda: send(json=[1, 2])
    for param in spec.get("parameters", []):
        if param["in"] == "query":
            yield f"bad {param['name']}", lambda p=param["name"]: send(params={p: "~bad~"})
    if "{" in template:
        yield "unknown id", lambda: send(_path(template, str(uuid.uuid4())))
        yield "malformed id", lambda: send(_path(template, "not-an-id"))
    whose = ("cm", "auditor", "admin")
    yield "scoring off", lambda: _under(scoring_off(service), lambda: [send(who=w) for w in whose])
    yield (
        "database down",
        lambda: _under(database_down(service), lambda: [send(who=w) for w in whose]),
    )
    yield (
        "unexplained",
        lambda: _under(explanation_broken(service), lambda: [send(who=w) for w in whose]),
    )


def _under(context: Any, call: Callable[[], Any]) -> Any:
    with context:
        return call()


def test_every_route_declares_every_status_it_answers(
    openapi_service: tuple[Service, str], bodies: list[dict[str, Any]]
) -> None:
    service, score_id = openapi_service
    undeclared: list[str] = []
    seen: dict[tuple[str, str], set[int]] = {}
    for op in operations(service):
        method, template, spec = op
        declared = {int(code) for code in spec["responses"]}
        for name, call in provocations(service, score_id, bodies, op):
            answers = call()
            for response in answers if isinstance(answers, list) else [answers]:
                seen.setdefault((method, template), set()).add(response.status_code)
                if response.status_code not in declared:
                    undeclared.append(
                        f"{method} {template} ({name}): {response.status_code} not in "
                        f"{sorted(declared)}: {response.text[:120]}"
                    )
    assert undeclared == []
    # The provocations reached what they aimed at (else the test above proves little).
    assert {401, 403, 413, 422, 503} <= seen[("POST", "/v1/scores")]
    assert 500 in seen[("POST", "/v1/scores")]
    assert 404 in next(v for (m, t), v in seen.items() if t.endswith("/decision"))
