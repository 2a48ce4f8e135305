"""The stress app's parts wired together: one runner per kind, the meter, the traffic sink.

Kept apart from the HTTP layer so the server, the demo and the tests share one object with a
clear lifecycle: build it, use it, `close()` it (which stops every stress).
"""
from __future__ import annotations

import os
import time

from sgcommon.jsonlog import event, get_logger
from stressapp import cgroup, procfs
from stressapp.cpu import CpuActuator
from stressapp.memory import MB, MemoryActuator
from stressapp.meter import Meter, MeterThread, Sample
from stressapp.network import ByteCounters, NetworkActuator, Sink, parse_peer
from stressapp.ramp import Plan
from stressapp.runner import StressRunner
from stressapp.settings import StressSettings
from stressapp.validation import Limits

log = get_logger("swarmguard.stressapp.core")

KINDS = ("cpu", "memory", "network", "leak")
LEAK_CHUNK_BYTES = MB  # a leak grows smoothly: 1 MB pieces (memory stress ramps in 10 MB chunks)


class StressCore:
    """Owns every stress runner and the figures; thread-safe."""

    def __init__(self, settings: StressSettings) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.pid = os.getpid()
        peer = parse_peer(settings.network_peer) if settings.network_peer else None
        roots = {"cgroup_root": settings.cgroup_root, "proc_root": settings.proc_root}
        self.capacity = cgroup.cpu_capacity(**roots, online_cpus=len(os.sched_getaffinity(0)))
        self.memory_limit = cgroup.memory_limit_bytes(**roots)
        self.counters = ByteCounters()
        self.sink = Sink(settings.host, settings.sink_port, self.counters).start()
        self.peer = peer or ("127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host, self.sink.address[1])
        self._memory = MemoryActuator()
        self._leak = MemoryActuator(chunk_bytes=LEAK_CHUNK_BYTES)
        self.runners = {
            "cpu": StressRunner("cpu", CpuActuator(self.capacity, cgroup.workers_for(self.capacity))),
            "memory": StressRunner("memory", self._memory),
            "network": StressRunner("network", NetworkActuator(self.peer, self.counters)),
            "leak": StressRunner("leak", self._leak),
        }
        memory_base = self.memory_limit or procfs.mem_total_bytes(settings.proc_root)
        self.meter = Meter(self._sample, capacity_cores=self.capacity, memory_limit_bytes=memory_base)
        self._meter_thread = MeterThread(self.meter, settings.sample_interval).start()
        event(log, "stress app ready", cpu_capacity=self.capacity, memory_limit=self.memory_limit,
              network_peer=f"{self.peer[0]}:{self.peer[1]}", sink_port=self.sink.address[1])

    def _sample(self) -> Sample:
        received, sent = self.counters.totals()
        root = self.settings.proc_root
        return Sample(procfs.tree_cpu_seconds(root, self.pid), procfs.tree_rss_bytes(root, self.pid), received, sent)

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def limits(self) -> Limits:
        """What a request may ask for now: memory is capped by the container limit minus what is in use."""
        settings = self.settings
        max_memory, reason = settings.max_memory_mb, "the configured maximum"
        if self.memory_limit is not None:
            # Memory held by a running memory stress or leak does not count: a new one replaces it.
            in_use = procfs.tree_rss_bytes(settings.proc_root, self.pid) - self._memory.held_bytes - self._leak.held_bytes
            headroom = (self.memory_limit - in_use) / MB
            if headroom < max_memory:
                max_memory = max(0.0, headroom)
                reason = f"the container's memory limit of {self.memory_limit / MB:.0f} MB minus {in_use / MB:.0f} MB in use"
        return Limits(settings.max_duration, max_memory, settings.max_bandwidth_mbps, memory_reason=reason)

    def start(self, plans: dict[str, Plan]) -> None:
        for kind, plan in plans.items():
            self.runners[kind].start(plan)

    def active(self) -> list[str]:
        return [kind for kind in KINDS if self.runners[kind].active]

    def stop_all(self) -> list[str]:
        return [kind for kind in KINDS if self.runners[kind].stop()]

    def close(self) -> None:
        stopped = self.stop_all()
        self._meter_thread.close()
        self.sink.close()
        event(log, "stress app closed", stopped=stopped)
