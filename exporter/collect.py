"""One sweep: read every known container's cgroup and network counters and the node's figures.

The collector keeps, per container, its open files and its previous reading, so a sweep is a
handful of `pread` calls per container and no path lookups. A container appears in a sweep
from its second reading on (a rate needs two). Whatever cannot be read (a container that
vanished mid-read, a missing or malformed file) is counted by kind, logged once per cause,
and skipped: the sweep goes on.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter import procfs
from exporter.cgroups import ContainerCgroup, open_container
from exporter.files import FileGone, KernelFile, read_once
from exporter.sample import RawContainer, RawNode, Sweep, container_sample, node_sample
from sgcommon.engine.containers import LocalContainer
from sgcommon.jsonlog import OnceLogger, event, get_logger

log = get_logger("swarmguard.exporter.collect")

ErrorHook = Callable[[str], None]


@dataclass
class _Tracked:
    meta: LocalContainer
    cgroup: ContainerCgroup
    netdev: KernelFile
    previous: RawContainer | None = None

    def close(self) -> None:
        self.cgroup.close()
        self.netdev.close()


@dataclass(frozen=True)
class NodeLink:
    iface: str
    capacity_mbps: float
    source: str  # where the capacity came from: "speed" or "setting"


def resolve_link(*, proc_root: str, sys_root: str, net_iface: str, default_mbps: float) -> NodeLink:
    """NET_IFACE, else the default route's interface; its speed, else the configured capacity."""
    iface = net_iface
    if not iface:
        try:
            iface = procfs.default_route_iface(read_once(f"{proc_root}/1/net/route")) or ""
        except FileGone:
            iface = ""
    speed = None
    if iface:
        try:
            speed = procfs.parse_speed_mbps(read_once(f"{sys_root}/class/net/{iface}/speed"))
        except FileGone:
            speed = None
    if speed:
        return NodeLink(iface=iface, capacity_mbps=speed, source="speed")
    return NodeLink(iface=iface, capacity_mbps=default_mbps, source="setting")


class Collector:
    """Turns the current container inventory into a Sweep; not thread-safe (one loop calls it)."""

    def __init__(
        self,
        *,
        cgroup_root: str,
        proc_root: str,
        link: NodeLink,
        on_error: ErrorHook,
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cgroup_root = cgroup_root
        self._proc_root = proc_root
        self._link = link
        self._on_error = on_error
        self._clock, self._mono = clock, mono
        self._once = OnceLogger(log)
        self._tracked: dict[str, _Tracked] = {}
        self._node_files = tuple(KernelFile(f"{proc_root}/{name}") for name in ("stat", "meminfo", "1/net/dev"))
        self._node_previous: RawNode | None = None
        self._node_now: RawNode | None = None

    @property
    def link(self) -> NodeLink:
        return self._link

    def sweep(self, containers: Mapping[str, LocalContainer], node: str) -> Sweep:
        start = self._mono()
        ts = self._clock()
        node_now = self._read_node()
        node_result = None
        if node and node_now is not None and self._node_previous is not None:  # no series without a node name
            node_result = node_sample(
                node_now, self._node_previous, node=node, ts=ts, iface=self._link.iface, capacity_mbps=self._link.capacity_mbps
            )
        if node_now is not None:
            self._node_previous = node_now
        cpus = node_now.cpu.online if node_now else (os.cpu_count() or 1)
        memory = node_now.mem.total_bytes if node_now else 0
        self._forget_missing(containers)
        samples = []
        for cid, meta in containers.items():
            raw = self._read_container(cid, meta)
            tracked = self._tracked.get(cid)
            if raw is None or tracked is None:
                continue
            if tracked.previous is not None:
                samples.append(
                    container_sample(
                        tracked.meta, raw, tracked.previous,
                        node=node, ts=ts, node_cpus=cpus, node_memory=memory, capacity_mbps=self._link.capacity_mbps,
                    )
                )
            tracked.previous = raw
        return Sweep(ts=ts, duration=self._mono() - start, node=node_result, containers=tuple(samples))

    def close(self) -> None:
        for tracked in self._tracked.values():
            tracked.close()
        self._tracked.clear()
        for f in self._node_files:
            f.close()

    def _forget_missing(self, containers: Mapping[str, LocalContainer]) -> None:
        for cid in [c for c in self._tracked if c not in containers]:
            self._tracked.pop(cid).close()

    def _track(self, cid: str, meta: LocalContainer) -> _Tracked:
        tracked = self._tracked.get(cid)
        if tracked is not None and tracked.meta.pid != meta.pid:  # restarted: new namespace, new counters
            tracked.close()
            tracked = None
        if tracked is None:
            tracked = _Tracked(
                meta=meta,
                cgroup=open_container(self._cgroup_root, cid),
                netdev=KernelFile(f"{self._proc_root}/{meta.pid}/net/dev"),
            )
            self._tracked[cid] = tracked
        tracked.meta = meta
        return tracked

    def _read_container(self, cid: str, meta: LocalContainer) -> RawContainer | None:
        try:
            tracked = self._track(cid, meta)
            reading = tracked.cgroup.read()
            net = procfs.parse_net_dev(tracked.netdev.read())
        except FileGone as exc:
            self._fail(cid, "vanished", str(exc))
            return None
        except ValueError as exc:
            self._fail(cid, "parse", str(exc))
            return None
        self._once.clear(f"container:{cid}", "container readable again", container_id=cid)
        return RawContainer(mono=self._mono(), cpu_ns=reading.cpu_ns, memory_bytes=reading.memory_bytes, net=net)

    def _fail(self, cid: str, kind: str, detail: str) -> None:
        self._on_error(kind)
        dropped = self._tracked.pop(cid, None)
        if dropped is not None:
            dropped.close()
        self._once.warn(f"container:{cid}", "container unreadable, skipped", container_id=cid, kind=kind, detail=detail)

    def _read_node(self) -> RawNode | None:
        stat, meminfo, netdev = self._node_files
        try:
            cpu = procfs.parse_proc_stat(stat.read())
            mem = procfs.parse_meminfo(meminfo.read())
            net_text = netdev.read()
        except (FileGone, ValueError) as exc:
            self._on_error("node")
            self._once.warn("node", "node figures unreadable", detail=str(exc))
            return None
        if self._link.iface and not procfs.has_interface(net_text, self._link.iface):
            self._on_error("node")
            self._once.warn("node-iface", "network interface not found on the node", iface=self._link.iface)
            net = procfs.ZERO_NET
        else:
            net = procfs.parse_net_dev(net_text, only=self._link.iface or None)
        self._once.clear("node", "node figures readable again")
        return RawNode(mono=self._mono(), cpu=cpu, mem=mem, net=net)


def log_link(link: NodeLink) -> None:
    event(log, "node link", level=logging.INFO, iface=link.iface, capacity_mbps=link.capacity_mbps, source=link.source)
