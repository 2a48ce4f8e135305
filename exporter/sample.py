"""What one sweep produces, and the pure arithmetic from two raw readings to percentages.

The meaning of every figure is defined once, in docs/metrics.md:
- cpu_percent: container CPU time over wall time, as a share of its CPU limit when it has one,
  else of the node's online CPUs (0-100; `docker stats` would show up to 100 x CPUs);
- memory_percent: working set over the memory limit, else over node memory;
- network_percent: (rx + tx bits/s) over the link capacity in bits/s.

The arithmetic never raises: readings are bounded 64-bit counters (exporter.kerneltext), a
zero or negative interval, limit or capacity gives 0, and a non-finite result is 0.
"""
from __future__ import annotations

import math
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
    cpu_ns: int = 0  # cumulative CPU time of the container (the counter behind cpu_percent)
    cpu_limit_cores: float = 0.0  # what cpu_percent is a share of: the CPU limit, else the node's CPUs
    memory_limit_bytes: int = 0  # what memory_percent is a share of: the memory limit, else node memory

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
    cpu: CpuTimes | None = None  # cumulative jiffies per mode, for the seconds counters


@dataclass(frozen=True)
class Sweep:
    """The latest complete view: what /metrics, InfluxDB and alerts are made from."""

    ts: float
    duration: float  # seconds the sweep took
    node: NodeSample | None
    containers: tuple[ContainerSample, ...]


def clamp_percent(value: float) -> float:
    """0-100; NaN (from a broken input) is 0."""
    return min(max(value, 0.0), 100.0) if value == value else 0.0


def ratio(num: float, den: float) -> float:
    """num / den, or 0.0 when den is not a positive finite number or the result would not be finite."""
    try:
        if not den > 0 or not math.isfinite(den):
            return 0.0
        result = num / den
    except (OverflowError, ZeroDivisionError):
        return 0.0
    return result if math.isfinite(result) else 0.0


def _rate(now: int, before: int, seconds: float) -> float:
    """Per-second rate of a counter; a counter that went backwards (restart) counts as 0."""
    return ratio(max(now - before, 0), seconds)


def mbps(bytes_per_second: float) -> float:
    return bytes_per_second * 8 / 1e6


def network_figures(now: NetCounters, before: NetCounters, seconds: float, capacity_mbps: float) -> tuple[float, float, float]:
    """(rx Mbit/s, tx Mbit/s, percent of capacity)."""
    rx = mbps(_rate(now.rx_bytes, before.rx_bytes, seconds))
    tx = mbps(_rate(now.tx_bytes, before.tx_bytes, seconds))
    return rx, tx, clamp_percent(100.0 * ratio(rx + tx, capacity_mbps))


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
    limit = meta.cpu_limit
    cpus = limit if limit is not None and limit > 0 and math.isfinite(limit) else float(max(node_cpus, 1))
    cpu = 100.0 * ratio(_rate(now.cpu_ns, before.cpu_ns, seconds) / 1e9, cpus)
    mem_limit = meta.memory_limit if meta.memory_limit is not None and meta.memory_limit > 0 else max(node_memory, 0)
    rx, tx, net_pct = network_figures(now.net, before.net, seconds, capacity_mbps)
    return ContainerSample(
        meta=meta,
        node=node,
        ts=ts,
        cpu_percent=clamp_percent(cpu),
        cpu_ns=now.cpu_ns,
        cpu_limit_cores=cpus,
        memory_bytes=now.memory_bytes,
        memory_limit_bytes=mem_limit,
        memory_percent=clamp_percent(100.0 * ratio(now.memory_bytes, mem_limit)),
        net=now.net,
        rx_mbps=rx,
        tx_mbps=tx,
        network_percent=net_pct,
    )


def node_sample(now: RawNode, before: RawNode, *, node: str, ts: float, iface: str, capacity_mbps: float) -> NodeSample:
    total = now.cpu.total - before.cpu.total
    idle = now.cpu.idle - before.cpu.idle
    cpu = 100.0 * ratio(total - idle, total)
    mem = now.mem
    used = 100.0 * ratio(mem.total_bytes - mem.available_bytes, mem.total_bytes)
    rx, tx, net_pct = network_figures(now.net, before.net, now.mono - before.mono, capacity_mbps)
    return NodeSample(
        node=node,
        ts=ts,
        iface=iface,
        cpu_percent=clamp_percent(cpu),
        cpu=now.cpu,
        memory_percent=clamp_percent(used),
        net=now.net,
        rx_mbps=rx,
        tx_mbps=tx,
        network_percent=net_pct,
    )
