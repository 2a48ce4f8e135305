"""The exporters' samples read back from the lab's sink: one home for the victoria-metrics export.

The exporters write every container's figures to the lab's victoria-metrics (10.99.0.1:8428,
`container_metrics_<field>{container_id, node, service_name, ...}`: one sample a second, written
every 5 s; docs/exporter.md). The lab tools read them back afterwards: one container's series (the
leak timelines, scenario 2's calibration and its "why no scale-up"), or every container of a
service, one `Series` each (scenario 2's per-replica CPU). `/api/v1/export` answers one JSON object
a line per series. Everything but `export` is pure and unit-tested.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests

from labkit import labinfo
from sgcommon.engine import EngineError

SINK = labinfo.SINK
FIELDS = {"mem": "memory_percent", "cpu": "cpu_percent", "net": "network_percent"}  # rule key -> line-protocol field (docs/metrics.md)
Points = list[tuple[float, float]]


@dataclass
class Series:
    """One container's samples from the sink: (Unix seconds, value), oldest first."""

    container_id: str
    node: str
    points: Points = field(default_factory=list)


def parse_series(text: str) -> list[Series]:
    """victoria-metrics /api/v1/export lines -> one Series per container (its lines merged, sorted)."""
    out: dict[str, Series] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        metric = doc["metric"]
        cid = metric.get("container_id", "")
        series = out.setdefault(cid, Series(container_id=cid, node=metric.get("node", "")))
        series.points.extend((ts / 1000.0, float(v)) for ts, v in zip(doc["timestamps"], doc["values"], strict=True))
    for series in out.values():
        series.points.sort()
    return list(out.values())


def merged(series: Sequence[Series]) -> Points:
    """Every sample of every series, sorted, each (time, value) once."""
    return sorted({p for one in series for p in one.points})


def parse_points(text: str) -> Points:
    """victoria-metrics /api/v1/export lines -> `merged` samples."""
    return merged(parse_series(text))


def export(selector: str, *, start: float, end: float, sink: str = SINK) -> list[Series]:
    """The series `selector` matches between start and end; EngineError (the lab tools' one error)
    when the sink cannot give them."""
    try:
        response = requests.get(f"{sink}/api/v1/export", timeout=10, params={
            "match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"})
        response.raise_for_status()
        return parse_series(response.text)
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"the samples {selector} from {sink}: {type(exc).__name__}: {exc}") from None


def export_series(container_id: str, metric: str, *, start: float, end: float, sink: str = SINK) -> Points:
    """The exporter's samples of `metric` (mem, cpu, net) for one container between start and end."""
    selector = f'container_metrics_{FIELDS[metric]}{{container_id="{container_id}"}}'
    return merged(export(selector, start=start, end=end, sink=sink))


def service_series(service: str, metric: str, *, start: float, end: float, sink: str = SINK) -> list[Series]:
    """Every container of `service`: its samples of `metric` between start and end, one Series each."""
    return export(f'container_metrics_{FIELDS[metric]}{{service_name="{service}"}}', start=start, end=end, sink=sink)
