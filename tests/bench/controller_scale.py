"""The controller at 100 to 1000 nodes: simulated exporters on loopback, the real controller process,
alerts at 1000/s, and what it costs (docs/scale.md has the figures and the reasoning).

Four processes, so a load generator never runs inside the process it measures:
- exporters: ONE asyncio process serving N simulated exporters on N loopback ports. Each node's
  bodies are rendered once, at start, by the exporter's own code (`exporter.service.Exporter`
  over a synthetic sweep of `--containers` containers: the exposition and, where the tree has
  it, the /v1/samples summary); every `interval` the node's sweep timestamp moves on and is
  written into the rendered bytes (a byte replace), so each round brings new samples at the
  cost of a memory copy, never a Python rendering. Nodes sweep at different phases, as real ones do.
- controller: `swarmguard-controller run` as `controller.__main__` runs it (settings, token check,
  `controller.runtime.build`, the real scraper, cache, rules/default.yml, rule engine, executor in
  dry-run, its HTTP server and Flask app), with an in-process fake Swarm (the synthetic services, opted in)
  instead of a Docker socket. Its cache is first filled with `--prefill` samples per container
  through MetricsCache.add_containers, so its memory is that of a controller that has run for a
  whole cache window. Each scrape job is timed (wall and thread CPU) around the real call.
- alerts: one asyncio process, open loop at `--alerts-per-second`, one keep-alive connection per
  exporter (as the exporters' senders keep one each; `--alert-connections` caps it), valid alerts
  with the real bearer token; latency from the scheduled send to the answer, which comes after the
  decision. Alerts carry a fresh sample (t0 = send time - 1 ms), so each one is cached and
  evaluated; a container that is hot in the scrapes is hot in its alerts and may decide (dry-run).
- this orchestrator: starts them, reads the controller's CPU (utime + stime of /proc/<pid>/stat)
  and RSS (/proc/<pid>/status) apart from the simulators', and the controller's own histograms
  from its /metrics.

By default (`--pin`) the controller is pinned to CPU 1 and the simulators and the orchestrator to
CPU 0 of this 2-core machine, so the controller has one core and the load generators cannot take
it; the machine is shared, so the load average is printed with every figure.

Per node count: a warm-up, then phase A (scrapes only, `--seconds`): scrape round time and
controller CPU per round, the full cycle (scrape round + prune + evaluation of every container);
then phase B (the same with alerts at the given rate, `--seconds`): alert latency at the client
and in the controller's histograms, the cycle again, CPU, RSS.

Run from the repo root:
  .venv/bin/python -m tests.bench.controller_scale --nodes 100,300,1000 --containers 30 --seconds 60 \
      --alerts-per-second 1000 [--tree DIR] [--json FILE]
`--tree DIR` runs the controller from another source tree (e.g. `git archive main | tar -x -C DIR`)
for a before/after comparison with the same simulators and load.

Only the standard library is imported at module level: the controller role runs this file against
`--tree` (PYTHONPATH) and must import the controller from there.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOKEN = "scale-bench-token-0123456789abcdef"
SENTINEL = 1111111111.25  # the sweep time rendered into the templates, replaced per sweep
SENTINEL_TEXT = repr(SENTINEL).encode()
METRICS_PATH, SUMMARY_PATH = "/metrics", "/v1/samples"
GOALS = {"round_s": 1.0, "cpu_per_round_s": 1.0, "cycle_p99_ms": 250.0, "alert_p99_ms": 20.0, "rss_mb": 1024.0}


# --- the synthetic cluster, the same in every process -----------------------------------------


@dataclass(frozen=True)
class Cluster:
    """N nodes x `per_node` containers; services of `replicas` containers spread over the nodes.

    Figures are calm (no default rule holds: net between net_low and net_high) except for one
    container in `hot_every`, which breaches the migrate rule in every sample.
    """

    nodes: int
    per_node: int
    replicas: int = 10
    hot_every: int = 1000
    seed: str = "scale"

    @property
    def total(self) -> int:
        return self.nodes * self.per_node

    @property
    def services(self) -> int:
        return max(1, self.total // self.replicas)

    def node(self, i: int) -> str:
        return f"node-{i:04d}"

    def _hash(self, *parts: object) -> str:
        return hashlib.sha256(":".join(map(str, (self.seed, *parts))).encode()).hexdigest()

    def container(self, i: int, j: int) -> tuple[str, str, str, str]:
        """(container id, service, task id, name) of container j on node i."""
        g = i * self.per_node + j
        service = f"scale_svc-{g % self.services:05d}"
        task = self._hash("task", i, j)[:25]
        return self._hash("container", i, j), service, task, f"{service}.{g // self.services + 1}.{task}"

    def hot(self, i: int, j: int) -> bool:
        return (i * self.per_node + j) % self.hot_every == 7

    def figures(self, i: int, j: int) -> dict[str, float]:
        """Key units (sgcommon.metricset): cpu, mem, net in %, mem_mb in MiB, net_rx/net_tx in Mbit/s."""
        g = i * self.per_node + j
        if self.hot(i, j):
            return {"cpu": 92.5, "mem": 40.0, "mem_mb": 400.0, "net": 5.0, "net_rx": 2.0, "net_tx": 3.0}
        return {"cpu": 5.0 + (g * 7) % 60, "mem": 10.0 + (g * 13) % 60, "mem_mb": 64.0 + g % 256,
                "net": 40.0 + g % 20, "net_rx": 10.0 + g % 7, "net_tx": 8.0 + g % 5}

    def phase(self, i: int, interval: float) -> float:
        """Where in the interval node i sweeps (nodes are not in step)."""
        return (int(self._hash("phase", i)[:8], 16) / 0xFFFFFFFF) * interval

    def sweep_ts(self, i: int, now: float, interval: float) -> float:
        """The time of node i's latest sweep at `now`."""
        phase = self.phase(i, interval)
        return math.floor((now - phase) / interval) * interval + phase

    def args(self) -> list[str]:
        return ["--nodes", str(self.nodes), "--containers", str(self.per_node), "--replicas", str(self.replicas),
                "--hot-every", str(self.hot_every)]


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# --- role: simulated exporters ----------------------------------------------------------------


class _Inventory:
    """What exporter.service.Exporter reads of its inventory outside a real sweep."""

    def __init__(self, node: str, containers: dict[str, Any]) -> None:
        self.node = node
        self._containers = containers

    def snapshot(self) -> dict[str, Any]:
        return self._containers


def node_bodies(cluster: Cluster, i: int) -> dict[str, bytes]:
    """Node i's /metrics (and /v1/samples where the exporter has it) as its exporter renders them."""
    from exporter.procfs import CpuTimes, NetCounters
    from exporter.sample import MIB, ContainerSample, NodeSample, Sweep
    from exporter.service import Exporter
    from sgcommon.engine.containers import LocalContainer

    node = cluster.node(i)
    samples = []
    metas: dict[str, Any] = {}
    for j in range(cluster.per_node):
        cid, service, task, name = cluster.container(i, j)
        f = cluster.figures(i, j)
        meta = LocalContainer(id=cid, name=name, service=service, task_id=task, pid=1000 + j, cpu_limit=0.5,
                              memory_limit=1 << 30, image="10.99.0.1:5000/stressapp:latest")
        metas[cid] = meta
        samples.append(ContainerSample(
            meta=meta, node=node, ts=SENTINEL, cpu_percent=f["cpu"], memory_bytes=int(f["mem_mb"] * MIB),
            memory_percent=f["mem"], net=NetCounters(rx_bytes=10**9 + j, rx_packets=10**6, tx_bytes=10**9, tx_packets=10**6),
            rx_mbps=f["net_rx"], tx_mbps=f["net_tx"], network_percent=f["net"], cpu_ns=10**12 + j,
            cpu_limit_cores=0.5, memory_limit_bytes=1 << 30))
    node_sample = NodeSample(node=node, ts=SENTINEL, iface="eth0", cpu_percent=35.0, memory_percent=55.0,
                             net=NetCounters(10**10, 10**7, 10**10, 10**7), rx_mbps=50.0, tx_mbps=40.0,
                             network_percent=9.0, cpu=CpuTimes(total=10**8, idle=6 * 10**7, online=4,
                                                               modes=(3 * 10**7, 0, 10**7, 6 * 10**7, 0, 0, 0, 0)))
    exporter = Exporter(None, _Inventory(node, metas), interval=1.0)  # type: ignore[arg-type]  # never ticks
    exporter.latest = Sweep(ts=SENTINEL, duration=0.004, node=node_sample, containers=tuple(samples))
    bodies = {METRICS_PATH: exporter.exposition()}
    summary = getattr(exporter, "summary", None)  # the compact endpoint, where this tree's exporter has it
    if summary is not None:
        bodies[SUMMARY_PATH] = summary()
    return bodies


class _Site:
    """One simulated node: its rendered bodies, with the sweep time written in once per sweep."""

    def __init__(self, cluster: Cluster, i: int, bodies: dict[str, bytes], interval: float) -> None:
        self.cluster, self.i, self.interval = cluster, i, interval
        self.phase = cluster.phase(i, interval)
        self.templates = {path.encode(): body for path, body in bodies.items()}
        self.current: dict[bytes, tuple[float, bytes]] = {}
        self.served: dict[bytes, int] = {}

    def answer(self, path: bytes) -> bytes:
        template = self.templates.get(path)
        if template is None:
            body = b"not found\n"
            return b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        ts = math.floor((time.time() - self.phase) / self.interval) * self.interval + self.phase
        cached = self.current.get(path)
        if cached is None or cached[0] != ts:
            cached = self.current[path] = (ts, template.replace(SENTINEL_TEXT, repr(ts).encode()))
        self.served[path] = self.served.get(path, 0) + 1
        ctype = b"application/json" if path == SUMMARY_PATH.encode() else b"text/plain; version=0.0.4; charset=utf-8"
        body = cached[1]
        return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, len(body)) + body


class _ExporterProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive GETs, answered from the site's bytes (no body is ever sent to us)."""

    def __init__(self, site: _Site) -> None:
        self.site = site
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            parts = head.split(b" ", 2)
            path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b"/"
            assert self.transport is not None
            self.transport.write(self.site.answer(path))


def serve_exporters(args: argparse.Namespace) -> int:
    pin(args.cpu)
    cluster = Cluster(args.nodes, args.containers, args.replicas, args.hot_every)
    began = time.perf_counter()
    sites = [_Site(cluster, i, node_bodies(cluster, i), args.interval) for i in range(cluster.nodes)]
    render_s = time.perf_counter() - began

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(lambda site=site: _ExporterProtocol(site), "127.0.0.1", 0, backlog=64)  # type: ignore[misc]
                   for site in sites]
        ports = [s.sockets[0].getsockname()[1] for s in servers]
        sizes = {p.decode(): len(b) for p, b in sites[0].templates.items()}
        print(json.dumps({"ports": ports, "render_s": round(render_s, 2), "body_bytes": sizes}), flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        served: dict[str, int] = {}
        for site in sites:
            for path, n in site.served.items():
                served[path.decode()] = served.get(path.decode(), 0) + n
        print(json.dumps({"served": served}), flush=True)

    asyncio.run(main())
    return 0


# --- role: the controller ---------------------------------------------------------------------


class BenchSwarm:
    """The synthetic services as the Swarm adapter shows them; nothing else is ever asked in dry-run."""

    def __init__(self, cluster: Cluster) -> None:
        from sgcommon.engine.swarm import ServiceView

        names = sorted({cluster.container(i, j)[1] for i in range(cluster.nodes) for j in range(cluster.per_node)})
        self._services = [ServiceView(id=hashlib.sha1(n.encode()).hexdigest()[:25], name=n, version=1,
                                      replicas=cluster.replicas, labels={"swarmguard.enable": "true"},
                                      constraints=(), update_order="start-first", has_healthcheck=True)
                          for n in names]
        self._by_name = {s.name: s for s in self._services}

    def list_services(self, *, label: str | None = None) -> list[Any]:
        return [s for s in self._services if label is None or label.split("=", 1)[0] in s.labels]

    def get_service(self, name_or_id: str) -> Any:
        return self._by_name[name_or_id]

    def list_nodes(self) -> list[Any]:
        return []

    def list_tasks(self, *, service: str | None = None, desired_state: str | None = None,
                   node: str | None = None) -> list[Any]:
        return []

    def scale(self, service: str, replicas: int, **_: Any) -> Any:
        raise RuntimeError("the bench runs the executor in dry-run")

    def update_placement(self, service: str, **_: Any) -> Any:
        raise RuntimeError("the bench runs the executor in dry-run")


def prefill(cache: Any, cluster: Cluster, *, samples: int, interval: float) -> int:
    """`samples` past samples per container, oldest first, through the cache's public method; the k-th
    newest is stamped k intervals before the moment it is added (a slow fill keeps what fits the window)."""
    from controller.model import ContainerMetrics

    labels = [(cluster.node(i), *cluster.container(i, j)[:3], cluster.figures(i, j))
              for i in range(cluster.nodes) for j in range(cluster.per_node)]
    added = 0
    for k in range(samples, 0, -1):
        ts = time.time() - k * interval - 0.5
        added += cache.add_containers([ContainerMetrics(node, service, cid, task, ts, figs["cpu"], figs["mem"],
                                                        figs["mem_mb"], figs["net"], figs["net_rx"], figs["net_tx"])
                                       for node, cid, service, task, figs in labels])
    return added


def serve_controller(args: argparse.Namespace) -> int:
    """`swarmguard-controller run` (controller.__main__._run) with the bench's fake Swarm and timers."""
    pin(args.cpu)
    from controller import __main__ as cmain
    from controller.app import create_app
    from controller.httpserver import HttpServer
    from controller.runtime import build
    from sgcommon.jsonlog import configure, get_logger

    cluster = Cluster(args.nodes, args.containers, args.replicas, args.hot_every)
    parsed = cmain.parser().parse_args(["run", "--config", args.config])
    prepared = cmain._prepare(parsed, None, sys.stderr)
    if prepared is None:
        return 2
    settings, alert_token, influx_token, thresholds = prepared
    configure(settings.log_level)
    for noisy in ("waitress", "apscheduler"):  # as `run` does
        get_logger(noisy).setLevel("WARNING")
    runtime, config = build(settings, alert_token=alert_token, thresholds=thresholds, influx_token=influx_token,
                            swarm=BenchSwarm(cluster))
    began = time.perf_counter()
    filled = prefill(runtime.cache, cluster, samples=args.prefill, interval=settings.scrape_interval)
    print(json.dumps({"prefilled": filled, "prefill_s": round(time.perf_counter() - began, 1)}), file=sys.stderr,
          flush=True)

    rounds: list[dict[str, float]] = []
    scraper = getattr(runtime, "_scraper", None)
    last_round: dict[str, float] = {}
    if scraper is not None:  # the round's own time and exporters up, around the real call
        scrape_round = scraper.scrape_round

        def timed_round() -> Any:
            result = scrape_round()
            last_round.update(round_s=result.seconds, up=float(sum(result.up.values())))
            return result

        scraper.scrape_round = timed_round
    job = runtime.scrape_and_evaluate

    def timed_job() -> None:  # what the scheduler runs every interval: scrape round + prune + evaluation
        last_round.clear()
        wall, cpu = time.perf_counter(), time.thread_time()
        job()
        rounds.append({"end": time.time(), "cycle_s": time.perf_counter() - wall,
                       "job_cpu_s": time.thread_time() - cpu, **last_round})

    runtime.scrape_and_evaluate = timed_job  # type: ignore[method-assign]
    collections: list[tuple[float, int, float]] = []  # (end, generation, seconds) of every garbage collection
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:  # CPU time of the collecting thread: preemption aside
        if phase == "start":
            gc_started[0] = time.thread_time()
        else:
            collections.append((time.time(), int(info["generation"]), time.thread_time() - gc_started[0]))

    gc.callbacks.append(on_gc)
    tune = getattr(cmain, "tune_interpreter", lambda: None)

    def tune_then_experiment() -> None:  # the hidden experiment flags override what `run` sets
        tune()
        if args.switch_interval:
            sys.setswitchinterval(args.switch_interval)
        if args.gc_threshold:
            gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
        if args.gc_unfreeze:
            gc.unfreeze()

    cmain.tune_interpreter = tune_then_experiment
    try:
        serve = getattr(cmain, "serve", None)  # what `run` does once built, in trees that have it
        make_server = getattr(cmain, "make_server", None)
        if serve is not None:
            serve(settings, runtime, config)
        else:  # older trees: `run`'s own steps
            server = (make_server(settings, runtime, config) if make_server is not None
                      else HttpServer(create_app(config, runtime), host=settings.listen, port=settings.port))
            cmain._on_signals(server.shutdown)
            try:
                runtime.start()
                server.serve_forever()
            finally:
                runtime.stop()
    finally:
        Path(args.records).write_text(json.dumps({"rounds": rounds, "gc": collections}))
    return 0


# --- role: alert senders ----------------------------------------------------------------------


async def _send_alerts(args: argparse.Namespace) -> dict[str, Any]:
    from sgcommon.alert import Alert, encode_alert

    cluster = Cluster(args.nodes, args.containers, args.replicas, args.hot_every)
    host, port = args.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    targets = [(cluster.node(i), *cluster.container(i, j)[:3], cluster.figures(i, j), cluster.hot(i, j))
               for i in range(cluster.nodes) for j in range(cluster.per_node)]
    rng = random.Random(42)
    header = (f"POST /alert HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
              "Content-Type: application/json\r\nContent-Length: ").encode()
    connections = max(1, min(args.alert_connections or cluster.nodes, cluster.nodes))
    queues: list[asyncio.Queue[tuple[float, int] | None]] = [asyncio.Queue() for _ in range(connections)]
    results: list[tuple[float, float, float, int, bool]] = []  # due, sent, answered (monotonic), status, decided
    errors: list[str] = []

    async def sender(q: asyncio.Queue[tuple[float, int] | None]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (item := await q.get()) is not None:
            due, k = item
            node, cid, service, task, figs, hot = targets[k]
            now = time.time()
            metrics = dict(figs) if hot else {**figs, "cpu": 80.0}  # the exporter alerts above cpu 75
            body = encode_alert(Alert(t0=now - 0.001, t1=now, node=node, container_id=cid, service=service,
                                      task_id=task, metrics=metrics))
            sent = time.monotonic()
            try:
                writer.write(header + str(len(body)).encode() + b"\r\n\r\n" + body)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=args.alert_timeout)
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                payload = await reader.readexactly(length)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StopIteration) as exc:
                errors.append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
                continue
            results.append((due, sent, time.monotonic(), int(head[9:12]), b'"decisions":[]' not in payload))
        writer.close()

    tasks = [asyncio.create_task(sender(q)) for q in queues]
    await asyncio.sleep(0.5)  # connections open
    total = int(args.alerts_per_second * args.seconds)
    start = time.monotonic()
    k = 0
    while k < total:
        now = time.monotonic()
        while k < total and start + k / args.alerts_per_second <= now:
            queues[k % connections].put_nowait((start + k / args.alerts_per_second, rng.randrange(len(targets))))
            k += 1
        await asyncio.sleep(0.001)
    for q in queues:
        q.put_nowait(None)
    await asyncio.wait(tasks, timeout=args.alert_timeout + 5)
    elapsed = time.monotonic() - start
    latency = sorted(done - due for due, _, done, _, _ in results)
    service = sorted(done - sent for _, sent, done, _, _ in results)
    decided = sorted(done - due for due, _, done, _, d in results if d)
    statuses: dict[str, int] = {}
    for *_, status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    slow = sorted(((round(time.time() - (time.monotonic() - due), 3), round((done - due) * 1e3, 1))
                   for due, _, done, _, _ in results if done - due > 0.05))[:500]  # when (Unix time), ms
    return {"offered": total, "answered": len(results), "achieved_per_s": len(results) / elapsed, "slow": slow,
            "connections": connections, "statuses": statuses, "errors": len(errors), "cpu_s": time.process_time(),
            "latency_ms": summary_ms(latency), "service_ms": summary_ms(service), "deciding_ms": summary_ms(decided)}


def send_alerts(args: argparse.Namespace) -> int:
    pin(args.cpu)
    print(json.dumps(asyncio.run(_send_alerts(args))), flush=True)
    return 0


# --- measuring ------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(pct(values, 0.5) * 1e3, 2), "p99": round(pct(values, 0.99) * 1e3, 2),
            "max": round(max(values) * 1e3, 2)}


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def histograms(url: str) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts of the controller's histograms, by `name{label}`."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=60) as answer:  # a saturated controller answers late
        text = answer.read().decode()
    out: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
                key = sample.name[:-len("_bucket")] + (f"{{{labels}}}" if labels else "")
                out.setdefault(key, {})[float(sample.labels["le"])] = sample.value
    return out


def bucket_p99(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The upper bound (s) of the bucket holding the 99th percentile of what was observed between two reads."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(math.inf, 0.0)
    if total <= 0:
        return float("nan"), 0
    for le in sorted(delta):
        if delta[le] >= 0.99 * total:
            return le, int(total)
    return math.inf, int(total)


@dataclass
class Phase:
    seconds: float = 0.0
    controller_cpu_s: float = 0.0
    simulator_cpu_s: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rounds: int = 0
    round_s: dict[str, float] = field(default_factory=dict)
    cycle_ms: dict[str, float] = field(default_factory=dict)
    job_cpu_ms: dict[str, float] = field(default_factory=dict)
    exporters_up: float = 0.0
    controller_p99: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    window: tuple[float, float] | None = None
    gc: dict[str, Any] = field(default_factory=dict)  # garbage collections: full ones, total and longest pause
    round_ends: list[tuple[float, int]] = field(default_factory=list)  # (end, cycle ms) of each round
    error: str = ""


@dataclass
class Run:
    nodes: int
    containers: int
    tree: str
    setup: dict[str, Any] = field(default_factory=dict)
    scrapes: Phase = field(default_factory=Phase)
    with_alerts: Phase = field(default_factory=Phase)
    error: str = ""


def _spawn(role: str, argv: list[str], *, env: dict[str, str] | None = None, stderr: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", role, *argv], text=True,
                            stdout=subprocess.PIPE, stderr=stderr, env=env)


def _get_json(url: str, timeout: float = 60.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


HISTOGRAMS = {
    "decision": "swarmguard_controller_decision_latency_seconds",
    "evaluation_alert": "swarmguard_controller_evaluation_seconds{kind=alert}",
    "evaluation_cycle": "swarmguard_controller_evaluation_seconds{kind=cycle}",
    "scrape_round": "swarmguard_controller_scrape_round_seconds",
}


def run_one(cluster: Cluster, args: argparse.Namespace, logs: Path) -> Run:
    tree = Path(args.tree).resolve()
    run = Run(cluster.nodes, cluster.per_node, str(tree))
    cpus = {"controller": 1, "load": 0} if args.pin else {"controller": None, "load": None}
    pin(cpus["load"])
    sim = _spawn("exporters", [*cluster.args(), "--interval", str(args.interval),
                               *(["--cpu", str(cpus["load"])] if cpus["load"] is not None else [])])
    procs: list[subprocess.Popen[str]] = [sim]
    try:
        assert sim.stdout is not None
        hello = json.loads(sim.stdout.readline())
        run.setup.update(render_s=hello["render_s"], body_bytes=hello["body_bytes"])
        port = _free_port()
        workdir = Path(tempfile.mkdtemp(prefix="scale-"))
        config = workdir / "controller.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "listen": "127.0.0.1", "port": port, "rules": str(REPO / "rules" / "default.yml"),
            "exporters": [f"127.0.0.1:{p}" for p in hello["ports"]], "scrape_interval": args.interval,
            "cache_max_containers": max(20000, 2 * cluster.total), "actions": {"dry_run": True},
            "log_level": "INFO", "docker_url": "http://127.0.0.1:1",
        }))
        records = workdir / "rounds.json"
        env = {**os.environ, "ALERT_TOKEN": TOKEN, "PYTHONPATH": str(tree)}
        log_file = (logs / f"scale-controller-{cluster.nodes}.log").open("w")
        ctl = _spawn("controller", [*cluster.args(), "--config", str(config), "--records", str(records),
                                    "--prefill", str(args.prefill), "--switch-interval", str(args.switch_interval),
                                    *(["--gc-threshold", args.gc_threshold] if args.gc_threshold else []),
                                    *(["--gc-unfreeze"] if args.gc_unfreeze else []),
                                    *(["--cpu", str(cpus["controller"])] if cpus["controller"] is not None else [])],
                     env=env, stderr=log_file)
        procs.append(ctl)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 900
        while True:
            if ctl.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"controller did not come up; see {log_file.name}")
            try:
                health = _get_json(f"{base}/healthz")
                if health.get("last_scrape_age") is not None:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        time.sleep(args.warmup)
        run.setup["cache_at_start"] = _get_json(f"{base}/healthz")["cache"]
        run.setup["prefill"] = next((json.loads(line) for line in Path(log_file.name).read_text().splitlines()
                                     if line.startswith('{"prefilled"')), None)

        def measure(phase: Phase, during: Callable[[], dict[str, Any]]) -> None:
            try:
                hist0 = histograms(f"{base}/metrics")
            except OSError as exc:  # a saturated controller: the rest is still measured
                hist0, phase.error = {}, f"/metrics before: {exc}"
            c0, s0, t0 = cpu_seconds(ctl.pid), sum(cpu_seconds(p.pid) for p in procs if p is not ctl), time.time()
            phase.alerts = during()
            c1, s1, t1 = cpu_seconds(ctl.pid), sum(cpu_seconds(p.pid) for p in procs if p is not ctl), time.time()
            phase.window = (t0, t1)
            phase.memory = memory_mb(ctl.pid)
            try:
                hist1 = histograms(f"{base}/metrics")
                phase.memory["cache_samples"] = _get_json(f"{base}/healthz")["cache"]["samples"]
            except OSError as exc:
                hist1, phase.error = {}, f"/metrics after: {exc}"
            phase.seconds = round(t1 - t0, 1)
            phase.controller_cpu_s = round(c1 - c0, 2)
            phase.simulator_cpu_s = round(s1 - s0 + phase.alerts.get("cpu_s", 0.0), 2)  # the alert sender reports its own
            phase.load = tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[assignment]
            for key, name in HISTOGRAMS.items():
                if name in hist1:
                    bound, count = bucket_p99(hist0.get(name, {}), hist1[name])
                    phase.controller_p99[key] = {"p99_le_ms": bound * 1e3, "count": count}

        def scrapes_only() -> dict[str, Any]:
            time.sleep(args.seconds)
            return {}

        measure(run.scrapes, scrapes_only)

        def with_alerts() -> dict[str, Any]:
            gen = _spawn("alerts", [*cluster.args(), "--url", f"{base}/alert", "--alerts-per-second",
                                    str(args.alerts_per_second), "--seconds", str(args.seconds),
                                    "--alert-connections", str(args.alert_connections),
                                    *(["--cpu", str(cpus["load"])] if cpus["load"] is not None else [])])
            procs.append(gen)
            out, _ = gen.communicate(timeout=args.seconds + 120)
            procs.remove(gen)
            return json.loads(out.strip().splitlines()[-1]) if out.strip() else {"error": "no output"}

        if args.alerts_per_second > 0:
            measure(run.with_alerts, with_alerts)
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(timeout=120)
        recorded = json.loads(records.read_text()) if records.exists() else {}
        rounds, collected = recorded.get("rounds", []), recorded.get("gc", [])
        for phase in (run.scrapes, run.with_alerts):
            window = phase.window
            if window is None:
                continue
            inside = [r for r in rounds if window[0] <= r["end"] <= window[1]]
            phase.rounds = len(inside)
            phase.cycle_ms = summary_ms([r["cycle_s"] for r in inside])
            phase.job_cpu_ms = summary_ms([r["job_cpu_s"] for r in inside])
            phase.round_s = {k: v / 1e3 for k, v in summary_ms([r["round_s"] for r in inside if "round_s" in r]).items()
                             if k != "n"}
            pauses = [c for c in collected if window[0] <= c[0] <= window[1]]
            phase.gc = {"full": sum(1 for c in pauses if c[1] == 2), "seconds": round(sum(c[2] for c in pauses), 3),
                        "max_ms": round(max((c[2] for c in pauses), default=0.0) * 1e3, 1),
                        "over_20ms": [(round(c[0], 3), c[1], round(c[2] * 1e3, 1)) for c in pauses if c[2] > 0.02]}
            phase.round_ends = [(round(r["end"], 3), round(r["cycle_s"] * 1e3)) for r in inside]
            ups = [r["up"] for r in inside if "up" in r]
            phase.exporters_up = round(statistics.mean(ups) / cluster.nodes, 3) if ups else float("nan")
    except Exception as exc:  # a failed size is reported, the others still run
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if sim.stdout is not None:
            tail = sim.stdout.read().strip().splitlines()
            if tail:
                run.setup["served"] = json.loads(tail[-1]).get("served")
    return run


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_per_round(phase: Phase) -> float:
    return phase.controller_cpu_s / phase.rounds if phase.rounds else float("nan")


def table(runs: Sequence[Run], *, alerts_per_second: float) -> Iterator[str]:
    yield ("nodes | ctrs  | round p50/p99 s | up   | CPU/round s | cycle p50/p99 ms | ctl CPU A/B % | sims CPU A/B % "
           f"| alerts {alerts_per_second:g}/s: answered got/s p50/p99 ms err | ctl p99<= decision/eval ms | RSS MB | load A/B")
    for r in runs:
        a, b = r.scrapes, r.with_alerts
        if r.error:
            yield f"{r.nodes:5d} | {r.nodes * r.containers:5d} | FAILED: {r.error}"
            continue
        al = b.alerts or {}
        lat = al.get("latency_ms", {})
        answered = f"{al.get('answered', 0)}/{al.get('offered', 0)}"
        dec = b.controller_p99.get("decision", {}).get("p99_le_ms", float("nan"))
        ev = b.controller_p99.get("evaluation_alert", {}).get("p99_le_ms", float("nan"))
        yield (f"{r.nodes:5d} | {r.nodes * r.containers:5d} | {a.round_s.get('p50', float('nan')):6.3f}/"
               f"{a.round_s.get('p99', float('nan')):6.3f} | {a.exporters_up:4.2f} | {cpu_per_round(a):11.3f} | "
               f"{a.cycle_ms.get('p50', float('nan')):7.0f}/{a.cycle_ms.get('p99', float('nan')):7.0f} | "
               f"{100 * a.controller_cpu_s / max(a.seconds, 1e-9):5.0f}/{100 * b.controller_cpu_s / max(b.seconds, 1e-9):5.0f} | "
               f"{100 * a.simulator_cpu_s / max(a.seconds, 1e-9):5.0f}/{100 * b.simulator_cpu_s / max(b.seconds, 1e-9):5.0f} | "
               f"{answered:>11} {al.get('achieved_per_s', float('nan')):6.0f} "
               f"{lat.get('p50', float('nan')):7.1f}/{lat.get('p99', float('nan')):7.1f} "
               f"{al.get('errors', 0):4d} | {dec:8.1f}/{ev:6.1f} | {b.memory.get('VmRSS', a.memory.get('VmRSS', float('nan'))):6.0f} | "
               f"{a.load[0]:.1f}/{b.load[0]:.1f}")


def goals(run: Run) -> dict[str, bool]:
    a, b = run.scrapes, run.with_alerts
    rss = max(a.memory.get("VmRSS", 0.0), b.memory.get("VmRSS", 0.0))
    return {
        "round within the interval": a.round_s.get("p99", math.inf) <= GOALS["round_s"] and a.exporters_up >= 0.99,
        "CPU per round <= 1 core-second": cpu_per_round(a) <= GOALS["cpu_per_round_s"],
        "cycle p99 <= 250 ms": max(a.cycle_ms.get("p99", math.inf), b.cycle_ms.get("p99", math.inf)) <= GOALS["cycle_p99_ms"],
        "alert p99 <= 20 ms": (b.alerts or {}).get("latency_ms", {}).get("p99", math.inf) <= GOALS["alert_p99_ms"]
        and not (b.alerts or {}).get("errors", 1),
        "RSS <= 1 GB": 0 < rss <= GOALS["rss_mb"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--role", choices=("bench", "exporters", "controller", "alerts"), default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--nodes", default="100,300,1000", help="node counts, comma-separated")
    parser.add_argument("--containers", type=int, default=30, help="containers per node")
    parser.add_argument("--replicas", type=int, default=10, help="containers per service")
    parser.add_argument("--hot-every", type=int, default=1000, help="one container in this many breaches a rule")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after the first round before measuring")
    parser.add_argument("--alerts-per-second", type=float, default=1000.0)
    parser.add_argument("--alert-connections", type=int, default=0, help="0: one per exporter, as deployed")
    parser.add_argument("--alert-timeout", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="scrape and sweep interval, s")
    parser.add_argument("--prefill", type=int, default=300, help="past samples per container put in the cache first")
    parser.add_argument("--tree", default=str(REPO), help="source tree the controller runs from")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="controller on CPU 1, simulators on CPU 0")
    parser.add_argument("--json", help="also write every figure to this file")
    # roles' own arguments
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--records", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--switch-interval", type=float, default=0.0, help=argparse.SUPPRESS)  # experiments only
    parser.add_argument("--gc-threshold", default="", help=argparse.SUPPRESS)  # experiments only
    parser.add_argument("--gc-unfreeze", action="store_true", help=argparse.SUPPRESS)  # experiments only
    args = parser.parse_args(argv)
    if args.role != "bench":
        args.nodes = int(args.nodes)
        return {"exporters": serve_exporters, "controller": serve_controller, "alerts": send_alerts}[args.role](args)
    logs = Path("results")
    logs.mkdir(exist_ok=True)
    runs = []
    for n in (int(x) for x in args.nodes.split(",")):
        cluster = Cluster(n, args.containers, args.replicas, args.hot_every)
        print(f"--- {n} nodes x {args.containers} containers, controller from {args.tree} "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
        run = run_one(cluster, args, logs)
        runs.append(run)
        print(json.dumps(asdict(run)), flush=True)
    print()
    for line in table(runs, alerts_per_second=args.alerts_per_second):
        print(line)
    for run in runs:
        if not run.error:
            met = goals(run)
            print(f"{run.nodes} nodes: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in met.items()))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
