"""The alert wire format between exporter and controller (docs/metrics.md), in one place.

An alert is one compact JSON object, well under 500 bytes:

    {"t0":1700000000.123,"t1":1700000000.131,"n":"worker-1","c":"<container id>",
     "s":"web-stress","k":"<task id>",
     "m":{"cpu":85.5,"mem":75.3,"mem_mb":1024.0,"net":3.1,"net_rx":15.2,"net_tx":10.5}}

t0: time of the breaching sample (exporter clock, Unix seconds); t1: send time.
n node host name, c container id, s Swarm service name, k Swarm task id.
m: cpu = cpu_percent, mem = memory_percent, mem_mb = working set in MiB,
net = network_percent, net_rx / net_tx in Mbit/s (docs/metrics.md defines each).

Optional, from a predictive alert (exporter/predict.py): "p":{"m":"mem","t":1700000004.5}, the
figure whose trend sends the sample before any threshold is crossed, and when that trend's line
reaches the exporter's predict limit (Unix seconds, exporter clock). An alert without "p" is what
every exporter sent before; a controller from before "p" refuses it as an unknown field, and the
exporter then sends its alerts without it (exporter/alerts.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sgcommon.metricset import CONTAINER_KEYS

MAX_ALERT_BYTES = 1024
MAX_DEPTH = 4  # an alert nests 2 levels ({"m": {...}}); deeper input is refused before json parses it
METRIC_KEYS = CONTAINER_KEYS  # docs/metrics.md defines each
PERCENT_KEYS = frozenset(("cpu", "mem", "net"))  # 0-100 by definition (docs/metrics.md)
_TOP_KEYS = {"t0", "t1", "n", "c", "s", "k", "m"}
_OPTIONAL_KEYS = {"p"}
_PREDICTION_KEYS = {"m", "t"}
_MAX_STR = 128
_BOM = b"\xef\xbb\xbf"


class AlertError(ValueError):
    """A malformed alert; the message names the offending field."""


@dataclass(frozen=True)
class Prediction:
    """Why a predictive alert was sent: `metric`'s trend reaches the exporter's limit at `at`."""

    metric: str  # one of METRIC_KEYS
    at: float  # Unix seconds (exporter clock)


@dataclass(frozen=True)
class Alert:
    t0: float
    t1: float
    node: str
    container_id: str
    service: str
    task_id: str
    metrics: dict[str, float]
    predicted: Prediction | None = None


def encode_alert(alert: Alert, *, with_prediction: bool = True) -> bytes:
    """The wire form; `with_prediction=False` leaves out "p" (for a controller that predates it)."""
    doc: dict[str, Any] = {
        "t0": round(alert.t0, 4),
        "t1": round(alert.t1, 4),
        "n": alert.node,
        "c": alert.container_id,
        "s": alert.service,
        "k": alert.task_id,
        "m": {k: round(float(alert.metrics[k]), 2) for k in METRIC_KEYS},
    }
    if alert.predicted is not None and with_prediction:
        doc["p"] = {"m": alert.predicted.metric, "t": round(alert.predicted.at, 4)}
    return json.dumps(doc, separators=(",", ":")).encode()


def _number(value: Any, where: str, *, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AlertError(f"{where}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an integer literal with hundreds of digits
        raise AlertError(f"{where}: expected a finite number, got an integer of {len(str(value))} digits") from None
    if not math.isfinite(number) or not 0 <= number <= high:
        limit = "" if high == math.inf else f" and <= {high:g}"
        raise AlertError(f"{where}: expected a finite number >= 0{limit}, got {number!r}")
    return number


def _string(value: Any, where: str, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value) or len(value) > _MAX_STR:
        raise AlertError(f"{where}: expected a non-empty string of at most {_MAX_STR} characters")
    if not value.isprintable():  # control and format characters, unpaired surrogates (from \ud800)
        raise AlertError(f"{where}: control characters and unpaired surrogates are not allowed")
    return value


def _depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects, strings skipped: json's C parser recurses once per
    level and raises RecursionError around 1000, which a 1 KB body can reach."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise AlertError(f"body: duplicate key {key[:40]!r}")
        doc[key] = value
    return doc


def _parse(body: bytes) -> Any:
    """Strict JSON: UTF-8 without a byte order mark, no duplicate keys, shallow. NaN and Infinity
    parse (Python's json accepts them) and are refused by the field they are in."""
    if body.startswith(_BOM):
        raise AlertError("body: starts with a UTF-8 byte order mark; send plain UTF-8 JSON")
    try:
        text = body.decode("utf-8")  # strict: invalid UTF-8 and encoded surrogates are refused
    except UnicodeDecodeError as exc:
        raise AlertError(f"body: not valid UTF-8 (byte {exc.start})") from None
    if _depth(body) > MAX_DEPTH:
        raise AlertError(f"body: nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except AlertError:
        raise
    except json.JSONDecodeError as exc:
        raise AlertError(f"body: not valid JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:  # ValueError: e.g. an integer of more than 4300 digits
        raise AlertError(f"body: not valid JSON ({type(exc).__name__})") from None


def decode_alert(body: bytes) -> Alert:
    """Parses and validates an alert body; raises AlertError with a clear message, nothing else."""
    if len(body) > MAX_ALERT_BYTES:
        raise AlertError(f"body: {len(body)} bytes, at most {MAX_ALERT_BYTES} allowed")
    doc = _parse(body)
    if not isinstance(doc, dict):
        raise AlertError("body: expected a JSON object")
    missing = sorted(_TOP_KEYS - doc.keys())
    if missing:
        raise AlertError(f"body: missing field(s) {', '.join(missing)}")
    unknown = sorted(doc.keys() - _TOP_KEYS - _OPTIONAL_KEYS)
    if unknown:
        raise AlertError(f"body: unknown field(s) {', '.join(repr(k[:40]) if not k.isidentifier() else k for k in unknown[:5])}")
    metrics = doc["m"]
    if not isinstance(metrics, dict):
        raise AlertError("m: expected an object of metrics")
    bad = sorted(set(metrics) ^ set(METRIC_KEYS))
    if bad:
        shown = ", ".join(k if k.isidentifier() else repr(k[:40]) for k in bad[:8])
        raise AlertError(f"m: expected exactly the keys {', '.join(METRIC_KEYS)}; wrong: {shown}")
    return Alert(
        t0=_number(doc["t0"], "t0"),
        t1=_number(doc["t1"], "t1"),
        node=_string(doc["n"], "n"),
        container_id=_string(doc["c"], "c"),
        service=_string(doc["s"], "s"),
        task_id=_string(doc["k"], "k", required=False),
        metrics={k: _number(metrics[k], f"m.{k}", high=100.0 if k in PERCENT_KEYS else math.inf) for k in METRIC_KEYS},
        predicted=_prediction(doc["p"]) if "p" in doc else None,
    )


def _prediction(value: Any) -> Prediction:
    if not isinstance(value, dict):
        raise AlertError("p: expected an object {\"m\": metric, \"t\": time}")
    bad = sorted(set(value) ^ _PREDICTION_KEYS)
    if bad:
        shown = ", ".join(k if k.isidentifier() else repr(k[:40]) for k in bad[:4])
        raise AlertError(f"p: expected exactly the keys m, t; wrong: {shown}")
    metric = value["m"]
    if not isinstance(metric, str) or metric not in METRIC_KEYS:
        shown = repr(metric[:40]) if isinstance(metric, str) else type(metric).__name__
        raise AlertError(f"p.m: expected one of {', '.join(METRIC_KEYS)}, got {shown}")
    return Prediction(metric=metric, at=_number(value["t"], "p.t"))
