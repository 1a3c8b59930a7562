"""Per-app Prometheus metrics and the ASGI middleware that feeds them.

Labels are route templates (`/v1/scores/{score_id}`), methods and status codes only: never a
path with an id in it, never a case reference or an intake value.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException

log = logging.getLogger("riskscreen.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "riskscreen_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "riskscreen_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.scores = Histogram(
            "riskscreen_score_probability",
            "Served probabilities",
            buckets=tuple(i / 10 for i in range(1, 11)),
            registry=self.registry,
        )
        self.flags = Counter(
            "riskscreen_scores_total", "Served scores by band", ["band"], registry=self.registry
        )


def _route_template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestMiddleware:
    """Request id, body-size limit (413), access log and metrics, as one pure ASGI layer."""

    def __init__(self, app: Any, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        start = time.perf_counter()
        status_code = 500
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send, request_id)
            status_code = 413
            self._observe(scope, status_code, start, request_id)
            return
        received = 0

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # An HTTPException passes FastAPI's body parsing untouched and becomes a 413.
                    raise HTTPException(413, "the request body is larger than this service accepts")
            return message

        async def tagged_send(message: dict[str, Any]) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        finally:
            self._observe(scope, status_code, start, request_id)

    def _observe(
        self, scope: dict[str, Any], status_code: int, start: float, request_id: str
    ) -> None:
        route = _route_template(scope)
        elapsed = time.perf_counter() - start
        self.metrics.requests.labels(route, scope["method"], str(status_code)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "route": route,
                "method": scope["method"],
                "status": status_code,
                "ms": round(elapsed * 1000, 3),
            },
        )


async def _too_large(send: Any, request_id: str) -> None:
    body = b'{"detail":"the request body is larger than this service accepts"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
