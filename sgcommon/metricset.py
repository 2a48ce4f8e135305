"""The metric set, in one place: every figure the exporter measures and the controller acts on.

Each figure has one short key (the rule language's name, the alert's field, the controller's
sample attribute), its Prometheus name on the exporter's /metrics, its InfluxDB line-protocol
field, and the factor from the exposed value to the key's unit. The exporter writes these names,
the controller's scraper and the alert decoder read them, the rule language offers the keys:
a figure added or renamed here is renamed everywhere. docs/metrics.md is the reader's view.
"""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Figure:
    key: str  # rules, alerts and the controller's samples call it this
    exposition: str  # the exporter's Prometheus metric name
    field: str  # the line-protocol field in container_metrics / node_metrics
    help: str
    scale: float = 1.0  # exposed value x scale = value in the key's unit

    def from_exposed(self, value: float) -> float:
        return value * self.scale


CONTAINER_FIGURES: tuple[Figure, ...] = (
    Figure("cpu", "swarmguard_container_cpu_percent", "cpu_percent",
           "CPU used, % of the container's CPU limit, else of the node's CPUs (0-100)."),
    Figure("mem", "swarmguard_container_memory_percent", "memory_percent",
           "Working set, % of the memory limit, else of node memory (0-100)."),
    Figure("mem_mb", "swarmguard_container_memory_bytes", "memory_mb",
           "Working set: usage minus inactive file cache, bytes (as docker stats).", scale=1 / MIB),
    Figure("net", "swarmguard_container_network_percent", "network_percent",
           "(rx+tx bits/s) as % of the node's link capacity (0-100)."),
    Figure("net_rx", "swarmguard_container_network_receive_mbps", "network_rx_mbps",
           "Received, Mbit/s over the last interval."),
    Figure("net_tx", "swarmguard_container_network_transmit_mbps", "network_tx_mbps",
           "Sent, Mbit/s over the last interval."),
)
# Rules name a node figure with the `node_` prefix (node_cpu); NodeMetrics calls it by `key`.
NODE_FIGURES: tuple[Figure, ...] = (
    Figure("cpu", "swarmguard_node_cpu_percent", "cpu_percent", "Node CPU busy, % of all its CPUs."),
    Figure("mem", "swarmguard_node_memory_percent", "memory_percent", "Node memory in use (MemTotal - MemAvailable), %."),
    Figure("net", "swarmguard_node_network_percent", "network_percent",
           "(rx+tx bits/s) on NET_IFACE as % of the link capacity."),
)
SAMPLE_TIMESTAMP = "swarmguard_container_sample_timestamp_seconds"  # when a container's figures were read

# Series in base units, for Prometheus users (docs/metrics.md shows the PromQL); counter families
# are named without `_total`, which the exposition adds.
CONTAINER_CPU_SECONDS = "swarmguard_container_cpu_seconds"  # counter: CPU time used
CONTAINER_CPU_LIMIT = "swarmguard_container_cpu_limit_cores"  # gauge: what cpu_percent is a share of
CONTAINER_MEMORY_LIMIT = "swarmguard_container_memory_limit_bytes"  # gauge: what memory_percent is a share of
CONTAINER_NETWORK_COUNTERS = (  # counters of the container's network namespace
    "swarmguard_container_network_receive_bytes",
    "swarmguard_container_network_transmit_bytes",
    "swarmguard_container_network_receive_packets",
    "swarmguard_container_network_transmit_packets",
)
NODE_CPU_SECONDS = "swarmguard_node_cpu_seconds"  # counter by `mode`, summed over the node's CPUs
NODE_CPUS = "swarmguard_node_cpus"  # gauge: online CPUs
BUILD_INFO = "swarmguard_build_info"  # gauge, always 1: labels component, version, python

CONTAINER_KEYS: tuple[str, ...] = tuple(f.key for f in CONTAINER_FIGURES)
NODE_KEYS: tuple[str, ...] = tuple(f"node_{f.key}" for f in NODE_FIGURES)
REQUIRED_KEYS = ("cpu", "mem", "net")  # a scraped container or node lacking one of these is skipped
CONTAINER_LABELS = ("node", "service", "container_id", "task_id", "name", "image")

# Two timestamps of one container closer than this are one sample: an alert carries t0 rounded to
# 0.1 ms while the exposition carries it in full, and an exporter samples far less often
# (its confirming sample comes at least tens of milliseconds after the first).
SAME_SAMPLE = 0.005
