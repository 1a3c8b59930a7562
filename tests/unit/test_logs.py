"""Structured logs keep to whitelisted fields."""

from __future__ import annotations

import json
import logging
import logging.config

from riskscreen.logs import JsonFormatter, service_log_config


def test_json_lines_carry_request_fields_and_nothing_else() -> None:
    record = logging.LogRecord(
        "riskscreen.access", logging.INFO, __file__, 1, "request", None, None
    )
    record.request_id = "abc"
    record.route = "/v1/scores"
    record.disability = "psychiatric"  # not whitelisted: must not be written
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abc" and line["route"] == "/v1/scores"
    assert "disability" not in line and "psychiatric" not in json.dumps(line)


def test_service_log_config_is_valid() -> None:
    logging.config.dictConfig(service_log_config())
    try:
        root = logging.getLogger()
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
