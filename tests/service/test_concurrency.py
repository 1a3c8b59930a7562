"""Concurrent scoring never forks or breaks the audit chain."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from http_support import PER_THREAD, THREADS, Service, assert_chain_holds, score_concurrently


def test_eight_threads_leave_one_verifying_chain(
    service: Service, bodies: list[dict[str, Any]]
) -> None:
    scores = score_concurrently(service, bodies)
    assert len({s["score_id"] for s in scores}) == THREADS * PER_THREAD
    assert_chain_holds(service, scores)


def test_two_apps_on_one_audit_file_share_one_chain(
    service_factory: Callable[..., Service], bodies: list[dict[str, Any]]
) -> None:
    """Two app instances with their own engines, as two worker processes would have."""
    first = service_factory()
    second = service_factory(first.settings.audit_url)
    half = THREADS * PER_THREAD // 2
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(
            score_concurrently,
            (first, second),
            (bodies[:half], bodies[half : 2 * half]),
            (THREADS // 2, THREADS // 2),
        )
    assert_chain_holds(first, a + b)
