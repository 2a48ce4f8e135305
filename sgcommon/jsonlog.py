"""Structured JSON logging: one line per event, a fixed message, the data in fields.

Every component logs through `get_logger(name)` and calls
`log.info("migration finished", extra={"fields": {...}})`, or the shorter
`event(log, "migration finished", service="web", seconds=5.2)`.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_CONFIGURED = False


class JsonFormatter(logging.Formatter):
    """Formats a record as one compact JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(fields)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Sends every log record to `stream` (stderr by default) as JSON lines. Idempotent."""
    global _CONFIGURED
    root = logging.getLogger()
    root.setLevel(level.upper())
    if _CONFIGURED:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    _CONFIGURED = True


def get_logger(name: str) -> logging.Logger:
    """Loggers are named `swarmguard.<component>[.<module>]` (e.g. swarmguard.exporter.alerts)."""
    return logging.getLogger(name)


def event(log: logging.Logger, msg: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Logs `msg` with `fields` as structured data."""
    log.log(level, msg, extra={"fields": fields})


class OnceLogger:
    """Logs a condition once until it clears, so a flapping peer does not flood the log.

    `warn(key, msg, **fields)` logs the first time a key goes bad; `clear(key, msg)`
    logs the recovery once and re-arms the key.
    """

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._bad: dict[str, float] = {}

    def warn(self, key: str, msg: str, **fields: Any) -> bool:
        if key in self._bad:
            return False
        self._bad[key] = time.time()
        event(self._log, msg, level=logging.WARNING, key=key, **fields)
        return True

    def clear(self, key: str, msg: str, **fields: Any) -> bool:
        since = self._bad.pop(key, None)
        if since is None:
            return False
        event(self._log, msg, key=key, down_seconds=round(time.time() - since, 3), **fields)
        return True

    def is_bad(self, key: str) -> bool:
        return key in self._bad
