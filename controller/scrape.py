"""Pulls every exporter's samples into the cache, so rules also see containers that never alert.

Exporters are found through the Swarm tasks of the exporter service (their overlay addresses) or
come from a static list. One event-loop thread keeps a keep-alive connection per exporter
(controller/fetch.py) and has a round's requests in flight at once (at most `workers`), so one
slow exporter costs the others nothing and 1000 exporters cost one thread (docs/scale.md).
Each exporter is asked for its sample summary (GET /v1/samples, sgcommon/summary.py: a few KB read
by `json.loads`); one that has none (an older exporter: 404, or an answer that is not JSON) is
scraped through its Prometheus /metrics instead, and asked for the summary again every
`summary_retry` seconds. Both give the same figures.
An exporter that stops answering is logged once, retried every round, and its node's containers are
marked stale in the cache (shown, never acted on) until it answers again; recovery is logged once.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from controller.cache import MAX_CLOCK_SKEW, MetricsCache
from controller.fetch import Connection, FetchError, Origin
from controller.model import ContainerMetrics, NodeMetrics
from sgcommon.jsonlog import OnceLogger, get_logger
from sgcommon.metricset import CONTAINER_FIGURES, CONTAINER_KEYS, NODE_FIGURES, REQUIRED_KEYS, SAMPLE_TIMESTAMP
from sgcommon.summary import CONTENT_TYPE as SUMMARY_TYPE
from sgcommon.summary import FIELDS, MAX_SUMMARY_BYTES, SUMMARY_PATH, decode_summary, is_number

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


def parse_summary(body: bytes, *, scraped_at: float) -> Parsed:
    """Turns a sample summary (GET /v1/samples) into samples, like `parse_exposition` does with the
    exposition: a container lacking cpu, mem or net, a label, or a finite figure is skipped with a
    reason, and so is one stamped ahead of the controller's clock. The node's ts is `scraped_at`.

    Raises SummaryError (a ValueError) when the body is not a summary at all.
    """
    summary = decode_summary(body)
    node = summary.node
    col = summary.columns
    lacking = [key for key in REQUIRED_KEYS if col.get(key) is None]
    # every row as (container_id, service, task_id, ts, *figures in CONTAINER_KEYS order); 0.0 for an absent figure
    if not lacking and list(col)[:len(FIELDS)] == list(FIELDS):
        rows: Iterable[Sequence[Any]] = summary.rows  # the exporter's own order: the rows as they are
    else:
        at = [col["container_id"], col["service"], col["task_id"], col["ts"], *(col.get(k) for k in CONTAINER_KEYS)]
        rows = [[0.0 if i is None else row[i] for i in at] for row in summary.rows]
    parsed = Parsed()
    containers = parsed.containers
    limit = scraped_at + MAX_CLOCK_SKEW
    for row in rows:
        cid, service, task, ts, cpu, mem, mem_mb, net, net_rx, net_tx = row[:10]
        if (type(ts) is float and type(cpu) is float and type(mem) is float and type(mem_mb) is float
                and type(net) is float and type(net_rx) is float and type(net_tx) is float and not lacking
                and type(cid) is str and type(service) is str and type(task) is str and cid and service):
            total = ts + cpu + mem + mem_mb + net + net_rx + net_tx  # the common row: floats as JSON decodes them
            if total - total == 0.0 and ts <= limit:
                containers.append(ContainerMetrics(node, service, cid, task, ts, cpu, mem, mem_mb, net, net_rx, net_tx))
                continue
        try:
            total = ts + cpu + mem + mem_mb + net + net_rx + net_tx  # TypeError unless all are numbers
            good = (total - total == 0.0 and type(cid) is str and type(service) is str and type(task) is str
                    and cid and service and bool not in (type(ts), type(cpu), type(mem), type(mem_mb), type(net),
                                                         type(net_rx), type(net_tx)))
        except TypeError:
            good = False
        if not good or lacking or ts > limit:
            parsed.problems.append(_row_problem(row, lacking, limit))
            continue
        containers.append(ContainerMetrics(node, service, cid, task, float(ts), float(cpu), float(mem), float(mem_mb),
                                           float(net), float(net_rx), float(net_tx)))
    if summary.node_figures is not None:
        missing = [key for key in REQUIRED_KEYS if key not in summary.node_figures]
        if missing:
            parsed.problems.append(f"node {node}: missing {', '.join(missing)}")
        else:
            f = summary.node_figures
            parsed.nodes.append(NodeMetrics(node=node, ts=scraped_at, cpu=float(f["cpu"]), mem=float(f["mem"]),
                                            net=float(f["net"])))
    return parsed


def _row_problem(row: Sequence[Any], lacking: list[str], limit: float) -> str:
    """Why a summary row is not a sample (the slow path: rows are seldom wrong)."""
    cid, service, task, ts = row[:4]
    if type(cid) is not str or not cid:
        return f"container {str(cid)[:80]!r}: no container id"
    labels = (["service"] if type(service) is not str or not service else []) + \
        (["task_id"] if type(task) is not str else [])
    if lacking or labels:
        return f"container {cid}: missing {', '.join(lacking + labels)}"
    if not all(map(is_number, row[3:10])):
        return f"container {cid}: a figure or its timestamp is not a finite number"
    return f"container {cid}: sample timestamp {ts} is ahead of the controller's clock"


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
    """Scrapes every target at once from one event-loop thread and feeds the cache.

    `timeout` bounds each request (connect and read); `budget` bounds how long a round waits, so
    a round fits its interval even when an exporter hangs (default: `timeout`); `workers` is how
    many requests are in flight at once. Samples land in the cache as each answer comes.
    """

    def __init__(
        self,
        source: TargetSource,
        cache: MetricsCache,
        *,
        timeout: float = 1.0,
        budget: float | None = None,
        workers: int = 64,
        clock: Callable[[], float] = time.time,
        observe: Callable[[str, float, bool], None] | None = None,
        summary_retry: float = 300.0,
        max_body: int = MAX_SUMMARY_BYTES,
    ) -> None:
        self._source = source
        self._cache = cache
        self._timeout = timeout
        self._budget = timeout if budget is None else budget
        self._workers = workers
        self._clock = clock
        self._observe = observe
        self._summary_retry = summary_retry
        self._max_body = max_body
        # Everything below belongs to the loop thread.
        self._connections: dict[str, Connection] = {}
        self._in_flight: dict[str, asyncio.Task[Parsed | None]] = {}
        self._metrics_only: dict[str, float] = {}  # url -> monotonic time to ask for the summary again
        self._nodes: dict[str, str] = {}  # url -> node name learnt from its answers
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._once = OnceLogger(log)
        self._problems = OnceLogger(log)
        self._fallback = OnceLogger(log)

    def scrape_round(self) -> RoundResult:
        """Scrapes every target at once and waits at most `budget` seconds for them.

        A straggler is not waited for: its answer lands in the cache when it comes, it counts as
        not up in this round's result, and it is not asked again while its request is in flight.
        """
        started = time.monotonic()
        targets = list(self._source.targets())  # may ask Swarm: done here, not in the loop thread
        done = asyncio.run_coroutine_threadsafe(self._round(targets), self._running_loop()).result()
        up: dict[str, bool] = {}
        containers = nodes = 0
        for url, parsed in done.items():
            up[url] = parsed is not None
            if parsed is not None:
                containers += len(parsed.containers)
                nodes += len(parsed.nodes)
        return RoundResult(up=up, containers=containers, nodes=nodes, seconds=time.monotonic() - started)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="scrape-loop", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    async def _round(self, targets: Sequence[Target]) -> dict[str, Parsed | None]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        self._forget_gone({t.url for t in targets})
        tasks: dict[str, asyncio.Task[Parsed | None]] = {}
        for target in targets:
            task = self._in_flight.get(target.url)
            if task is None or task.done():
                task = self._in_flight[target.url] = asyncio.create_task(self._scrape_one(target))
            tasks[target.url] = task
        if tasks:
            await asyncio.wait(tasks.values(), timeout=self._budget)
        return {url: task.result() if task.done() else None for url, task in tasks.items()}  # never raises

    def _forget_gone(self, urls: set[str]) -> None:
        for url in [u for u in self._connections if u not in urls]:
            self._connections.pop(url).close()
            task = self._in_flight.pop(url, None)
            if task is not None:
                task.cancel()
            self._metrics_only.pop(url, None)
            node = self._nodes.pop(url, None)
            self._once.clear(url, "exporter no longer a target", url=url, node=node)

    async def _scrape_one(self, target: Target) -> Parsed | None:
        assert self._slots is not None
        async with self._slots:
            started = time.monotonic()
            try:
                parsed = await self._fetch(target)
            except Exception as exc:  # any failure of one exporter: unreachable, bad status, garbage
                self._went_down(target, f"{exc.__class__.__name__}: {exc}")
                self._report(target, time.monotonic() - started, ok=False)
                return None
        self._came_up(target, parsed)
        self._report(target, time.monotonic() - started, ok=True)
        return parsed

    async def _fetch(self, target: Target) -> Parsed:
        connection = self._connections.get(target.url)
        origin, path = Origin.of(target.url)
        if connection is None:
            connection = self._connections[target.url] = Connection(origin, max_body=self._max_body)
        if self._metrics_only.get(target.url, 0.0) <= time.monotonic():
            summary_path = path[: -len("/metrics")] + SUMMARY_PATH if path.endswith("/metrics") else SUMMARY_PATH
            answer = await connection.get(summary_path, timeout=self._timeout, accept=SUMMARY_TYPE)
            if answer.status == 200 and answer.content_type.split(";", 1)[0].strip() == SUMMARY_TYPE:
                self._metrics_only.pop(target.url, None)
                self._fallback.clear(target.url, "exporter serves the sample summary again", url=target.url)
                return parse_summary(answer.body, scraped_at=self._clock())
            if answer.status >= 500:
                raise FetchError(f"HTTP {answer.status} from {summary_path}")
            # an exporter without the summary (404, or an answer that is not one): its /metrics, for a while
            self._metrics_only[target.url] = time.monotonic() + self._summary_retry
            self._fallback.warn(target.url, "exporter has no sample summary; scraping its /metrics", url=target.url,
                                status=answer.status, content_type=answer.content_type)
        answer = await connection.get(path, timeout=self._timeout)
        if answer.status != 200:
            raise FetchError(f"HTTP {answer.status} from {path}")
        text = answer.body.decode("utf-8")
        scraped_at = self._clock()
        # prometheus_client's parser takes milliseconds per exporter: off the loop, so other answers go on
        return await asyncio.get_running_loop().run_in_executor(None, _parse_text, text, scraped_at)

    def _report(self, target: Target, seconds: float, *, ok: bool) -> None:
        if self._observe is not None:
            self._observe(target.url, seconds, ok)

    def _node_of(self, target: Target) -> str | None:
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
        if len(names) == 1:
            self._nodes[target.url] = next(iter(names))
        return target.node or self._nodes.get(target.url)

    def close(self) -> None:
        """Cancels the requests in flight, closes every connection and stops the loop thread."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def shut() -> None:
            for task in self._in_flight.values():
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            self._in_flight.clear()
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

        asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _parse_text(text: str, scraped_at: float) -> Parsed:
    return parse_exposition(text, scraped_at=scraped_at)
