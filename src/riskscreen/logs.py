"""Structured (JSON lines) logging for the service, configured by the entry point only.

Records carry the request id and route, never intake values: the access log is built from
fixed fields, and `JsonFormatter` copies only the whitelisted extras below, so a value a caller
puts into a log call by mistake does not reach the file.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

EXTRA_FIELDS = ("request_id", "route", "method", "status", "ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the whitelisted extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "unknown"
        return json.dumps(out, ensure_ascii=False)


def service_log_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn, applied in every worker process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "riskscreen.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn.access": {"handlers": [], "propagate": False},
            "uvicorn.error": {"level": level},
        },
    }
