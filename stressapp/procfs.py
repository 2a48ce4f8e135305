"""Reads a process tree's CPU time, memory and children from procfs.

The root is a parameter so tests can point it at a fake tree; every reader takes a pid
(an int, or "self") and returns plain numbers.
"""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc(proc_root: str, pid: int | str) -> Path:
    return Path(proc_root) / str(pid)


def cpu_seconds(proc_root: str, pid: int | str, *, reaped_children: bool = True) -> float:
    """utime + stime of `pid` (plus its waited-for children's, unless told not to), in seconds."""
    text = (_proc(proc_root, pid) / "stat").read_text()
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17.
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children(proc_root: str, pid: int | str) -> list[int]:
    """The direct children of every thread of `pid` (empty if the process is gone)."""
    found: list[int] = []
    try:
        tasks = list((_proc(proc_root, pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def descendants(proc_root: str, pid: int | str) -> list[int]:
    """Every process below `pid`, breadth first."""
    found: list[int] = []
    queue = children(proc_root, pid)
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(children(proc_root, child))
    return found


def tree_cpu_seconds(proc_root: str, pid: int | str) -> float:
    """CPU time of `pid`, its reaped children and its live descendants; a child gone mid-read counts 0."""
    total = cpu_seconds(proc_root, pid)
    for child in descendants(proc_root, pid):
        try:
            total += cpu_seconds(proc_root, child, reaped_children=False)
        except (OSError, ValueError):
            continue
    return total


def status_kib(proc_root: str, pid: int | str, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, RssAnon...), 0 when absent (kernel threads)."""
    for line in (_proc(proc_root, pid) / "status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return 0


def tree_rss_bytes(proc_root: str, pid: int | str) -> int:
    """Resident memory of `pid` plus the anonymous resident memory of its live descendants.

    Children count only RssAnon: their interpreter's file pages are shared with the parent.
    """
    total = status_kib(proc_root, pid, "VmRSS")
    for child in descendants(proc_root, pid):
        try:
            total += status_kib(proc_root, child, "RssAnon")
        except (OSError, ValueError):
            continue
    return total * 1024


def mem_total_bytes(proc_root: str) -> int:
    for line in (Path(proc_root) / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"{proc_root}/meminfo: no MemTotal line")


def cgroup_paths(proc_root: str, pid: int | str = "self") -> dict[str, str]:
    """Controller -> cgroup path of `pid`; the cgroup v2 entry has the key ""."""
    paths: dict[str, str] = {}
    for line in (_proc(proc_root, pid) / "cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths
