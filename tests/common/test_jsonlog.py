"""Structured logs: one JSON object per line, fields flattened, a bad peer logged once."""
from __future__ import annotations

import json
import logging

from sgcommon.jsonlog import JsonFormatter, OnceLogger, event


def _capture() -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    log = logging.getLogger(f"test.{id(lines)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(ListHandler())
    return log, lines


def test_an_event_is_one_json_line_with_its_fields() -> None:
    log, lines = _capture()
    event(log, "migration finished", service="web", seconds=5.25)
    doc = json.loads(lines[0])
    assert doc["msg"] == "migration finished"
    assert doc["service"] == "web" and doc["seconds"] == 5.25
    assert doc["level"] == "info" and isinstance(doc["ts"], float)


def test_a_condition_is_logged_once_until_it_clears() -> None:
    log, lines = _capture()
    once = OnceLogger(log)
    assert once.warn("exporter:w1", "exporter unreachable", node="w1")
    assert not once.warn("exporter:w1", "exporter unreachable", node="w1")
    assert once.is_bad("exporter:w1")
    assert once.clear("exporter:w1", "exporter reachable again")
    assert not once.clear("exporter:w1", "exporter reachable again")
    assert once.warn("exporter:w1", "exporter unreachable", node="w1")
    assert [json.loads(x)["msg"] for x in lines] == [
        "exporter unreachable",
        "exporter reachable again",
        "exporter unreachable",
    ]
