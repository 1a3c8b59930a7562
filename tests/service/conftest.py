"""Service-tier fixtures: apps over HTTP on their own audit databases, and intake bodies.

Every module gets its own audit database (`service` is module-scoped), so one module's records
never show up in another's chain; the registered model is the session's (tests/model_fixtures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from http_support import UNLIMITED, Service, running, score_body, sqlite_url

from riskscreen.registry import Registration
from riskscreen.settings import Settings
from riskscreen.synth.generate import Cohort


@pytest.fixture(scope="session")
def bodies(small_cohort: Cohort) -> list[dict[str, Any]]:
    """Valid POST /v1/scores bodies for the first 400 rows of the session cohort."""
    rows = small_cohort.intake.head(400).to_dict(orient="records")
    return [score_body(r) for r in rows]


@pytest.fixture(scope="module")
def service_factory(
    registered: tuple[Settings, Registration], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Service]]:
    """Start apps on fresh SQLite audit databases (or a given URL); all stopped at module end."""
    base, _ = registered
    with ExitStack() as stack:

        def start(audit_url: str | None = None) -> Service:
            url = audit_url or sqlite_url(tmp_path_factory.mktemp("audit"))
            settings = base.model_copy(update={"audit_url": url, **UNLIMITED})
            return stack.enter_context(running(settings))

        yield start


@pytest.fixture(scope="module")
def service(service_factory: Callable[..., Service]) -> Service:
    """One app per test module, on its own SQLite audit database."""
    return service_factory()
