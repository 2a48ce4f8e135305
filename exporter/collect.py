"""One sweep: read every known container's cgroup and network counters and the node's figures.

The collector keeps, per container, its open files and its previous reading, so a sweep is a
handful of `pread` calls per container and no path lookups. A container appears in a sweep
from its second reading on (a rate needs two). Whatever cannot be read costs only that
container's sample (or only the node figures): a container that vanished mid-read or a missing
file is `vanished`, malformed content (non-numeric, negative, huge, short lines, missing fields,
junk) is `parse`, anything else is `internal`; each is counted on every tick and logged once per
container and kind (once per kind for the node), and the sweep goes on.
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
from exporter.sample import ContainerSample, RawContainer, RawNode, Sweep, container_sample, node_sample
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
        except (FileGone, ValueError):
            iface = ""
    speed = None
    if iface:
        try:
            speed = procfs.parse_speed_mbps(read_once(f"{sys_root}/class/net/{iface}/speed"))
        except (FileGone, ValueError):
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
        self._logged: dict[str, set[str]] = {}  # container id -> kinds of failure already logged
        self._recovered: set[str] = set()  # containers whose recovery was logged
        self._tracked: dict[str, _Tracked] = {}
        self._node_files = tuple(KernelFile(f"{proc_root}/{name}") for name in ("stat", "meminfo", "1/net/dev"))
        self._node_previous: RawNode | None = None
        self._logged_node: set[str] = set()
        self._cpus, self._memory = os.cpu_count() or 1, 0
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
            try:
                node_result = node_sample(node_now, self._node_previous, node=node, ts=ts, iface=self._link.iface,
                                          capacity_mbps=self._link.capacity_mbps)
            except Exception as exc:  # sample.py never raises by design; should it, only the node figures pay
                self._node_failed("node", "node figures unreadable", detail=f"{type(exc).__name__}: {exc}"[:300])
        basis = node_now or self._node_previous  # while /proc is unreadable, the last good figures
        if node_now is not None:
            self._node_previous = node_now
        self._cpus = basis.cpu.online if basis else (os.cpu_count() or 1)
        self._memory = basis.mem.total_bytes if basis else 0
        self._forget_missing(containers)
        samples = []
        for cid, meta in containers.items():
            raw = self._read_container(cid, meta)
            tracked = self._tracked.get(cid)
            if raw is None or tracked is None:
                continue
            if tracked.previous is not None:
                sample = self._sample(cid, tracked, raw, tracked.previous, node=node, ts=ts)
                if sample is not None:
                    samples.append(sample)
            tracked.previous = raw
        return Sweep(ts=ts, duration=self._mono() - start, node=node_result, containers=tuple(samples))

    def confirm(self, cid: str, node: str) -> ContainerSample | None:
        """A fresh reading of one tracked container, as a sample over the time since its last sweep.

        The sweep's cadence is untouched: the next sweep's rate is still taken from the sweep's
        own previous reading. None when the container is not tracked or cannot be read now.
        """
        tracked = self._tracked.get(cid)
        if tracked is None or tracked.previous is None:
            return None
        ts = self._clock()
        raw = self._read_container(cid, tracked.meta)
        tracked = self._tracked.get(cid)
        if raw is None or tracked is None or tracked.previous is None:
            return None
        return self._sample(cid, tracked, raw, tracked.previous, node=node, ts=ts)

    def _sample(self, cid: str, tracked: _Tracked, raw: RawContainer, before: RawContainer, *, node: str,
                ts: float) -> ContainerSample | None:
        try:
            return container_sample(tracked.meta, raw, before, node=node, ts=ts, node_cpus=self._cpus,
                                    node_memory=self._memory, capacity_mbps=self._link.capacity_mbps)
        except Exception as exc:  # sample.py never raises by design; should it, only this container pays
            self._fail(cid, "internal", f"{type(exc).__name__}: {exc}")
            return None

    def close(self) -> None:
        for tracked in self._tracked.values():
            tracked.close()
        self._tracked.clear()
        for f in self._node_files:
            f.close()

    def _forget_missing(self, containers: Mapping[str, LocalContainer]) -> None:
        for cid in [c for c in self._tracked if c not in containers]:
            self._tracked.pop(cid).close()
        for cid in [c for c in self._logged if c not in containers]:
            del self._logged[cid]
            self._recovered.discard(cid)

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
        except (ValueError, ArithmeticError) as exc:
            self._fail(cid, "parse", str(exc))
            return None
        except Exception as exc:  # never seen; one container's bug must not cost the sweep
            self._fail(cid, "internal", f"{type(exc).__name__}: {exc}")
            return None
        if cid in self._logged and cid not in self._recovered:
            self._recovered.add(cid)
            event(log, "container readable again", container_id=cid)
        return RawContainer(mono=self._mono(), cpu_ns=reading.cpu_ns, memory_bytes=reading.memory_bytes, net=net)

    def _fail(self, cid: str, kind: str, detail: str) -> None:
        """Counts every time; logs once per container and kind while the container is listed
        (and its first recovery), so a flapping file does not log every tick."""
        self._on_error(kind)
        dropped = self._tracked.pop(cid, None)
        if dropped is not None:
            dropped.close()
        kinds = self._logged.setdefault(cid, set())
        if kind not in kinds:
            kinds.add(kind)
            event(log, "container unreadable, skipped", level=logging.WARNING, container_id=cid, kind=kind,
                  detail=detail[:300])

    def _read_node(self) -> RawNode | None:
        stat, meminfo, netdev = self._node_files
        try:
            cpu = procfs.parse_proc_stat(stat.read())
            mem = procfs.parse_meminfo(meminfo.read())
            net_text = netdev.read()
            has_iface = not self._link.iface or procfs.has_interface(net_text, self._link.iface)
            net = procfs.parse_net_dev(net_text, only=self._link.iface or None) if has_iface else procfs.ZERO_NET
        except (FileGone, ValueError, ArithmeticError) as exc:
            self._node_failed("node", "node figures unreadable", detail=str(exc)[:300])
            return None
        except Exception as exc:  # never seen; it must cost the node figures only
            self._node_failed("node", "node figures unreadable", detail=f"{type(exc).__name__}: {exc}"[:300])
            return None
        if not has_iface:
            self._node_failed("node-iface", "network interface not found on the node", iface=self._link.iface)
        self._once.clear("node", "node figures readable again")
        return RawNode(mono=self._mono(), cpu=cpu, mem=mem, net=net)

    def _node_failed(self, key: str, msg: str, **fields: str) -> None:
        self._on_error("node")
        if key not in self._logged_node:
            self._logged_node.add(key)
            self._once.warn(key, msg, **fields)


def log_link(link: NodeLink) -> None:
    event(log, "node link", level=logging.INFO, iface=link.iface, capacity_mbps=link.capacity_mbps, source=link.source)
