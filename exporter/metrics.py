"""The Prometheus side: a custom collector that turns the latest sweep into metric families at
scrape time (nothing is copied into client objects each tick), plus the exporter's own health
figures. Everything lives in a registry of its own, never the global one.

Names and labels are a contract with the controller's scraper (docs/metrics.md).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.sample import ContainerSample, NodeSample, Sweep
from sgcommon.metricset import CONTAINER_FIGURES, CONTAINER_LABELS, NODE_FIGURES, SAMPLE_TIMESTAMP

ERROR_KINDS = ("vanished", "parse", "node", "engine", "overrun", "internal")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# the value of each figure of the metric set (sgcommon.metricset) in a container's sample
_CONTAINER_VALUES: dict[str, Callable[[ContainerSample], float]] = {
    "cpu": lambda s: s.cpu_percent,
    "mem": lambda s: s.memory_percent,
    "mem_mb": lambda s: s.memory_bytes,  # exposed in bytes (the figure's scale makes MiB)
    "net": lambda s: s.network_percent,
    "net_rx": lambda s: s.rx_mbps,
    "net_tx": lambda s: s.tx_mbps,
}
_CONTAINER_GAUGES: tuple[tuple[str, str, Callable[[ContainerSample], float]], ...] = (
    *((f.exposition, f.help, _CONTAINER_VALUES[f.key]) for f in CONTAINER_FIGURES),
    (SAMPLE_TIMESTAMP, "Unix time the container's figures were read.", lambda s: s.ts),
)
_CONTAINER_COUNTERS: tuple[tuple[str, str, Callable[[ContainerSample], float]], ...] = (
    ("swarmguard_container_network_receive_bytes", "Bytes received by the container's network namespace.", lambda s: s.net.rx_bytes),
    ("swarmguard_container_network_transmit_bytes", "Bytes sent by the container's network namespace.", lambda s: s.net.tx_bytes),
    ("swarmguard_container_network_receive_packets", "Packets received by the container's network namespace.", lambda s: s.net.rx_packets),
    ("swarmguard_container_network_transmit_packets", "Packets sent by the container's network namespace.", lambda s: s.net.tx_packets),
)


class SweepCollector(Collector):
    """Reads `latest()` at scrape time; no sweep yet means no container or node series."""

    def __init__(self, latest: Callable[[], Sweep | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        sweep = self._latest()
        yield from _container_families(sweep.containers if sweep else ())
        yield from _node_families(sweep)


def _container_families(samples: tuple[ContainerSample, ...]) -> Iterator[Metric]:
    rows = [((s.node, s.meta.service, s.meta.id, s.meta.task_id), s) for s in samples]
    for name, text, value in _CONTAINER_GAUGES:
        gauge = GaugeMetricFamily(name, text, labels=CONTAINER_LABELS)
        for labels, s in rows:
            gauge.add_metric(labels, value(s))
        yield gauge
    for name, text, value in _CONTAINER_COUNTERS:
        counter = CounterMetricFamily(name, text, labels=CONTAINER_LABELS)
        for labels, s in rows:
            counter.add_metric(labels, value(s))
        yield counter


_NODE_VALUES: dict[str, Callable[[NodeSample], float]] = {
    "cpu": lambda n: n.cpu_percent,
    "mem": lambda n: n.memory_percent,
    "net": lambda n: n.network_percent,
}
_NODE_GAUGES: tuple[tuple[str, str, Callable[[NodeSample], float]], ...] = (
    *((f.exposition, f.help, _NODE_VALUES[f.key]) for f in NODE_FIGURES),
    ("swarmguard_node_network_receive_mbps", "Received on NET_IFACE, Mbit/s.", lambda n: n.rx_mbps),
    ("swarmguard_node_network_transmit_mbps", "Sent on NET_IFACE, Mbit/s.", lambda n: n.tx_mbps),
)


def _node_families(sweep: Sweep | None) -> Iterator[Metric]:
    node = sweep.node if sweep else None
    for name, text, value in _NODE_GAUGES:
        gauge = GaugeMetricFamily(name, text, labels=("node",))
        if node is not None:
            gauge.add_metric((node.node,), value(node))
        yield gauge


class StatsCollector(Collector):
    """The exporter's own counters that live in plain objects (alert sender, influx writer)."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        for name, (kind, text, value) in self._read().items():
            family = CounterMetricFamily(name, text) if kind == "counter" else GaugeMetricFamily(name, text)
            family.add_metric((), value)
            yield family


class SelfMetrics:
    """Collection duration and errors by kind, registered in the exporter's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.duration = Histogram(
            "swarmguard_exporter_collection_seconds", "Time one sweep over all containers took.",
            buckets=DURATION_BUCKETS, registry=registry,
        )
        self.errors = Counter(
            "swarmguard_exporter_errors", "Errors by kind: vanished, parse, node, engine, overrun, internal.",
            labelnames=("kind",), registry=registry,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()
