"""Fake host trees for the exporter: cgroup (v1 and v2 layouts), /proc and /sys, built per test.

Files are rewritten in place (same inode), as the kernel does, so the exporter's open
descriptors see new values exactly as they would on a real host.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sgcommon.engine.containers import LocalContainer

NET_DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
)
LAYOUTS = ("v1", "v1-combined", "v1-systemd", "v2", "v2-docker")


def net_dev(**ifaces: tuple[int, int, int, int]) -> str:
    """net/dev text; each interface given as (rx_bytes, rx_packets, tx_bytes, tx_packets)."""
    rows = [
        f"{name:>6}: {rb} {rp} 0 0 0 0 0 0 {tb} {tp} 0 0 0 0 0 0\n" for name, (rb, rp, tb, tp) in ifaces.items()
    ]
    return NET_DEV_HEADER + "".join(rows)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii") as fh:  # in place: open descriptors see the change
        fh.write(text)


@dataclass
class FakeHost:
    root: Path
    layout: str = "v1"

    @property
    def cgroup_root(self) -> str:
        return str(self.root / "cgroup")

    @property
    def proc_root(self) -> str:
        return str(self.root / "proc")

    @property
    def sys_root(self) -> str:
        return str(self.root / "sys")

    def __post_init__(self) -> None:
        if self.layout.startswith("v2"):
            write(self.root / "cgroup" / "cgroup.controllers", "cpu memory io pids\n")
        self.set_node(cpu=(1000, 800, 0), cpus=2, mem_total_kib=4_000_000, mem_available_kib=3_000_000)
        self.set_node_net(eth0=(0, 0, 0, 0))
        write(self.root / "proc" / "1" / "net" / "route",
              "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
              "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
              "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")

    def _dirs(self, cid: str) -> tuple[Path, Path]:
        cg = self.root / "cgroup"
        return {
            "v1": (cg / "cpuacct" / "docker" / cid, cg / "memory" / "docker" / cid),
            "v1-combined": (cg / "cpu,cpuacct" / "docker" / cid, cg / "memory" / "docker" / cid),
            "v1-systemd": (cg / "cpuacct" / "system.slice" / f"docker-{cid}.scope", cg / "memory" / "system.slice" / f"docker-{cid}.scope"),
            "v2": (cg / "system.slice" / f"docker-{cid}.scope",) * 2,
            "v2-docker": (cg / "docker" / cid,) * 2,
        }[self.layout]  # type: ignore[return-value]

    def add_container(self, cid: str, *, pid: int, cpu_ns: int = 0, usage: int = 0, inactive: int = 0,
                      net: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        self.set_cpu(cid, cpu_ns)
        self.set_memory(cid, usage=usage, inactive=inactive)
        self.set_net(pid, net)

    def set_cpu(self, cid: str, ns: int) -> None:
        cpu_dir, _ = self._dirs(cid)
        if self.layout.startswith("v2"):
            write(cpu_dir / "cpu.stat", f"usage_usec {ns // 1000}\nuser_usec 0\nsystem_usec 0\n")
        else:
            write(cpu_dir / "cpuacct.usage", f"{ns}\n")

    def set_memory(self, cid: str, *, usage: int, inactive: int) -> None:
        _, mem_dir = self._dirs(cid)
        if self.layout.startswith("v2"):
            write(mem_dir / "memory.current", f"{usage}\n")
            write(mem_dir / "memory.stat", f"anon {usage - inactive}\nfile {inactive}\nactive_file 0\ninactive_file {inactive}\n")
        else:
            write(mem_dir / "memory.usage_in_bytes", f"{usage}\n")
            write(mem_dir / "memory.stat",
                  f"cache {inactive}\nrss 1\ninactive_file 7\ntotal_cache {inactive}\ntotal_inactive_file {inactive}\n")

    def remove_container(self, cid: str) -> None:
        """Like rmdir of a cgroup: reads through descriptors still open fail (here: read nothing)."""
        for d in set(self._dirs(cid)):
            for f in d.iterdir():
                write(f, "")
                f.unlink()
            d.rmdir()

    def set_net(self, pid: int, counters: tuple[int, int, int, int], *, lo: tuple[int, int, int, int] = (999, 9, 999, 9)) -> None:
        write(self.root / "proc" / str(pid) / "net" / "dev", net_dev(lo=lo, eth0=counters))

    def set_node(self, *, cpu: tuple[int, int, int], cpus: int, mem_total_kib: int, mem_available_kib: int) -> None:
        """cpu = (user, idle, iowait) jiffies of the aggregate line."""
        user, idle, iowait = cpu
        lines = [f"cpu  {user} 0 0 {idle} {iowait} 0 0 0 0 0\n"]
        lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0\n" for i in range(cpus)]
        write(self.root / "proc" / "stat", "".join(lines) + "intr 0\nctxt 0\n")
        write(self.root / "proc" / "meminfo",
              f"MemTotal:       {mem_total_kib} kB\nMemFree:          1000 kB\nMemAvailable:   {mem_available_kib} kB\n")

    def set_node_net(self, **ifaces: tuple[int, int, int, int]) -> None:
        write(self.root / "proc" / "1" / "net" / "dev", net_dev(lo=(5, 5, 5, 5), **ifaces))

    def set_speed(self, iface: str, text: str) -> None:
        write(self.root / "sys" / "class" / "net" / iface / "speed", text)


@pytest.fixture(params=LAYOUTS)
def any_host(request: pytest.FixtureRequest, tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path, request.param)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path, "v1")


class FakeClock:
    """Both clocks the collector takes: wall (Unix) and monotonic, advanced by hand."""

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 100.0) -> None:
        self.wall, self.mono_now = wall, mono

    def time(self) -> float:
        return self.wall

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono_now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def container(cid: str, *, pid: int, service: str = "web", task: str = "task-1",
              cpu_limit: float | None = None, memory_limit: int | None = None,
              image: str = "10.99.0.1:5000/stressapp:latest") -> LocalContainer:
    return LocalContainer(id=cid, name=f"{service}.1.{task}", service=service, task_id=task, pid=pid,
                          cpu_limit=cpu_limit, memory_limit=memory_limit, image=image)


@pytest.fixture
def no_leaked_fds() -> Iterator[None]:
    before = set(os.listdir("/proc/self/fd"))
    yield
    leaked = set(os.listdir("/proc/self/fd")) - before
    assert not leaked, f"file descriptors left open: {sorted(leaked)}"
