"""Parsers for the /proc and /sys files the exporter reads, as pure functions of their text.

Network counters are per network namespace, not per cgroup
(https://man7.org/linux/man-pages/man7/network_namespaces.7.html): a container's traffic is
`<proc>/<main pid>/net/dev`, the node's is `<proc>/1/net/dev` (pid 1 lives in the host's
namespace, also when the exporter itself runs in a container with the host's /proc mounted
at /host/proc; `/proc/net` would be the exporter's own namespace there).
"""
from __future__ import annotations

from dataclasses import dataclass

from exporter.kerneltext import counter, signed


@dataclass(frozen=True)
class NetCounters:
    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int


ZERO_NET = NetCounters(0, 0, 0, 0)


def parse_net_dev(text: str, *, only: str | None = None) -> NetCounters:
    """Sums the counters of every interface but `lo` (or of the single interface `only`)."""
    rx_b = rx_p = tx_b = tx_p = 0
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        if (only is not None and name != only) or (only is None and name == "lo"):
            continue
        cols = rest.split()
        if len(cols) < 10:
            raise ValueError(f"net/dev: interface {name[:20]!r}: expected 16 columns, got {len(cols)}")
        where = f"net/dev: interface {name[:20]!r}"
        rx_b += counter(cols[0], where)
        rx_p += counter(cols[1], where)
        tx_b += counter(cols[8], where)
        tx_p += counter(cols[9], where)
    return NetCounters(rx_bytes=rx_b, rx_packets=rx_p, tx_bytes=tx_b, tx_packets=tx_p)


def has_interface(text: str, iface: str) -> bool:
    return any(line.partition(":")[0].strip() == iface for line in text.splitlines()[2:] if ":" in line)


# The first eight columns of /proc/stat's cpu lines (guest time is already counted in user).
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuTimes:
    total: int  # jiffies summed over all states
    idle: int  # idle + iowait
    online: int  # number of cpuN lines: the CPUs the node has online
    modes: tuple[int, ...] = ()  # jiffies per CPU_MODES entry, summed over all CPUs (missing ones 0)


def parse_proc_stat(text: str) -> CpuTimes:
    modes: tuple[int, ...] | None = None
    online = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            cols = line.split()[1:9]
            if len(cols) < 4:  # user nice system idle are in every kernel since 2.4
                raise ValueError(f"stat: the cpu line has {len(cols)} columns, expected at least 4")
            values = [counter(v, "stat: cpu line") for v in cols]
            modes = tuple(values) + (0,) * (len(CPU_MODES) - len(values))
        elif line.startswith("cpu") and line[3:4].isdigit():
            online += 1
    if modes is None:
        raise ValueError("stat: no aggregate 'cpu' line")
    return CpuTimes(total=sum(modes), idle=modes[3] + modes[4], online=max(online, 1), modes=modes)


@dataclass(frozen=True)
class MemInfo:
    total_bytes: int
    available_bytes: int


def parse_meminfo(text: str) -> MemInfo:
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached"):
            cols = rest.split()
            if not cols:
                raise ValueError(f"meminfo: {name} has no value")
            values[name] = counter(cols[0], f"meminfo: {name}") * 1024
    if "MemTotal" not in values:
        raise ValueError("meminfo: no MemTotal line")
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = values.get("MemFree", 0) + values.get("Buffers", 0) + values.get("Cached", 0)
    return MemInfo(total_bytes=values["MemTotal"], available_bytes=available)


def default_route_iface(route_text: str) -> str | None:
    """The interface of the default route in /proc/<pid>/net/route, lowest metric first."""
    best: tuple[int, str] | None = None
    for line in route_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 8 and cols[1] == "00000000" and cols[7] == "00000000":
            try:
                metric = counter(cols[6], "net/route: metric")
            except ValueError:
                continue  # a malformed row is no default route
            if best is None or metric < best[0]:
                best = (metric, cols[0])
    return best[1] if best else None


def parse_speed_mbps(text: str) -> float | None:
    """`/sys/class/net/<iface>/speed`: Mbit/s, or None when unknown (-1, virtual links)."""
    try:
        speed = signed(text, "speed")
    except ValueError:
        return None
    return float(speed) if speed > 0 else None
