"""The controller's memory of recent metrics: what the rule engine sees, without any I/O.

Scrapes and alerts both feed it; the alert path asks for a `Snapshot` on every alert, so a
snapshot must be cheap. Each container's history is kept as an immutable tuple that is replaced
on every new sample (a small copy on write, on the scrape thread), so a snapshot is two shallow
dict copies under the lock and never copies a history. Everything is bounded: samples per
container, the time window, and the number of containers (the least recently seen go first).

History rows are plain tuples of floats, not ContainerMetrics objects: CPython's cycle collector
stops tracking such tuples, so 5 minutes of samples of thousands of containers do not make every
full collection walk hundreds of thousands of objects (measured: 150-260 ms pauses at 200 000
samples with objects). The snapshot turns rows back into ContainerMetrics only when the engine
reads a history.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import overload

from controller.model import ContainerMetrics, NodeMetrics, ServiceInfo, Snapshot
from sgcommon.metricset import SAME_SAMPLE


# A sample stamped further ahead of the controller's clock is refused by the inputs: it would hide
# every real sample of its container until the container is forgotten.
MAX_CLOCK_SKEW = 60.0


Row = tuple[float, float, float, float, float, float, float]  # ts, cpu, mem, mem_mb, net, net_rx, net_tx


def _row_ts(row: Row) -> float:
    return row[0]


def _row(sample: ContainerMetrics) -> Row:
    return (sample.ts, sample.cpu, sample.mem, sample.mem_mb, sample.net, sample.net_rx, sample.net_tx)


class History(Sequence[ContainerMetrics]):
    """One container's samples, oldest first, as ContainerMetrics built on access."""

    __slots__ = ("_like", "_rows")

    def __init__(self, like: ContainerMetrics, rows: tuple[Row, ...]) -> None:
        self._like = like
        self._rows = rows

    def _sample(self, row: Row) -> ContainerMetrics:
        like = self._like
        return ContainerMetrics(node=like.node, service=like.service, container_id=like.container_id,
                                task_id=like.task_id, ts=row[0], cpu=row[1], mem=row[2], mem_mb=row[3], net=row[4],
                                net_rx=row[5], net_tx=row[6])

    @overload
    def __getitem__(self, index: int) -> ContainerMetrics: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ContainerMetrics, ...]: ...

    def __getitem__(self, index: int | slice) -> ContainerMetrics | tuple[ContainerMetrics, ...]:
        if isinstance(index, slice):
            return tuple(map(self._sample, self._rows[index]))
        return self._sample(self._rows[index])

    def __len__(self) -> int:
        return len(self._rows)


class HistoryView(Mapping[str, History]):
    """Snapshot.history: per container id, its History (built when asked for)."""

    __slots__ = ("_latest", "_rows")

    def __init__(self, latest: Mapping[str, ContainerMetrics], rows: Mapping[str, tuple[Row, ...]]) -> None:
        self._latest = latest
        self._rows = rows

    def __getitem__(self, cid: str) -> History:
        return History(self._latest[cid], self._rows[cid])

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class MetricsCache:
    """Thread-safe store of recent ContainerMetrics/NodeMetrics and the known services."""

    def __init__(
        self,
        *,
        window: float = 300.0,
        max_samples: int = 600,
        max_containers: int = 20000,
        stale_after: float = 10.0,
        forget_after: float = 120.0,
    ) -> None:
        self._window = window
        self._max_samples = max_samples
        self._max_containers = max_containers
        self._stale_after = stale_after
        self._forget_after = forget_after
        self._lock = threading.Lock()
        self._history: dict[str, tuple[Row, ...]] = {}
        self._latest: dict[str, ContainerMetrics] = {}
        self._nodes: dict[str, NodeMetrics] = {}
        self._down_nodes: dict[str, float] = {}  # node -> when its exporter was first found unreachable
        self._services: Mapping[str, ServiceInfo] = {}

    def add_container(self, sample: ContainerMetrics) -> bool:
        """Adds one sample; False when it is not newer than the newest one kept (the same sample
        seen again through the other input, or an old one)."""
        with self._lock:
            return self._add(sample)

    def add_containers(self, samples: Iterable[ContainerMetrics]) -> int:
        with self._lock:
            return sum(self._add(sample) for sample in samples)

    def _add(self, sample: ContainerMetrics) -> bool:
        cid = sample.container_id
        latest = self._latest.get(cid)
        if latest is not None and sample.ts <= latest.ts + SAME_SAMPLE:
            return False
        history = self._history.get(cid, ())
        if len(history) >= self._max_samples:
            history = history[len(history) - self._max_samples + 1:]
        self._history[cid] = history + (_row(sample),)
        if latest is None and len(self._latest) >= self._max_containers:
            self._drop_least_recent()
        self._latest[cid] = sample
        return True

    def _drop_least_recent(self) -> None:
        oldest = min(self._latest.values(), key=lambda s: s.ts)
        del self._latest[oldest.container_id]
        del self._history[oldest.container_id]

    def add_nodes(self, samples: Iterable[NodeMetrics]) -> None:
        with self._lock:
            for sample in samples:
                self._nodes[sample.node] = sample

    def set_node_down(self, node: str, down: bool, *, since: float = 0.0) -> None:
        """Marks `node`'s exporter unreachable since `since`, or back.

        While it is down, its node figures and every container sample up to `since` are stale; a
        sample that arrives later (an alert: the exporter can still reach us) is fresh data.
        """
        with self._lock:
            if down:
                self._down_nodes.setdefault(node, since)
            else:
                self._down_nodes.pop(node, None)

    def set_services(self, services: Mapping[str, ServiceInfo]) -> None:
        frozen = dict(services)
        with self._lock:
            self._services = frozen

    def prune(self, now: float) -> int:
        """Drops samples older than the window and containers not seen for `forget_after`.

        Returns how many containers were forgotten.
        """
        cutoff = now - self._window
        forget = now - self._forget_after
        with self._lock:
            gone = [cid for cid, s in self._latest.items() if s.ts < forget]
            for cid in gone:
                del self._latest[cid]
                del self._history[cid]
            for cid, history in self._history.items():
                if history[0][0] < cutoff:
                    # rows are in time order (_add keeps only newer samples): a binary search finds the cut,
                    # not a Python loop over every row of every container on every round
                    self._history[cid] = history[bisect.bisect_left(history, cutoff, key=_row_ts):] or history[-1:]
            for node in [n for n, s in self._nodes.items() if s.ts < forget]:
                del self._nodes[node]
            return len(gone)

    def snapshot(self, now: float) -> Snapshot:
        """A consistent view at `now`; samples from before their exporter went down, or older than
        `stale_after`, are stale."""
        with self._lock:
            latest = dict(self._latest)
            history = dict(self._history)
            nodes = dict(self._nodes)
            down = dict(self._down_nodes)
            services = self._services
        limit = now - self._stale_after
        for cid, sample in latest.items():
            if sample.ts < limit or sample.ts <= down.get(sample.node, -math.inf):
                latest[cid] = dataclasses.replace(sample, stale=True)
        for name, node in nodes.items():
            if name in down or node.ts < limit:
                nodes[name] = dataclasses.replace(node, stale=True)
        return Snapshot(containers=latest, history=HistoryView(latest, history), services=services, nodes=nodes)

    def node_load(self) -> dict[str, float]:
        """Load per node with fresh figures (the larger of CPU and memory %), for picking a target."""
        with self._lock:
            return {name: max(n.cpu, n.mem) for name, n in self._nodes.items() if name not in self._down_nodes}

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "containers": len(self._latest),
                "samples": sum(len(h) for h in self._history.values()),
                "nodes": len(self._nodes),
                "nodes_down": len(self._down_nodes),
                "services": len(self._services),
            }
