"""Admission control: a per-key rate limit, a bound on concurrent requests, a deadline per request.

- **Rate limit (429).** A token bucket per API key, refilled at `rate_limit_per_minute` and
  holding at most `rate_limit_burst` tokens; an empty bucket answers 429 with `Retry-After`.
  It is applied after authentication, so a caller cannot spend another key's budget by sending
  its key id with a wrong secret.
- **Concurrency limit (503).** At most `max_concurrent_requests` requests are admitted at once;
  the next one is answered 503 with `Retry-After` at once instead of waiting in a queue that
  grows without bound (each waiting request holds its body and a socket). Keep it below the
  thread pool that runs the sync routes (AnyIO's default: 40), so nothing queues there either.
- **Deadline (503).** A request not answered within `request_timeout_seconds` gets a 503. Work
  already running in a thread cannot be interrupted; it finishes in the background and keeps
  its concurrency slot until then, so stuck work turns into shed load rather than a pile-up.
  A score whose audit record was committed after its deadline is therefore logged but was not
  delivered: the log may hold scores nobody received, never a delivered score it lacks.

**Several processes.** The buckets and the in-flight count live in each process: no database
write per request (the audit log's write lock is the one shared resource worth its cost) and no
extra service to run. With `workers` processes each takes `1/workers` of the per-key rate and
burst, so a key whose requests spread over the processes gets about the configured rate; a
client that keeps one connection open reaches one process and gets `1/workers` of it (stricter,
never looser). `riskscreen serve --workers N` sets `RISKSCREEN_WORKERS`; behind a load balancer
with separate hosts, set it to the number of processes in total.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, status

from riskscreen.settings import Settings

log = logging.getLogger(__name__)
# Cheap, in-memory probes stay answerable when the service is saturated.
UNLIMITED_PATHS = frozenset({"/healthz", "/metrics"})


class TokenBuckets:
    """Per-key token buckets: `take(key)` is None when allowed, else seconds until a token."""

    def __init__(
        self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()  # dependencies run in the thread pool

    def take(self, key: str) -> float | None:
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_second


class Limits:
    """The limits of one process, derived from the settings (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        workers = settings.workers
        self.buckets = TokenBuckets(
            per_second=settings.rate_limit_per_minute / 60.0 / workers,
            burst=max(1.0, settings.rate_limit_burst / workers),
        )
        self.max_concurrent = settings.max_concurrent_requests
        self.timeout = settings.request_timeout_seconds


def enforce_rate_limit(request: Request, key_id: str) -> None:
    """Spend one of the key's tokens, or answer 429 saying when to come back."""
    limits: Limits | None = getattr(request.app.state, "limits", None)
    if limits is None:
        return
    wait = limits.buckets.take(key_id)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many requests for this API key; slow down and retry after the given seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return b"transfer-encoding" in headers


async def _problem(send: Any, code: int, detail: str, retry_after: int | None = None) -> None:
    body = ('{"detail":"' + detail + '"}').encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    """Pure ASGI: content type (415), concurrency (503) and deadline (503) for each request."""

    def __init__(self, app: Any, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight = 0  # touched only on the event loop

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if _has_body(headers) and not _is_json(headers.get(b"content-type")):
            await _problem(send, 415, "send the body as application/json")
            return
        if self.in_flight >= self.limits.max_concurrent:
            await _problem(send, 503, "the service is at capacity; retry shortly", retry_after=1)
            return
        self.in_flight += 1
        try:
            await self._with_deadline(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _with_deadline(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = answered = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if answered:
                return  # the caller already has its 503; the late answer goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.limits.timeout)
            if task in done:
                task.result()
                return
            if not started:
                answered = True
                await _problem(
                    send,
                    503,
                    f"no answer within {self.limits.timeout:g} s; nothing was served, retry later",
                    retry_after=1,
                )
                task.cancel()  # interrupts waiting on the client; thread work runs to its end
            await asyncio.wait({task})
        except BaseException:
            task.cancel()
            raise
        if not answered:
            task.result()  # a started but slow answer: its errors are handled as usual
        elif not task.cancelled() and task.exception() is not None:
            log.error("request failed after its deadline: %s", type(task.exception()).__name__)
