"""Schema-driven fuzzing: every operation, for each role and for no credentials, zero failures.

Each role fuzzes its own fresh app and audit log, so an admin switching scoring off (which the
stateful phase may well do) cannot turn another role's valid scores into 503s.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from reliability_budget import Budget
from reliability_fuzz import run
from reliability_support import Keys, client

from riskscreen.settings import Settings

CALLERS = ["case_manager", "auditor", "admin", None]
# Operations whose only input is the credential: one distinct request exists, and Hypothesis
# does not repeat an input it has already tried.
WITHOUT_INPUTS = {
    "GET /healthz",
    "GET /metrics",
    "GET /readyz",
    "GET /v1/model",
    "GET /v1/audit/verify",
    "POST /v1/admin/reload",
}


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-credentials")
def test_every_operation_survives_fuzzing(
    caller: str | None,
    app_settings: Settings,
    keyed: Callable[..., Keys],
    budget: Budget,
    record_property: pytest.RecordProperty,
) -> None:
    keys = keyed()
    with client(app_settings) as c:
        token = keys.tokens[caller] if caller else None
        report = run(
            c.app,
            token,
            max_examples=budget.fuzz_examples,
            stateful_examples=budget.fuzz_examples // 4,
            seed=budget.seed,
        )
    record_property("figures", f"fuzzing as {caller or 'nobody'}: {report.summary()}")
    assert not report.errors, report.errors
    assert not report.failures, "\n".join(str(f) for f in report.failures)
    operations = {f"{m.upper()} {p}" for p, ms in c.app.openapi()["paths"].items() for m in ms}
    assert set(report.requests) == operations
    for operation, count in report.requests.items():
        if operation not in WITHOUT_INPUTS:
            assert count >= budget.fuzz_examples, (operation, count)
    assert report.stateful_requests > 0
