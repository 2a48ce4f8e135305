"""How much CPU and memory the container may use, from its cgroup (v1 or v2).

Inside a container the cgroup mount shows the container's own directory at its root; on a
host the process's own cgroup path (from /proc/self/cgroup) leads to it. Both are tried,
the process's own path first.
"""
from __future__ import annotations

import math
from pathlib import Path

from stressapp import procfs

# cgroup v1 writes "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX * page size).
_V1_UNLIMITED = 2**62


def _candidates(cgroup_root: str, proc_root: str, controller: str, name: str) -> list[Path]:
    root = Path(cgroup_root)
    try:
        paths = procfs.cgroup_paths(proc_root)
    except (OSError, ValueError):
        paths = {}
    if (root / "cgroup.controllers").exists():  # unified hierarchy (v2) mounted at the root
        own = paths.get("", "/").lstrip("/")
        return [root / own / name, root / name]
    dirs = [d for d in (root / controller, root / f"{controller},cpuacct", root / f"cpuacct,{controller}") if d.is_dir()]
    own = paths.get(controller, "/").lstrip("/")
    return [d / own / name for d in dirs] + [d / name for d in dirs]


def _first_text(paths: list[Path]) -> str | None:
    for path in paths:
        try:
            return path.read_text().strip()
        except OSError:
            continue
    return None


def cpu_quota_cores(*, cgroup_root: str, proc_root: str) -> float | None:
    """The CFS quota in cores (v1 cfs_quota_us / cfs_period_us, v2 cpu.max), None when unlimited."""
    v2 = _first_text(_candidates(cgroup_root, proc_root, "cpu", "cpu.max")) if (Path(cgroup_root) / "cgroup.controllers").exists() else None
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota_text = _first_text(_candidates(cgroup_root, proc_root, "cpu", "cpu.cfs_quota_us"))
    period_text = _first_text(_candidates(cgroup_root, proc_root, "cpu", "cpu.cfs_period_us"))
    if quota_text is None or period_text is None or int(quota_text) <= 0:
        return None
    return int(quota_text) / int(period_text)


def cpu_capacity(*, cgroup_root: str, proc_root: str, online_cpus: int) -> float:
    """Cores the container may use: its quota when set, never more than the CPUs it can run on."""
    quota = cpu_quota_cores(cgroup_root=cgroup_root, proc_root=proc_root)
    return float(online_cpus) if quota is None else min(quota, float(online_cpus))


def memory_limit_bytes(*, cgroup_root: str, proc_root: str) -> int | None:
    """The memory limit (v1 memory.limit_in_bytes, v2 memory.max), None when unlimited."""
    if (Path(cgroup_root) / "cgroup.controllers").exists():
        text = _first_text(_candidates(cgroup_root, proc_root, "memory", "memory.max"))
        return None if text in (None, "max") else int(text)
    text = _first_text(_candidates(cgroup_root, proc_root, "memory", "memory.limit_in_bytes"))
    if text is None or int(text) >= _V1_UNLIMITED:
        return None
    return int(text)


def workers_for(capacity: float) -> int:
    """One busy-loop process per (possibly partial) core of capacity."""
    return max(1, math.ceil(capacity - 1e-9))
