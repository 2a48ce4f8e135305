"""A sweep as InfluxDB line protocol (spec 4.2): pure functions, tested as exact strings.

Measurements, tags and fields are fixed by issue 4 and documented in docs/metrics.md:
`container_metrics` (tags node, service_name, container_id, task_id) and `node_metrics`
(tag node). Byte counters are integer fields; an empty tag value is left out, as line
protocol forbids it.
"""
from __future__ import annotations

from collections.abc import Iterable

from exporter.sample import ContainerSample, NodeSample, Sweep

_SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def escape_key(text: str) -> str:
    """Escaping for tag keys and tag values: backslash, comma, equals sign, space."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value}i"
    return repr(round(float(value), 3))


def line(measurement: str, tags: Iterable[tuple[str, str]], fields: Iterable[tuple[str, float | int]], ts: float, precision: str) -> str:
    tag_text = "".join(f",{k}={escape_key(v)}" for k, v in tags if v)
    field_text = ",".join(f"{k}={_field(v)}" for k, v in fields)
    return f"{measurement}{tag_text} {field_text} {round(ts * _SCALE[precision])}"


def container_line(s: ContainerSample, precision: str) -> str:
    tags = (("node", s.node), ("service_name", s.meta.service), ("container_id", s.meta.id), ("task_id", s.meta.task_id))
    fields = (
        ("cpu_percent", s.cpu_percent),
        ("memory_mb", s.memory_mb),
        ("memory_percent", s.memory_percent),
        ("network_rx_bytes", s.net.rx_bytes),
        ("network_tx_bytes", s.net.tx_bytes),
        ("network_rx_mbps", s.rx_mbps),
        ("network_tx_mbps", s.tx_mbps),
        ("network_percent", s.network_percent),
    )
    return line("container_metrics", tags, fields, s.ts, precision)


def node_line(n: NodeSample, precision: str) -> str:
    fields = (
        ("cpu_percent", n.cpu_percent),
        ("memory_percent", n.memory_percent),
        ("network_rx_bytes", n.net.rx_bytes),
        ("network_tx_bytes", n.net.tx_bytes),
        ("network_rx_mbps", n.rx_mbps),
        ("network_tx_mbps", n.tx_mbps),
        ("network_percent", n.network_percent),
    )
    return line("node_metrics", (("node", n.node),), fields, n.ts, precision)


def sweep_lines(sweep: Sweep, precision: str = "ms") -> list[str]:
    lines = [container_line(s, precision) for s in sweep.containers]
    if sweep.node is not None:
        lines.append(node_line(sweep.node, precision))
    return lines
