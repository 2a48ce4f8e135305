"""A sweep as InfluxDB line protocol (docs/metrics.md): pure functions, tested as exact strings.

Measurements, tags and fields are documented in docs/metrics.md (field names: sgcommon.metricset):
`container_metrics` (tags node, service_name, container_id, task_id) and `node_metrics`
(tag node). Byte counters are integer fields; an empty tag value is left out, as line
protocol forbids it.
"""
from __future__ import annotations

from exporter.sample import ContainerSample, NodeSample, Sweep
from sgcommon.lineproto import line
from sgcommon.metricset import CONTAINER_FIGURES, NODE_FIGURES

_C = {f.key: f.field for f in CONTAINER_FIGURES}  # field names of the metric set
_N = {f.key: f.field for f in NODE_FIGURES}

def _round(fields: tuple[tuple[str, float | int], ...]) -> tuple[tuple[str, float | int], ...]:
    """Floats to 3 decimals (a thousandth of a percent or MB is noise); counters stay integers."""
    return tuple((k, v if isinstance(v, int) else round(float(v), 3)) for k, v in fields)


def container_line(s: ContainerSample, precision: str) -> str:
    tags = (("node", s.node), ("service_name", s.meta.service), ("container_id", s.meta.id), ("task_id", s.meta.task_id))
    fields = (
        (_C["cpu"], s.cpu_percent),
        (_C["mem_mb"], s.memory_mb),
        (_C["mem"], s.memory_percent),
        ("network_rx_bytes", s.net.rx_bytes),
        ("network_tx_bytes", s.net.tx_bytes),
        (_C["net_rx"], s.rx_mbps),
        (_C["net_tx"], s.tx_mbps),
        (_C["net"], s.network_percent),
    )
    return line("container_metrics", tags, _round(fields), s.ts, precision)


def node_line(n: NodeSample, precision: str) -> str:
    fields = (
        (_N["cpu"], n.cpu_percent),
        (_N["mem"], n.memory_percent),
        ("network_rx_bytes", n.net.rx_bytes),
        ("network_tx_bytes", n.net.tx_bytes),
        ("network_rx_mbps", n.rx_mbps),
        ("network_tx_mbps", n.tx_mbps),
        (_N["net"], n.network_percent),
    )
    return line("node_metrics", (("node", n.node),), _round(fields), n.ts, precision)


def sweep_lines(sweep: Sweep, precision: str = "ms") -> list[str]:
    lines = [container_line(s, precision) for s in sweep.containers]
    if sweep.node is not None:
        lines.append(node_line(sweep.node, precision))
    return lines
