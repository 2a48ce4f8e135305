"""The Prometheus side: the latest sweep as metric families, plus the exporter's own health figures.

One table of series (name, type, help, value) drives both renderings of a sweep:
- `SweepText` writes the text format directly, the label set of each container escaped once and
  kept while the container lives, and each sweep rendered at most once whatever the scrape rate:
  prometheus_client's generic exposition validated and escaped every label of every sample on
  every scrape and was four fifths of the exporter's CPU (docs/exporter.md, Overhead);
- `SweepCollector` yields the same series as prometheus_client families, for any registry.
The exporter's own counters and histogram stay in a prometheus_client registry of their own.

Names and labels are a contract with the controller's scraper and with Prometheus users
(sgcommon/metricset.py, docs/metrics.md).
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.procfs import CPU_MODES
from exporter.sample import ContainerSample, NodeSample, Sweep
from sgcommon.engine.containers import LocalContainer
from sgcommon.metricset import (
    CONTAINER_CPU_LIMIT,
    CONTAINER_CPU_SECONDS,
    CONTAINER_FIGURES,
    CONTAINER_LABELS,
    CONTAINER_MEMORY_LIMIT,
    CONTAINER_NETWORK_COUNTERS,
    NODE_CPU_SECONDS,
    NODE_CPUS,
    NODE_FIGURES,
    SAMPLE_TIMESTAMP,
)

ERROR_KINDS = ("vanished", "parse", "node", "engine", "overrun", "internal")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format written here
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc/stat's unit (USER_HZ)

# the value of each figure of the metric set (sgcommon.metricset) in a container's sample
_CONTAINER_VALUES: dict[str, Callable[[ContainerSample], float]] = {
    "cpu": lambda s: s.cpu_percent,
    "mem": lambda s: s.memory_percent,
    "mem_mb": lambda s: s.memory_bytes,  # exposed in bytes (the figure's scale makes MiB)
    "net": lambda s: s.network_percent,
    "net_rx": lambda s: s.rx_mbps,
    "net_tx": lambda s: s.tx_mbps,
}
_RX_B, _TX_B, _RX_P, _TX_P = CONTAINER_NETWORK_COUNTERS

# (family name, type, help, value): counters are named without `_total`, which the exposition adds
CONTAINER_SERIES: tuple[tuple[str, str, str, Callable[[ContainerSample], float]], ...] = (
    *((f.exposition, "gauge", f.help, _CONTAINER_VALUES[f.key]) for f in CONTAINER_FIGURES),
    (SAMPLE_TIMESTAMP, "gauge", "Unix time the container's figures were read.", lambda s: s.ts),
    (CONTAINER_CPU_SECONDS, "counter", "CPU time used by the container, seconds (cgroup cpuacct.usage or cpu.stat usage_usec).",
     lambda s: s.cpu_ns / 1e9),
    (CONTAINER_CPU_LIMIT, "gauge", "CPUs cpu_percent is a share of: the container's CPU limit, else the node's online CPUs.",
     lambda s: s.cpu_limit_cores),
    (CONTAINER_MEMORY_LIMIT, "gauge", "Bytes memory_percent is a share of: the container's memory limit, else node MemTotal.",
     lambda s: s.memory_limit_bytes),
    (_RX_B, "counter", "Bytes received by the container's network namespace (all interfaces but lo).", lambda s: s.net.rx_bytes),
    (_TX_B, "counter", "Bytes sent by the container's network namespace (all interfaces but lo).", lambda s: s.net.tx_bytes),
    (_RX_P, "counter", "Packets received by the container's network namespace.", lambda s: s.net.rx_packets),
    (_TX_P, "counter", "Packets sent by the container's network namespace.", lambda s: s.net.tx_packets),
)

_NODE_VALUES: dict[str, Callable[[NodeSample], float]] = {
    "cpu": lambda n: n.cpu_percent,
    "mem": lambda n: n.memory_percent,
    "net": lambda n: n.network_percent,
}
NODE_SERIES: tuple[tuple[str, str, str, Callable[[NodeSample], float]], ...] = (
    *((f.exposition, "gauge", f.help, _NODE_VALUES[f.key]) for f in NODE_FIGURES),
    ("swarmguard_node_network_receive_mbps", "gauge", "Received on NET_IFACE, Mbit/s.", lambda n: n.rx_mbps),
    ("swarmguard_node_network_transmit_mbps", "gauge", "Sent on NET_IFACE, Mbit/s.", lambda n: n.tx_mbps),
    (NODE_CPUS, "gauge", "Online CPUs of the node (cpuN lines of /proc/stat).", lambda n: n.cpu.online if n.cpu else 0),
)
NODE_CPU_HELP = "CPU time of the node by mode, summed over its CPUs, seconds (/proc/stat)."


def container_labels(node: str, meta: LocalContainer) -> dict[str, str]:
    values = {"node": node, "service": meta.service, "container_id": meta.id, "task_id": meta.task_id,
              "name": meta.name, "image": meta.image}
    return {name: values[name] for name in CONTAINER_LABELS}


def node_cpu_seconds(n: NodeSample) -> list[tuple[str, float]]:
    """(mode, seconds) of the node's cumulative CPU time; empty when the sample has no times."""
    if n.cpu is None or not n.cpu.modes:
        return []
    return [(mode, jiffies / CLK_TCK) for mode, jiffies in zip(CPU_MODES, n.cpu.modes, strict=True)]


# --- the text format, written directly --------------------------------------------------------


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as Prometheus' text format reads it (Go's ParseFloat syntax)."""
    v = float(value)
    if math.isfinite(v):
        return repr(v)
    if v != v:
        return "NaN"
    return "+Inf" if v > 0 else "-Inf"


def _header(name: str, kind: str, text: str) -> tuple[str, str]:
    """The sample name and the HELP/TYPE lines of a family (counters get `_total`)."""
    sample = f"{name}_total" if kind == "counter" else name
    return sample, f"# HELP {sample} {_escape_help(text)}\n# TYPE {sample} {kind}\n"


_CONTAINER_HEADERS = tuple((*_header(name, kind, text), value) for name, kind, text, value in CONTAINER_SERIES)
_NODE_HEADERS = tuple((*_header(name, kind, text), value) for name, kind, text, value in NODE_SERIES)
_NODE_CPU_SAMPLE, _NODE_CPU_HEADER = _header(NODE_CPU_SECONDS, "counter", NODE_CPU_HELP)


class SweepText:
    """Renders a sweep as text format 0.0.4; thread-safe, each sweep rendered once."""

    def __init__(self) -> None:
        self._labels: dict[tuple[str, LocalContainer], str] = {}
        self._last: tuple[Sweep | None, bytes] | None = None
        self._lock = threading.Lock()

    def render(self, sweep: Sweep | None) -> bytes:
        last = self._last
        if last is not None and last[0] is sweep:
            return last[1]
        with self._lock:
            body = self._render(sweep)
            self._last = (sweep, body)
        return body

    def _label_text(self, node: str, meta: LocalContainer, cache: dict[tuple[str, LocalContainer], str]) -> str:
        key = (node, meta)
        text = self._labels.get(key)
        if text is None:
            pairs = sorted(container_labels(node, meta).items())
            text = "{" + ",".join(f'{k}="{_escape_value(v)}"' for k, v in pairs) + "}"
        cache[key] = text
        return text

    def _render(self, sweep: Sweep | None) -> bytes:
        samples = sweep.containers if sweep is not None else ()
        cache: dict[tuple[str, LocalContainer], str] = {}
        rows = [(self._label_text(s.node, s.meta, cache), s) for s in samples]
        self._labels = cache  # only the containers of this sweep: bounded
        out: list[str] = []
        for sample_name, header, value in _CONTAINER_HEADERS:
            out.append(header)
            out.extend([f"{sample_name}{labels} {format_value(value(s))}\n" for labels, s in rows])
        node = sweep.node if sweep is not None else None
        node_label = f'{{node="{_escape_value(node.node)}"}}' if node is not None else ""
        for sample_name, header, node_value in _NODE_HEADERS:
            out.append(header)
            if node is not None:
                out.append(f"{sample_name}{node_label} {format_value(node_value(node))}\n")
        out.append(_NODE_CPU_HEADER)
        if node is not None:
            node_text = _escape_value(node.node)
            out.extend(f'{_NODE_CPU_SAMPLE}{{mode="{mode}",node="{node_text}"}} {format_value(seconds)}\n'
                       for mode, seconds in node_cpu_seconds(node))
        return "".join(out).encode("utf-8")


# --- the same series as prometheus_client families ------------------------------------------


class SweepCollector(Collector):
    """Reads `latest()` at collection time; no sweep yet means no container or node series."""

    def __init__(self, latest: Callable[[], Sweep | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        sweep = self._latest()
        samples = sweep.containers if sweep else ()
        rows = [(tuple(container_labels(s.node, s.meta).values()), s) for s in samples]
        for name, kind, text, value in CONTAINER_SERIES:
            family: Metric = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, text, labels=CONTAINER_LABELS)
            for labels, s in rows:
                family.add_metric(labels, value(s))  # type: ignore[attr-defined]
            yield family
        node = sweep.node if sweep else None
        for name, _, text, node_value in NODE_SERIES:
            gauge = GaugeMetricFamily(name, text, labels=("node",))
            if node is not None:
                gauge.add_metric((node.node,), node_value(node))
            yield gauge
        cpu = CounterMetricFamily(NODE_CPU_SECONDS, NODE_CPU_HELP, labels=("node", "mode"))
        if node is not None:
            for mode, seconds in node_cpu_seconds(node):
                cpu.add_metric((node.node, mode), seconds)
        yield cpu


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
    """Collection duration, tick lag and errors by kind, registered in the exporter's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.duration = Histogram(
            "swarmguard_exporter_collection_seconds", "Time one sweep over all containers took.",
            buckets=DURATION_BUCKETS, registry=registry,
        )
        self.tick_lag = Histogram(
            "swarmguard_exporter_tick_lag_seconds",
            "How late a sweep started after its slot on the fixed schedule (skipped slots: errors_total{kind=\"overrun\"}).",
            buckets=LAG_BUCKETS, registry=registry,
        )
        self.errors = Counter(
            "swarmguard_exporter_errors", "Errors by kind: vanished, parse, node, engine, overrun, internal.",
            labelnames=("kind",), registry=registry,
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()
