"""The controller's memory of recent metrics: what the rule engine sees, without any I/O.

Scrapes and alerts both feed it. Everything is bounded: samples per container, the time window,
and the number of containers (the least recently seen go first).

At 1000 nodes x 30 containers and a 5-minute window the cache holds 9 million samples, so a sample is
a packed row of 7 doubles (its timestamp and six figures, 56 bytes) written into fixed-size chunks
of CHUNK rows: nothing the cycle collector walks, an append instead of a copy of the whole history,
and, since every chunk has the same size, memory freed by one container is reused as is by the next
(bytearrays that grow and shrink by reallocation doubled the RSS). docs/scale.md has the figures;
the tuple layout before took 180-280 bytes a sample, 2.5 GB at that size. The rule engine still sees
`Snapshot.history[cid]` as a Sequence of ContainerMetrics, oldest first, built only for the
containers and samples it reads.

A container's history is an immutable Series (its chunks, the first and the end row); a snapshot
keeps the Series of each container as it was, so it never sees a later row, and a chunk is only
written past the end of every Series that holds it. The cache keeps a Series as its Head (chunks,
first row), replaced only when a chunk is started or the first row moves, and its end row in a map
of ints: a tuple replaced on every sample was 30 000 new objects a second at 1000 nodes for the
cycle collector's young passes (docs/scale.md), an int is none. The window is applied
when a history is read, from the cut-off of the last `prune` before the snapshot; chunks whose rows
are all outside it, or over max_samples, are let go as new ones are started.
The alert path asks for `container_snapshot`, which touches only its own container.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import cast, overload

from controller.model import ContainerMetrics, NodeMetrics, ServiceInfo, Snapshot
from sgcommon.metricset import SAME_SAMPLE


# A sample stamped further ahead of the controller's clock is refused by the inputs: it would hide
# every real sample of its container until the container is forgotten.
MAX_CLOCK_SKEW = 60.0

ROW = struct.Struct("=7d")  # ts, cpu, mem, mem_mb, net, net_rx, net_tx
ROW_SIZE = ROW.size
CHUNK = 32  # rows per chunk: 1.8 KB; on average half a chunk at each end is not live (about 10 % at 300 rows)
TS = struct.Struct("=d")
_TS, _END = ContainerMetrics._fields.index("ts"), ContainerMetrics._fields.index("net_tx") + 1  # ROW's fields
assert ContainerMetrics._fields[_TS:_END] == ("ts", "cpu", "mem", "mem_mb", "net", "net_rx", "net_tx")
EVICT_SHARE = 100  # a full cache drops its least recently seen 1/EVICT_SHARE at once


# One container's rows [start, stop), counted from row 0 of chunks[0]: (chunks, start, stop). A plain
# tuple of bytearrays and ints, which the cycle collector stops tracking (a named tuple it would walk).
Series = tuple[tuple[bytearray, ...], int, int]
Head = tuple[tuple[bytearray, ...], int]  # a Series without its end row, which is kept apart
EMPTY: Series = ((), 0, 0)


def _ts(chunks: tuple[bytearray, ...], i: int) -> float:
    return float(TS.unpack_from(chunks[i // CHUNK], (i % CHUNK) * ROW_SIZE)[0])


Row = tuple[float, float, float, float, float, float, float]  # as ROW packs it


def _row(chunks: tuple[bytearray, ...], i: int) -> Row:
    return cast(Row, ROW.unpack_from(chunks[i // CHUNK], (i % CHUNK) * ROW_SIZE))


def _first_at_or_after(chunks: tuple[bytearray, ...], cutoff: float, lo: int, hi: int) -> int:
    """The first row in [lo, hi) not older than `cutoff` (bisect over the timestamps); `hi` if none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if _ts(chunks, mid) < cutoff:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _live(series: Series, cutoff: float) -> tuple[int, int]:
    """The rows [first, stop) inside the window, never none when there is a row (the newest row stays
    even when it is older than the window)."""
    chunks, start, stop = series
    if stop == start or _ts(chunks, start) >= cutoff:
        return start, stop
    return min(_first_at_or_after(chunks, cutoff, start, stop), stop - 1), stop


def _append(series: Series, sample: ContainerMetrics, *, cutoff: float, max_samples: int) -> Series:
    """`series` with `sample` as its newest row. Chunks are full when a new one starts: then the chunks
    whose rows are all outside the window (older than `cutoff`) or over `max_samples` go."""
    chunks, start, stop = series
    if stop % CHUNK == 0:
        keep = max(start, stop + 1 - max_samples)
        if keep < stop and _ts(chunks, keep) < cutoff:
            keep = _first_at_or_after(chunks, cutoff, keep, stop)  # at most `stop`: the new row stays
        gone = keep // CHUNK
        chunks = chunks[gone:] + (bytearray(CHUNK * ROW_SIZE),)
        start, stop = keep - gone * CHUNK, stop - gone * CHUNK
    ROW.pack_into(chunks[-1], (stop % CHUNK) * ROW_SIZE, *sample[_TS:_END])
    stop += 1
    return chunks, max(start, stop - max_samples), stop


class History(Sequence[ContainerMetrics]):
    """One container's samples, oldest first, as ContainerMetrics built on access."""

    __slots__ = ("_like", "_series", "_start", "_stop")

    def __init__(self, like: ContainerMetrics, series: Series, start: int, stop: int) -> None:
        self._like = like
        self._series = series
        self._start = start
        self._stop = stop

    def _sample(self, i: int) -> ContainerMetrics:
        like = self._like
        return ContainerMetrics(like.node, like.service, like.container_id, like.task_id, *_row(self._series[0], i))

    @overload
    def __getitem__(self, index: int) -> ContainerMetrics: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ContainerMetrics, ...]: ...

    def __getitem__(self, index: int | slice) -> ContainerMetrics | tuple[ContainerMetrics, ...]:
        rows = range(self._start, self._stop)
        if isinstance(index, slice):
            return tuple(map(self._sample, rows[index]))
        return self._sample(rows[index])

    def __len__(self) -> int:
        return self._stop - self._start


class HistoryView(Mapping[str, History]):
    """Snapshot.history: per container id, its History (built when asked for)."""

    __slots__ = ("_latest", "_series", "_stops", "_cutoff")

    def __init__(self, latest: Mapping[str, ContainerMetrics], series: Mapping[str, Head],
                 stops: Mapping[str, int], *, cutoff: float) -> None:
        self._latest = latest
        self._series = series
        self._stops = stops
        self._cutoff = cutoff

    def __getitem__(self, cid: str) -> History:
        like = self._latest[cid]
        chunks, start = self._series[cid]
        series = (chunks, start, self._stops[cid])
        return History(like, series, *_live(series, self._cutoff))

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)


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
        self._series: dict[str, Head] = {}
        self._stops: dict[str, int] = {}  # the end row of each Series
        self._latest: dict[str, ContainerMetrics] = {}
        self._cutoff = -math.inf  # samples older than this are outside the window (set by `prune`)
        self._evicted = 0
        self._nodes: dict[str, NodeMetrics] = {}
        self._down_nodes: dict[str, float] = {}  # node -> when its exporter was first found unreachable
        self._services: Mapping[str, ServiceInfo] = {}

    def add_container(self, sample: ContainerMetrics) -> bool:
        """Adds one sample; False when it is not newer than the newest one kept (the same sample
        seen again through the other input, or an old one)."""
        with self._lock:
            return self._add(sample)

    def add_containers(self, samples: Iterable[ContainerMetrics]) -> int:
        """`add_container` for each of `samples` (a scrape's), under one hold of the lock; the common
        case (a newer sample with room in its last chunk) is inlined: 30 000 a second at 1000 nodes."""
        added = 0
        latest_of, series_of, stops, max_samples = self._latest, self._series, self._stops, self._max_samples
        pack = ROW.pack_into
        with self._lock:
            for sample in samples:
                cid = sample.container_id
                latest = latest_of.get(cid)
                if latest is not None:
                    stop = stops[cid]
                    at = stop % CHUNK
                    if at and sample.ts > latest.ts + SAME_SAMPLE:
                        chunks, start = series_of[cid]
                        pack(chunks[-1], at * ROW_SIZE, *sample[_TS:_END])
                        stop += 1
                        stops[cid] = stop
                        if stop - start > max_samples:
                            series_of[cid] = (chunks, stop - max_samples)
                        latest_of[cid] = sample
                        added += 1
                        continue
                added += self._add(sample)
        return added

    def _add(self, sample: ContainerMetrics) -> bool:
        cid = sample.container_id
        latest = self._latest.get(cid)
        if latest is not None and sample.ts <= latest.ts + SAME_SAMPLE:
            return False
        if latest is None and len(self._latest) >= self._max_containers:
            self._drop_least_recent()
        chunks, start = self._series.get(cid, EMPTY[:2])
        stop = self._stops.get(cid, 0)
        at = stop % CHUNK
        if at:  # room in the last chunk: the common case, inline (30 000 samples a second at 1000 nodes)
            ROW.pack_into(chunks[-1], at * ROW_SIZE, *sample[_TS:_END])
            stop += 1
            if stop - start > self._max_samples:
                self._series[cid] = (chunks, stop - self._max_samples)
        else:
            chunks, start, stop = _append((chunks, start, stop), sample, cutoff=self._cutoff,
                                          max_samples=self._max_samples)
            self._series[cid] = (chunks, start)
        self._stops[cid] = stop
        self._latest[cid] = sample
        return True

    def _drop_least_recent(self) -> None:
        """Makes room: the least recently seen containers go, a share at once so that a full cache
        does not scan every container for each new one."""
        count = max(1, len(self._latest) // EVICT_SHARE)
        for oldest in heapq.nsmallest(count, self._latest.values(), key=lambda s: s.ts):
            del self._latest[oldest.container_id]
            del self._series[oldest.container_id]
            del self._stops[oldest.container_id]
        self._evicted += count

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

        Returns how many containers were forgotten. The window moves for every container at once
        (histories are read from it on); the chunks outside it go as samples are added (`_append`).
        """
        forget = now - self._forget_after
        with self._lock:
            self._cutoff = max(self._cutoff, now - self._window)
            gone = [cid for cid, s in self._latest.items() if s.ts < forget]
            for cid in gone:
                del self._latest[cid]
                del self._series[cid]
                del self._stops[cid]
            for node in [n for n, s in self._nodes.items() if s.ts < forget]:
                del self._nodes[node]
            return len(gone)

    def snapshot(self, now: float) -> Snapshot:
        """A consistent view at `now`; samples from before their exporter went down, or older than
        `stale_after`, are stale."""
        with self._lock:
            latest = dict(self._latest)
            series = dict(self._series)
            stops = dict(self._stops)
            nodes = dict(self._nodes)
            down = dict(self._down_nodes)
            services = self._services
            cutoff = self._cutoff
        limit = now - self._stale_after
        for cid, sample in latest.items():
            if sample.ts < limit or sample.ts <= down.get(sample.node, -math.inf):
                latest[cid] = sample._replace(stale=True)
        for name, node in nodes.items():
            if name in down or node.ts < limit:
                nodes[name] = dataclasses.replace(node, stale=True)
        return Snapshot(containers=latest, history=HistoryView(latest, series, stops, cutoff=cutoff),
                        services=services, nodes=nodes)

    def container_snapshot(self, cid: str, now: float) -> Snapshot:
        """The view the rule engine needs to evaluate one container at `now` (the alert path): that
        container, its history and its node, the services; stale as in `snapshot`. Nothing else is
        copied, so its cost does not grow with the cluster."""
        with self._lock:
            sample = self._latest.get(cid)
            series = self._series.get(cid)
            stop = self._stops.get(cid, 0)
            node = self._nodes.get(sample.node) if sample is not None else None
            down = self._down_nodes.get(sample.node) if sample is not None else None
            services = self._services
            cutoff = self._cutoff
        limit = now - self._stale_after
        containers: dict[str, ContainerMetrics] = {}
        nodes: dict[str, NodeMetrics] = {}
        if sample is not None and series is not None:
            stale = sample.ts < limit or (down is not None and sample.ts <= down)
            containers[cid] = sample._replace(stale=True) if stale else sample
        if node is not None:
            nodes[node.node] = dataclasses.replace(node, stale=True) if down is not None or node.ts < limit else node
        if containers and series is not None:
            history = HistoryView(containers, {cid: series}, {cid: stop}, cutoff=cutoff)
        else:
            history = HistoryView(containers, {}, {}, cutoff=cutoff)
        return Snapshot(containers=containers, history=history, services=services, nodes=nodes)

    def node_load(self) -> dict[str, float]:
        """Load per node with fresh figures (the larger of CPU and memory %), for picking a target."""
        with self._lock:
            return {name: max(n.cpu, n.mem) for name, n in self._nodes.items() if name not in self._down_nodes}

    def stats(self) -> dict[str, int]:
        """Counts for /healthz; `samples` are the rows held, which may include a chunk's worth per
        container just outside the window (exact counting would read every container's timestamps)."""
        with self._lock:
            return {
                "containers": len(self._latest),
                "samples": sum(self._stops.values()) - sum(start for _, start in self._series.values()),
                "nodes": len(self._nodes),
                "nodes_down": len(self._down_nodes),
                "services": len(self._services),
                "evicted": self._evicted,
            }
