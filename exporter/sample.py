"""What one sweep produces, and the pure arithmetic from two raw readings to percentages.

The meaning of every figure is defined once, in docs/metrics.md:
- cpu_percent: container CPU time over wall time, as a share of its CPU limit when it has one,
  else of the node's online CPUs (0-100; `docker stats` would show up to 100 x CPUs);
- memory_percent: working set over the memory limit, else over node memory;
- network_percent: (rx + tx bits/s) over the link capacity in bits/s.
"""
from __future__ import annotations

from dataclasses import dataclass

from exporter.procfs import CpuTimes, MemInfo, NetCounters
from sgcommon.engine.containers import LocalContainer

MIB = 1024 * 1024


@dataclass(frozen=True)
class RawContainer:
    """Counters read from cgroup and /proc at one instant (`mono`: time.monotonic())."""

    mono: float
    cpu_ns: int
    memory_bytes: int
    net: NetCounters


@dataclass(frozen=True)
class ContainerSample:
    meta: LocalContainer
    node: str
    ts: float  # Unix seconds of the reading
    cpu_percent: float
    memory_bytes: int
    memory_percent: float
    net: NetCounters
    rx_mbps: float
    tx_mbps: float
    network_percent: float

    @property
    def memory_mb(self) -> float:
        return self.memory_bytes / MIB


@dataclass(frozen=True)
class RawNode:
    mono: float
    cpu: CpuTimes
    mem: MemInfo
    net: NetCounters


@dataclass(frozen=True)
class NodeSample:
    node: str
    ts: float
    iface: str
    cpu_percent: float
    memory_percent: float
    net: NetCounters
    rx_mbps: float
    tx_mbps: float
    network_percent: float


@dataclass(frozen=True)
class Sweep:
    """The latest complete view: what /metrics, InfluxDB and alerts are made from."""

    ts: float
    duration: float  # seconds the sweep took
    node: NodeSample | None
    containers: tuple[ContainerSample, ...]


def clamp_percent(value: float) -> float:
    return min(max(value, 0.0), 100.0)


def _rate(now: int, before: int, seconds: float) -> float:
    """Per-second rate of a counter; a counter that went backwards (restart) counts as 0."""
    return max(now - before, 0) / seconds if seconds > 0 else 0.0


def mbps(bytes_per_second: float) -> float:
    return bytes_per_second * 8 / 1e6


def network_figures(now: NetCounters, before: NetCounters, seconds: float, capacity_mbps: float) -> tuple[float, float, float]:
    """(rx Mbit/s, tx Mbit/s, percent of capacity)."""
    rx = mbps(_rate(now.rx_bytes, before.rx_bytes, seconds))
    tx = mbps(_rate(now.tx_bytes, before.tx_bytes, seconds))
    return rx, tx, clamp_percent(100.0 * (rx + tx) / capacity_mbps) if capacity_mbps > 0 else 0.0


def container_sample(
    meta: LocalContainer,
    now: RawContainer,
    before: RawContainer,
    *,
    node: str,
    ts: float,
    node_cpus: int,
    node_memory: int,
    capacity_mbps: float,
) -> ContainerSample:
    seconds = now.mono - before.mono
    cpus = meta.cpu_limit or float(node_cpus)
    cpu = 100.0 * _rate(now.cpu_ns, before.cpu_ns, seconds) / 1e9 / cpus
    mem_limit = meta.memory_limit or node_memory
    rx, tx, net_pct = network_figures(now.net, before.net, seconds, capacity_mbps)
    return ContainerSample(
        meta=meta,
        node=node,
        ts=ts,
        cpu_percent=clamp_percent(cpu),
        memory_bytes=now.memory_bytes,
        memory_percent=clamp_percent(100.0 * now.memory_bytes / mem_limit) if mem_limit else 0.0,
        net=now.net,
        rx_mbps=rx,
        tx_mbps=tx,
        network_percent=net_pct,
    )


def node_sample(now: RawNode, before: RawNode, *, node: str, ts: float, iface: str, capacity_mbps: float) -> NodeSample:
    total = now.cpu.total - before.cpu.total
    idle = now.cpu.idle - before.cpu.idle
    cpu = 100.0 * (total - idle) / total if total > 0 else 0.0
    mem = now.mem
    used = 100.0 * (mem.total_bytes - mem.available_bytes) / mem.total_bytes if mem.total_bytes else 0.0
    rx, tx, net_pct = network_figures(now.net, before.net, now.mono - before.mono, capacity_mbps)
    return NodeSample(
        node=node,
        ts=ts,
        iface=iface,
        cpu_percent=clamp_percent(cpu),
        memory_percent=clamp_percent(used),
        net=now.net,
        rx_mbps=rx,
        tx_mbps=tx,
        network_percent=net_pct,
    )
