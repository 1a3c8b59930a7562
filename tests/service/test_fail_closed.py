"""Fail closed: no unaudited score and no unexplained score ever leaves the service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from http_support import Service

from riskscreen.audit.chain import AuditStore


def read_only_url(url: str) -> str:
    """The same SQLite file, opened read-only through an SQLite URI."""
    return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"


DECISION = {"support": "usual", "agrees_with_flag": True, "reason_code": "other"}


@pytest.fixture
def read_only_audit(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditStore]:
    """Swap in an audit store that can read the log but not write it (root ignores chmod)."""
    url = service.settings.audit_url
    assert url is not None and url.startswith("sqlite:///")
    store = AuditStore.from_url(read_only_url(url))
    monkeypatch.setattr(service.state, "audit", store)
    yield store
    store.close()


def test_an_unwritable_audit_log_means_503_and_no_score(
    service: Service, bodies: list[dict[str, Any]], read_only_audit: AuditStore
) -> None:
    before = read_only_audit.head()
    for path, body in (
        ("/v1/scores", bodies[0]),
        ("/v1/scores/batch", {"records": bodies[:3]}),
    ):
        response = service.client.post(path, json=body, headers=service.auth("cm"))
        assert response.status_code == 503, response.text
        assert "manual intake" in response.json()["detail"]
        for word in ("probability", "log_odds", "contributions", "band"):
            assert word not in response.text
        assert response.headers["cache-control"] == "no-store"
    assert read_only_audit.head() == before
    ready = service.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["audit_writable"] is False


def test_an_unwritable_audit_log_refuses_decisions(
    service: Service, bodies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    score = service.score(bodies[1])
    url = service.settings.audit_url
    assert url is not None
    store = AuditStore.from_url(read_only_url(url))
    monkeypatch.setattr(service.state, "audit", store)
    try:
        response = service.client.post(
            f"/v1/scores/{score['score_id']}/decision", json=DECISION, headers=service.auth("cm")
        )
        assert response.status_code == 503
    finally:
        store.close()


def test_scoring_works_again_once_the_log_is_writable(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    before = service.audit_count()
    service.score(bodies[2])
    assert service.audit_count() == before + 1
    assert service.client.get("/readyz").status_code == 200


def test_an_explanation_that_does_not_add_up_is_never_served(
    service: Service, bodies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = service.state.model.loaded.bundle
    exact = bundle.contributions

    def off_by_a_little(x: np.ndarray, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        base, contributions = exact(x, *args, **kwargs)
        return base + 1e-4, contributions

    monkeypatch.setattr(bundle, "contributions", off_by_a_little)
    before = service.audit_count()
    for path, body in (
        ("/v1/scores", bodies[3]),
        ("/v1/scores/batch", {"records": bodies[3:5]}),
    ):
        response = service.client.post(path, json=body, headers=service.auth("cm"))
        assert response.status_code == 500, response.text
        assert "could not be explained" in response.json()["detail"]
        assert "probability" not in response.text
    assert service.audit_count() == before
    monkeypatch.undo()
    service.score(bodies[3])


def test_a_batch_whose_last_record_fails_logs_none_of_it(
    service: Service, bodies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every item is scored before any is logged, and the batch is logged in one transaction.
    bundle = service.state.model.loaded.bundle
    exact = bundle.contributions
    calls = 0

    def last_one_off(x: np.ndarray, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        nonlocal calls
        calls += 1
        base, contributions = exact(x, *args, **kwargs)
        return (base + 1e-4 if calls == 3 else base), contributions

    monkeypatch.setattr(bundle, "contributions", last_one_off)
    before = service.audit_count()
    response = service.client.post(
        "/v1/scores/batch", json={"records": bodies[5:8]}, headers=service.auth("cm")
    )
    assert response.status_code == 500, response.text
    assert calls == 3 and service.audit_count() == before
