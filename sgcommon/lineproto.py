"""InfluxDB line protocol, written in one place: escaping, field types and timestamps.

The exporter (container_metrics, node_metrics), the controller (recovery_events) and the test
reports (test_results) all build their points with `line()`; what they write is pinned by tests
with exact strings.
"""
from __future__ import annotations

from collections.abc import Iterable

SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

FieldValue = float | int | str | bool


def escape_tag(text: str) -> str:
    """Escaping for measurement names, tag keys and tag values: backslash, comma, equals, space.

    A newline would end the point: it is written as the two characters backslash-n.
    """
    return (text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
            .replace("\n", "\\n"))


def format_field(value: FieldValue) -> str:
    """A field value: booleans as true/false, integers with `i`, floats as repr, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return repr(float(value))


def line(
    measurement: str,
    tags: Iterable[tuple[str, str]],
    fields: Iterable[tuple[str, FieldValue]],
    ts: float,
    precision: str = "ms",
) -> str:
    """One point. Tags with an empty value are left out (line protocol forbids them)."""
    tag_text = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in tags if v)
    field_text = ",".join(f"{escape_tag(k)}={format_field(v)}" for k, v in fields)
    if not field_text:
        raise ValueError(f"{measurement}: a point needs at least one field")
    return f"{escape_tag(measurement)}{tag_text} {field_text} {round(ts * SCALE[precision])}"
