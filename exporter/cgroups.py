"""Where a container's cgroup lives and how to read its CPU and memory from it.

cgroup v1 (Debian 12 here): controllers are mounted separately (`cpuacct/`, `memory/`) or
combined (`cpu,cpuacct/`); containers sit under `docker/<id>` (cgroupfs driver) or
`system.slice/docker-<id>.scope` (systemd driver). cgroup v2 (Ubuntu 24.04): one unified
tree with the same two container layouts. The root is a parameter so tests use fake trees
and the container reads `/host/sys/fs/cgroup`.

Figures follow `docker stats` (docs/metrics.md; the CLI's own formulas:
https://github.com/docker/cli/blob/master/cli/command/container/stats_helpers.go): CPU as cumulative nanoseconds of usage,
memory as the working set (usage minus inactive file cache).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from exporter.files import FileGone, KernelFile
from exporter.kerneltext import counter

V1_CPU_DIRS = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
V1_MEMORY_DIR = "memory"


def container_dirs(container_id: str) -> tuple[str, ...]:
    """Relative cgroup paths a Docker container may have, most common first."""
    return (f"docker/{container_id}", f"system.slice/docker-{container_id}.scope")


def is_v2(cgroup_root: str) -> bool:
    return os.path.exists(os.path.join(cgroup_root, "cgroup.controllers"))


def _stat_value(text: str, key: str, path: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return counter(value, f"{path}: {key}")
    raise ValueError(f"{path}: no {key} line")


@dataclass(frozen=True)
class CgroupReading:
    cpu_ns: int  # cumulative CPU time used by the container, nanoseconds
    memory_bytes: int  # working set: usage minus inactive file cache


class ContainerCgroup:
    """The open cgroup files of one container; `read()` returns one CgroupReading."""

    def __init__(self, cpu: KernelFile, usage: KernelFile, stat: KernelFile, *, v2: bool) -> None:
        self._cpu, self._usage, self._stat, self._v2 = cpu, usage, stat, v2

    def read(self) -> CgroupReading:
        """Raises FileGone when the cgroup vanished, ValueError when a file is malformed."""
        cpu_text = self._cpu.read()
        usage = counter(self._usage.read(), self._usage.path)
        stat = self._stat.read()
        if self._v2:
            cpu_ns = _stat_value(cpu_text, "usage_usec", self._cpu.path) * 1000
            inactive = _stat_value(stat, "inactive_file", self._stat.path)
        else:
            cpu_ns = counter(cpu_text, self._cpu.path)
            inactive = _stat_value(stat, "total_inactive_file", self._stat.path)
        return CgroupReading(cpu_ns=cpu_ns, memory_bytes=max(usage - inactive, 0))

    def close(self) -> None:
        for f in (self._cpu, self._usage, self._stat):
            f.close()


def open_container(cgroup_root: str, container_id: str) -> ContainerCgroup:
    """Finds the container's cgroup under `cgroup_root`; raises FileGone when there is none."""
    if is_v2(cgroup_root):
        for rel in container_dirs(container_id):
            base = os.path.join(cgroup_root, rel)
            if os.path.isdir(base):
                return ContainerCgroup(
                    KernelFile(f"{base}/cpu.stat"),
                    KernelFile(f"{base}/memory.current"),
                    KernelFile(f"{base}/memory.stat"),
                    v2=True,
                )
        raise FileGone(2, f"{cgroup_root}: no cgroup v2 directory for container {container_id}")
    memory = _find_v1(cgroup_root, (V1_MEMORY_DIR,), container_id)
    cpu = _find_v1(cgroup_root, V1_CPU_DIRS, container_id)
    return ContainerCgroup(
        KernelFile(f"{cpu}/cpuacct.usage"),
        KernelFile(f"{memory}/memory.usage_in_bytes"),
        KernelFile(f"{memory}/memory.stat"),
        v2=False,
    )


def _find_v1(cgroup_root: str, controllers: tuple[str, ...], container_id: str) -> str:
    for ctl in controllers:
        for rel in container_dirs(container_id):
            base = os.path.join(cgroup_root, ctl, rel)
            if os.path.isdir(base):
                return base
    raise FileGone(2, f"{cgroup_root}/{{{','.join(controllers)}}}: no cgroup v1 directory for container {container_id}")
