"""Reliability tier: fuzzing, hostile inputs, crashes, tampering, authorization, limits.

Two sizes: the test command's (a few minutes on two cores) and the stress mode's
(`scripts/stress`, RISKSCREEN_STRESS=1), which raises every count to the figures in
tests/reliability/README.md. The fuzzing seed is fixed in the test command, so a failure
reproduces; the stress mode draws one and prints it (RISKSCREEN_FUZZ_SEED repeats a run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reliability_budget import Budget, budget_from_env
from reliability_servers import Zygote, zygote
from reliability_support import Keys, add_keys, sqlite_url

from riskscreen.registry import Registration
from riskscreen.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    # Fix the seed once in the controller; xdist workers inherit the environment.
    if not os.environ.get("RISKSCREEN_FUZZ_SEED"):
        os.environ["RISKSCREEN_FUZZ_SEED"] = str(budget_from_env().seed)


def pytest_report_header(config: pytest.Config) -> str:
    b = budget_from_env()
    return (
        f"reliability: {'STRESS' if b.stress else 'test'} mode, seed {b.seed} "
        f"(RISKSCREEN_FUZZ_SEED={b.seed} repeats it); {b.fuzz_examples} fuzz examples per "
        f"operation and role, {b.kill_points} kill points on SQLite, {b.pg_kill_points} on "
        f"PostgreSQL, {b.overload_seconds:g} s overload, {b.concurrent_records} concurrent records"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures each test recorded (`record_property("figures", ...)`), also under xdist."""
    lines = [
        str(value)
        for report in terminalreporter.stats.get("passed", [])
        for name, value in getattr(report, "user_properties", ())
        if name == "figures"
    ]
    if lines:
        terminalreporter.section("reliability figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def budget() -> Budget:
    return budget_from_env()


@pytest.fixture(scope="session")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """One fork server per test process: real servers started in a fraction of a second."""
    with zygote(tmp_path_factory.mktemp("zygote")) as z:
        yield z


@pytest.fixture
def fast_path(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs where there is one (fsync is free there): for logs whose
    durability is not what a test is about. Falls back to tmp_path."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="riskscreen-", dir="/dev/shm"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def model_settings(registered: tuple[Settings, Registration]) -> Settings:
    """Settings whose data directory holds the session's champion (no audit URL yet)."""
    return registered[0]


@pytest.fixture
def app_settings(model_settings: Settings, fast_path: Path) -> Settings:
    """The champion, a fresh SQLite audit log (on tmpfs), and limits that stay out of the way."""
    return model_settings.model_copy(
        update={
            "audit_url": sqlite_url(fast_path),
            "rate_limit_per_minute": 10**9,
            "rate_limit_burst": 10**9,
        }
    )


@pytest.fixture
def keyed(app_settings: Settings) -> Callable[..., Keys]:
    """Issue keys (one per role, plus any named) in an audit database before an app opens it."""

    def issue(settings: Settings = app_settings, **extra: str) -> Keys:
        return add_keys(settings.resolved_audit_url, **extra)

    return issue
