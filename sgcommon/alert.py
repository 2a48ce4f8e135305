"""The alert wire format between exporter and controller (spec 4.2), in one place.

An alert is one compact JSON object, well under 500 bytes:

    {"t0":1700000000.123,"t1":1700000000.131,"n":"worker-1","c":"<container id>",
     "s":"web-stress","k":"<task id>",
     "m":{"cpu":85.5,"mem":75.3,"mem_mb":1024.0,"net":3.1,"net_rx":15.2,"net_tx":10.5}}

t0: time of the breaching sample (exporter clock, Unix seconds); t1: send time.
n node host name, c container id, s Swarm service name, k Swarm task id.
m: cpu = cpu_percent, mem = memory_percent, mem_mb = working set in MiB,
net = network_percent, net_rx / net_tx in Mbit/s (docs/metrics.md defines each).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sgcommon.metricset import CONTAINER_KEYS

MAX_ALERT_BYTES = 1024
METRIC_KEYS = CONTAINER_KEYS  # docs/metrics.md defines each
_TOP_KEYS = {"t0", "t1", "n", "c", "s", "k", "m"}
_MAX_STR = 128


class AlertError(ValueError):
    """A malformed alert; the message names the offending field."""


@dataclass(frozen=True)
class Alert:
    t0: float
    t1: float
    node: str
    container_id: str
    service: str
    task_id: str
    metrics: dict[str, float]


def encode_alert(alert: Alert) -> bytes:
    doc = {
        "t0": round(alert.t0, 4),
        "t1": round(alert.t1, 4),
        "n": alert.node,
        "c": alert.container_id,
        "s": alert.service,
        "k": alert.task_id,
        "m": {k: round(float(alert.metrics[k]), 2) for k in METRIC_KEYS},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AlertError(f"{where}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise AlertError(f"{where}: expected a finite number >= 0, got {value!r}")
    return number


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value) or len(value) > _MAX_STR:
        raise AlertError(f"{where}: expected a non-empty string of at most {_MAX_STR} characters")
    return value


def decode_alert(body: bytes) -> Alert:
    """Parses and validates an alert body; raises AlertError with a clear message."""
    if len(body) > MAX_ALERT_BYTES:
        raise AlertError(f"body: {len(body)} bytes, at most {MAX_ALERT_BYTES} allowed")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlertError(f"body: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise AlertError("body: expected a JSON object")
    missing = sorted(_TOP_KEYS - doc.keys())
    if missing:
        raise AlertError(f"body: missing field(s) {', '.join(missing)}")
    unknown = sorted(doc.keys() - _TOP_KEYS)
    if unknown:
        raise AlertError(f"body: unknown field(s) {', '.join(map(str, unknown))}")
    metrics = doc["m"]
    if not isinstance(metrics, dict):
        raise AlertError("m: expected an object of metrics")
    bad = sorted(set(map(str, metrics)) ^ set(METRIC_KEYS))
    if bad:
        raise AlertError(f"m: expected exactly the keys {', '.join(METRIC_KEYS)}; wrong: {', '.join(bad)}")
    return Alert(
        t0=_number(doc["t0"], "t0"),
        t1=_number(doc["t1"], "t1"),
        node=_string(doc["n"], "n"),
        container_id=_string(doc["c"], "c"),
        service=_string(doc["s"], "s"),
        task_id=_string(doc["k"], "k", required=False),
        metrics={k: _number(metrics[k], f"m.{k}") for k in METRIC_KEYS},
    )
