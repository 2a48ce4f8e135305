"""Pulls every exporter's /metrics into the cache, so rules also see containers that never alert.

Exporters are found through the Swarm tasks of the exporter service (their overlay addresses) or
come from a static list. Each exporter gets its own keep-alive `requests.Session`; a round scrapes
all of them in parallel on a small thread pool, so one slow exporter costs the others nothing.
An exporter that stops answering is logged once, retried every round, and its node's containers are
marked stale in the cache (shown, never acted on) until it answers again; recovery is logged once.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from prometheus_client.parser import text_string_to_metric_families

from controller.cache import MAX_CLOCK_SKEW, MetricsCache
from controller.model import ContainerMetrics, NodeMetrics
from sgcommon.jsonlog import OnceLogger, get_logger
from sgcommon.metricset import CONTAINER_FIGURES, NODE_FIGURES, REQUIRED_KEYS, SAMPLE_TIMESTAMP

log = get_logger("swarmguard.controller.scrape")

# exporter metric name -> (ContainerMetrics / NodeMetrics field, factor to its unit)
CONTAINER_FIELDS = {f.exposition: (f.key, f.scale) for f in CONTAINER_FIGURES} | {SAMPLE_TIMESTAMP: ("ts", 1.0)}
NODE_FIELDS = {f.exposition: (f.key, f.scale) for f in NODE_FIGURES}


@dataclass
class Parsed:
    """What one exporter's exposition said: its samples and what was wrong with it."""

    containers: list[ContainerMetrics] = field(default_factory=list)
    nodes: list[NodeMetrics] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_exposition(text: str, *, scraped_at: float) -> Parsed:
    """Turns exposition text into samples; a container lacking cpu, mem or net is skipped with a reason.

    A container's ts is its `sample_timestamp_seconds` (exporter clock), else `scraped_at`.
    Raises ValueError when the text is not Prometheus exposition at all.
    """
    per_container: dict[str, dict[str, Any]] = {}
    per_node: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in CONTAINER_FIELDS:
                cid = sample.labels.get("container_id", "")
                if cid:
                    slot = per_container.setdefault(cid, {"labels": sample.labels})
                    key, scale = CONTAINER_FIELDS[sample.name]
                    slot[key] = float(sample.value) * scale
            elif sample.name in NODE_FIELDS and sample.labels.get("node"):
                key, scale = NODE_FIELDS[sample.name]
                per_node.setdefault(sample.labels["node"], {})[key] = float(sample.value) * scale
    parsed = Parsed()
    for cid, slot in per_container.items():
        missing = [name for name in REQUIRED_KEYS if name not in slot]
        labels = slot["labels"]
        if missing or not labels.get("node") or not labels.get("service"):
            what = ", ".join(missing + [lbl for lbl in ("node", "service") if not labels.get(lbl)])
            parsed.problems.append(f"container {cid}: missing {what}")
            continue
        if slot.get("ts", scraped_at) > scraped_at + MAX_CLOCK_SKEW:
            parsed.problems.append(f"container {cid}: sample timestamp {slot['ts']} is ahead of the controller's clock")
            continue
        parsed.containers.append(ContainerMetrics(
            node=labels["node"], service=labels["service"], container_id=cid,
            task_id=labels.get("task_id", ""), ts=slot.get("ts", scraped_at),
            cpu=slot["cpu"], mem=slot["mem"], mem_mb=slot.get("mem_mb", 0.0), net=slot["net"],
            net_rx=slot.get("net_rx", 0.0), net_tx=slot.get("net_tx", 0.0),
        ))
    for node, figures in per_node.items():
        missing = [name for name in REQUIRED_KEYS if name not in figures]
        if missing:
            parsed.problems.append(f"node {node}: missing {', '.join(missing)}")
            continue
        parsed.nodes.append(NodeMetrics(node=node, ts=scraped_at, cpu=figures["cpu"], mem=figures["mem"],
                                        net=figures["net"]))
    return parsed


@dataclass(frozen=True)
class Target:
    """One exporter to scrape; `node` is its Swarm node when known before the first answer."""

    url: str
    node: str | None = None


class TargetSource(Protocol):
    def targets(self) -> Sequence[Target]: ...


def _metrics_url(address: str, port: int) -> str:
    if address.startswith(("http://", "https://")):
        return address if address.rstrip("/").endswith("/metrics") else address.rstrip("/") + "/metrics"
    host = address if ":" in address.strip("[]") or address.startswith("[") else f"{address}:{port}"
    return f"http://{host}/metrics"


class StaticTargets:
    """Exporters named in the settings (host, host:port or a URL)."""

    def __init__(self, addresses: Iterable[str], *, port: int = 9101) -> None:
        self._targets = [Target(_metrics_url(a, port)) for a in addresses]

    def targets(self) -> Sequence[Target]:
        return self._targets


class TaskLike(Protocol):
    """What is read of an exporter's task (sgcommon.engine.swarm.TaskView)."""

    @property
    def node_hostname(self) -> str | None: ...
    @property
    def addresses(self) -> tuple[str, ...]: ...


class TaskLister(Protocol):
    """The part of sgcommon.engine.swarm.SwarmAdapter this needs."""

    def list_tasks(self, *, service: str | None = None, desired_state: str | None = None) -> Sequence[TaskLike]: ...


class SwarmTargets:
    """Exporters found as the running tasks of the exporter service, by their overlay addresses.

    The list is refreshed every `refresh` seconds at most (not every scrape round), and the last
    good list is kept when Swarm cannot be asked.
    """

    def __init__(self, swarm: TaskLister, service: str, *, port: int = 9101, refresh: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._swarm = swarm
        self._service = service
        self._port = port
        self._refresh = refresh
        self._clock = clock
        self._cached: list[Target] = []
        self._fetched_at: float | None = None
        self._once = OnceLogger(log)

    def targets(self) -> Sequence[Target]:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._refresh:
            return self._cached
        try:
            tasks = self._swarm.list_tasks(service=self._service, desired_state="running")
        except Exception as exc:  # an EngineError, or the socket went away: keep the last list
            self._once.warn("exporter-tasks", "cannot list the exporter tasks", service=self._service,
                            error=str(exc))
            return self._cached
        self._once.clear("exporter-tasks", "exporter tasks listed again", service=self._service)
        self._fetched_at = now
        self._cached = [Target(_metrics_url(addr, self._port), node=task.node_hostname)
                        for task in tasks if (addr := _first_address(task))]
        return self._cached


def _first_address(task: TaskLike) -> str | None:
    for address in task.addresses or ():
        host = str(address).split("/", 1)[0]
        if host:
            return host
    return None


@dataclass(frozen=True)
class RoundResult:
    """What one scrape round did: per URL, whether the exporter answered, and the totals."""

    up: dict[str, bool]
    containers: int
    nodes: int
    seconds: float


class Scraper:
    """Scrapes every target in parallel and feeds the cache; one Session per exporter URL.

    `timeout` bounds each request (connect and read); `budget` bounds how long a round waits, so
    a round fits its interval even when an exporter hangs (default: `timeout`).
    """

    def __init__(
        self,
        source: TargetSource,
        cache: MetricsCache,
        *,
        timeout: float = 1.0,
        budget: float | None = None,
        workers: int = 8,
        clock: Callable[[], float] = time.time,
        observe: Callable[[str, float, bool], None] | None = None,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self._source = source
        self._cache = cache
        self._timeout = timeout
        self._budget = timeout if budget is None else budget
        self._in_flight: dict[str, concurrent.futures.Future[Parsed | None]] = {}
        self._clock = clock
        self._observe = observe
        self._session_factory = session_factory
        self._sessions: dict[str, requests.Session] = {}
        self._nodes: dict[str, str] = {}  # url -> node name learnt from its answers
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrape")
        self._once = OnceLogger(log)
        self._problems = OnceLogger(log)

    def scrape_round(self) -> RoundResult:
        """Scrapes every target at once and waits at most `budget` seconds for them.

        A straggler is not waited for: its answer lands in the cache when it comes, it counts as
        not up in this round's result, and it is not asked again while its request is in flight.
        """
        started = time.monotonic()
        targets = list(self._source.targets())
        self._forget_gone({t.url for t in targets})
        futures: dict[str, concurrent.futures.Future[Parsed | None]] = {}
        for target in targets:
            with self._lock:
                future = self._in_flight.get(target.url)
                if future is None or future.done():
                    future = self._in_flight[target.url] = self._pool.submit(self._scrape_one, target)
            futures[target.url] = future
        concurrent.futures.wait(futures.values(), timeout=self._budget)
        up: dict[str, bool] = {}
        containers = nodes = 0
        for url, future in futures.items():
            parsed = future.result() if future.done() else None  # _scrape_one never raises
            up[url] = parsed is not None
            if parsed is not None:
                containers += len(parsed.containers)
                nodes += len(parsed.nodes)
        return RoundResult(up=up, containers=containers, nodes=nodes, seconds=time.monotonic() - started)

    def _session(self, url: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get(url)
            if session is None:
                session = self._sessions[url] = self._session_factory()
            return session

    def _forget_gone(self, urls: set[str]) -> None:
        with self._lock:
            gone = [url for url in self._sessions if url not in urls]
            for url in gone:
                self._sessions.pop(url).close()
                self._in_flight.pop(url, None)
                node = self._nodes.pop(url, None)
                self._once.clear(url, "exporter no longer a target", url=url, node=node)

    def _scrape_one(self, target: Target) -> Parsed | None:
        started = time.monotonic()
        try:
            response = self._session(target.url).get(target.url, timeout=self._timeout)
            response.raise_for_status()
            scraped_at = self._clock()
            parsed = parse_exposition(response.text, scraped_at=scraped_at)
        except Exception as exc:  # any failure of one exporter: unreachable, bad status, garbage
            self._went_down(target, f"{exc.__class__.__name__}: {exc}")
            self._report(target, time.monotonic() - started, ok=False)
            return None
        self._came_up(target, parsed)
        self._report(target, time.monotonic() - started, ok=True)
        return parsed

    def _report(self, target: Target, seconds: float, *, ok: bool) -> None:
        if self._observe is not None:
            self._observe(target.url, seconds, ok)

    def _node_of(self, target: Target) -> str | None:
        with self._lock:
            return target.node or self._nodes.get(target.url)

    def _went_down(self, target: Target, error: str) -> None:
        node = self._node_of(target)
        if node is not None:
            self._cache.set_node_down(node, True, since=self._clock())
        self._once.warn(target.url, "exporter unreachable", url=target.url, node=node, error=error)

    def _came_up(self, target: Target, parsed: Parsed) -> None:
        node = self._learn_node(target, parsed)
        self._cache.add_containers(parsed.containers)
        self._cache.add_nodes(parsed.nodes)
        if node is not None:
            self._cache.set_node_down(node, False)
        self._once.clear(target.url, "exporter answers again", url=target.url, node=node)
        if parsed.problems:
            self._problems.warn(target.url, "exporter sent incomplete samples", url=target.url,
                                problems=parsed.problems[:10], count=len(parsed.problems))
        else:
            self._problems.clear(target.url, "exporter samples complete again", url=target.url)

    def _learn_node(self, target: Target, parsed: Parsed) -> str | None:
        names = {n.node for n in parsed.nodes} | {c.node for c in parsed.containers}
        with self._lock:
            if len(names) == 1:
                self._nodes[target.url] = next(iter(names))
            return target.node or self._nodes.get(target.url)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()
