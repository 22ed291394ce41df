from __future__ import annotations

import json
import logging

from bridge.logs import JsonFormatter


def test_json_log_line_has_the_fields_log_shippers_want() -> None:
    record = logging.LogRecord("bridge.executor", logging.WARNING, __file__, 1,
                               "%s: zap failed: %s", ("salon", "device_standby"), None)
    record.device = "salon"
    record.request_id = "sim-00000001"
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert "\n" not in line
    assert data["level"] == "warning" and data["logger"] == "bridge.executor"
    assert data["message"] == "salon: zap failed: device_standby"
    assert data["device"] == "salon" and data["request_id"] == "sim-00000001"
    assert data["ts"].endswith("Z")


def test_json_log_without_extras() -> None:
    record = logging.LogRecord("bridge", logging.INFO, __file__, 1, "plain", (), None)
    assert set(json.loads(JsonFormatter().format(record))) == {"ts", "level", "logger",
                                                                 "message"}
