"""Schemathesis against the app's own OpenAPI document, in process (ASGI), every phase and check.

One run = one caller (a role's key, or no credentials) on a fresh app: the examples, coverage,
fuzzing (positive and negative data) and stateful phases, with every check schemathesis has
(server errors, status codes, content types, response schemas and headers, negative data
rejected, positive data accepted, ignored auth, unsupported methods, ...). A failure is reported
with the request and the response, so it can be fixed in the service.

One rule of the contract cannot be written in JSON Schema: `intake_date` may not lie in the
future (its description says so). Generation is told that rule, as a strategy for the `date`
format; the checks themselves are left exactly as schemathesis ships them.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema

schemathesis.openapi.format(
    "date", st.dates(max_value=dt.date.today()).map(lambda d: d.isoformat())
)

GENERATING_PHASES = ("examples", "coverage", "fuzzing")


@dataclass
class FuzzFailure:
    operation: str
    check: str
    message: str
    request: str
    response: str

    def __str__(self) -> str:
        return (
            f"{self.operation} [{self.check}] {self.message}\n"
            f"  request:  {self.request}\n  response: {self.response}"
        )


@dataclass
class FuzzReport:
    seed: int
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    stateful_requests: int = 0
    failures: list[FuzzFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        per_op = ", ".join(f"{op}: {n}" for op, n in sorted(self.requests.items()))
        return (
            f"seed {self.seed}; requests per operation ({', '.join(GENERATING_PHASES)}): "
            f"{per_op}; stateful phase: {self.stateful_requests} requests; "
            f"{len(self.failures)} failures, {len(self.errors)} errors"
        )


def _describe(interaction: Any) -> tuple[str, str]:
    if interaction is None:
        return "?", "?"
    req = interaction.request
    body = (req.body or b"")[:400]
    request = f"{req.method} {req.uri} body={body!r}"
    res = interaction.response
    response = "no response" if res is None else f"{res.status_code} {res.content[:400]!r}"
    return request, response


def run(
    app: Any, token: str | None, *, max_examples: int, stateful_examples: int, seed: int
) -> FuzzReport:
    """Every phase and check against `app` as the holder of `token` (None: no credentials).

    `max_examples` bounds each operation in the fuzzing phase (positive and negative data);
    `stateful_examples` bounds the scenarios (call sequences) of the stateful phase.
    """
    phases: dict[str, Any] = {
        name: {"enabled": True} for name in ("examples", "coverage", "fuzzing")
    }
    phases["stateful"] = {"enabled": True, "generation": {"max-examples": stateful_examples}}
    config: dict[str, Any] = {
        "seed": seed,
        "workers": 1,
        "generation": {"max-examples": max_examples, "mode": "all"},
        "phases": phases,
        "checks": {"enabled": True},
    }
    if token is not None:
        config["headers"] = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict(config)
    )
    report = FuzzReport(seed)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(report, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            info = getattr(event, "info", None)
            report.errors.append(getattr(info, "message", None) or repr(event))
    return report


def _record(report: FuzzReport, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    if event.phase.value == "stateful":
        report.stateful_requests += len(recorder.interactions)
    elif event.phase.value in GENERATING_PHASES:
        report.requests[recorder.label] += len(recorder.interactions)
    seen: set[tuple[str, str]] = set()
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            request, response = _describe(recorder.interactions.get(case_id))
            operation = request.split(" ", 2)[1].split("?")[0] if " " in request else "?"
            label = recorder.label if recorder.label != "Stateful tests" else operation
            if (label, check.name) in seen:
                continue  # one example of each failing check per scenario is enough to act on
            seen.add((label, check.name))
            message = " / ".join(str(info.failure).strip().splitlines())[:600]
            report.failures.append(FuzzFailure(label, check.name, message, request, response))
