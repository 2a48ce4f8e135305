"""A fake Docker Engine API for tests: a real HTTP server the `docker` package talks to.

Why: the exporter and the controller must be tested against the wire format and the failure
modes of a real engine (streams, version conflicts, 5xx, slow answers, nodes going down,
start-first updates) without a Docker daemon. It rejects what it does not know: an unknown
route answers 404 and is recorded in `unknown_routes` (the `fake_engine` fixture fails the
test at teardown if any was hit).

Engine profiles (`profile=`, default ENGINE_20_10; ENGINE_MODES for tests run against both):

- ENGINE_20_10 ("api-1.41"): Docker Engine 20.10.24 (Debian 12's docker.io), API 1.12 to 1.41.
- ENGINE_29 ("current"): Docker Engine 29.2.1 as shipped, API 1.44 to 1.53 (29.0-29.2 raised the
  default minimum to 1.44; 29.3 lowered the default to 1.40 again, but an engine may still be run
  with a higher minimum through DOCKER_MIN_API_VERSION, so a client must cope either way).

Per profile, as the engines do (sources: the Engine API version history
https://docs.docker.com/reference/api/engine/version-history/ and the engines' own code,
https://github.com/moby/moby/blob/docker-v29.2.1/daemon/server/middleware/version.go,
.../daemon/server/router/system/system_routes.go, .../daemon/server/router/swarm/helpers.go and
.../daemon/config/config.go, the same files under api/server/ at v20.10.24):

- Every path may carry a version prefix (/v1.44/...); a path without one is served at the
  engine's own (newest) version. A version below the minimum answers 400
  {"message": "client version 1.41 is too old. Minimum supported API version is 1.44, please
  upgrade your client to a newer version"}, one above the newest 400 "client version 1.56 is too
  new. Maximum supported API version is 1.53". Every answer carries Api-Version (the newest),
  Server and Ostype headers; /_ping adds Cache-Control, Pragma, Builder-Version and (29) Swarm.
- /version: Version, ApiVersion, MinAPIVersion, Components[Engine], Os, Arch, KernelVersion...
- /events: the deprecated top-level status / id / from of container events are sent only to
  requests below API 1.52 (API 1.52 changelog). Content-Type: 20.10 always application/json;
  29.2 negotiates on Accept (application/jsonl, application/x-ndjson, application/json-seq,
  else application/json), so `Accept: */*` gets application/jsonl.
- Service create/update bodies are adjusted to the request's version like `adjustForAPIVersion`:
  below API 1.44 HealthConfig.StartInterval is dropped (20.10 does not know the field at all)
  and (29) a top-level Spec.Networks is moved into TaskTemplate.Networks when that is empty;
  from 1.44 on a top-level Networks is ignored. 29 never returns a top-level Spec.Networks (its
  ServiceSpec type has none); 20.10 stores and returns it.

Python API (all methods are thread-safe)::

    with FakeEngine(hostname="node-1", workers=("worker-1", "worker-2")) as fake:
        client = sgcommon.engine.connect(fake.base_url)      # http://127.0.0.1:PORT
        cid = fake.add_container(name="web.1.abc", labels={...}, pid=1234, nano_cpus=10**9)
        fake.stop_container(cid)        # State.Running False, emits "die" (and "stop")
        fake.start_container(cid, pid=4321)  # restarted with a new main pid, emits "start"
        fake.remove_container(cid)      # gone from the API, emits "destroy"
        fake.emit_event({...})          # any event document, pushed to /events streams at once

Containers (this engine's own node only, like a real engine): /containers/json (all=,
filters id/name/label/status), /containers/{id}/json, /events (filters type/container/event/
label, since/until, streamed as JSON lines, chunked), /info (Name = host name, Swarm),
/_ping, /version.

Swarm (the engine is a manager of a fake cluster: its own node plus `workers`):
/nodes, /nodes/{id}, /services, /services/create, /services/{id} (GET, DELETE),
/services/{id}/update?version=N (a stale version answers 500 "update out of sequence" like
swarmkit; every accepted write bumps the version), /tasks (filters service, desired-state,
node, id, name; a service filter naming no service answers 404, as the engine does), /tasks/{id}.
Configs, the same in both profiles (the Config endpoints did not
change from API 1.41 to 1.53: https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Config):
/configs (filters id, name, names, label; Data included), /configs/create (201 {"ID"}; the name
rule, 1 to 1023999 bytes of Data, 409 for a taken name), /configs/{id} (id, name or id prefix),
/configs/{id}/update?version=N (only Labels may change: 400 "only updates to Labels are allowed";
a stale version 500 "update out of sequence"), DELETE /configs/{id} (204; 400 while a service uses
it); all of them 503 unless this engine's node is a manager. Every write to any object takes the
next number of one index, as swarmkit's raft index does. `create_config(name, data, labels)`
stores one from Python (any bytes: for hostile-content tests), `config_labels(name)` reads them.

A scheduler thread (every `tick` seconds) places tasks on ready/active nodes that satisfy
the placement constraints (judged by sgcommon.engine.placement, the matcher the controller uses,
which the lab test checks against a real engine), spreads replicas (fewest tasks of the service first),
scales down as swarmkit does (the nodes with the most copies of the service lose a task first),
replaces tasks whose spec changed or whose node no longer satisfies the constraints, one at a
time, honouring UpdateConfig.Order: start-first (the new task is running, i.e. healthy when the
service has a HEALTHCHECK, before the old one is told to stop) or stop-first (the default).
Relaxing a constraint moves nothing (swarmkit PR#2496). A task with a healthcheck stays
"starting" until healthy. Per-service timings: `set_timing(service, start_delay=, health_delay=,
stop_delay=, healthy=False)` (never healthy: for timeout tests). Tasks of this engine's node get
containers (with the swarm labels) and emit container events.

Services can also be made and changed from Python: `create_service(service_spec("web",
replicas=2, order="start-first", constraints=[...]))`, `update_service(name, version, spec)`,
`service_spec(name)` / `service_version(name)` read them back.

Assertions: `timeline` is a list of `TaskEvent(t, task_id, service, slot, node, state)` in
order; `task_events(service, state=None)` filters it; `running_tasks(service)` gives (task id,
node) pairs; `container_of(task_id)`; `wait_until(predicate, timeout=5)` polls; `requests`
lists (method, path) served, `api_versions` the version prefix of each (None: none). `profile`
may be replaced on a running fake (an engine upgraded in place).

Faults: `fail(method, path_regex, status=500, message=..., times=1, delay=0.0)` answers the next
`times` matching requests with that error (status None: only delay, then answer normally);
`version_conflict(times=1)` makes the next service updates fail "update out of sequence";
`node_down(hostname)` marks the node down; after `orphan_delay` its tasks become "orphaned"
and are replaced elsewhere; `node_up(hostname)` brings it back; `set_availability(hostname,
"drain")` moves its tasks away, "pause" only stops new placements there.
"""
from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sgcommon.engine import placement

OUT_OF_SEQUENCE = "rpc error: code = Unknown desc = update out of sequence"
MAX_CONFIG_SIZE = 1000 * 1024  # swarmkit: a config's Data must be smaller than this
CONFIG_NAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?")
ACTIVE_STATES = ("new", "pending", "assigned", "starting", "running")
TERMINAL_STATES = ("shutdown", "failed", "orphaned", "rejected", "complete")


@dataclass(frozen=True)
class EngineProfile:
    """The version-dependent face of one engine release (see the module docstring)."""

    mode: str  # the test id
    engine_version: str  # /version Version, /info ServerVersion, the Server header
    api_version: str  # the newest (and default) API version
    min_api_version: str
    builder_version: str  # the /_ping Builder-Version header
    events_media_types: tuple[str, ...]  # /events Content-Type offers negotiated on Accept (none: JSON)
    swarm_ping_header: bool  # /_ping carries a Swarm header (unversioned, engine 23.0+)
    legacy_service_networks: bool  # stores and returns a top-level Spec.Networks
    platform_name: str  # /version Platform.Name (Debian's build leaves it empty)

    def speaks(self, version: str, since: str) -> bool:
        """Whether a request at `version` to this engine carries a field that exists from `since` on."""
        return _vt(self.api_version) >= _vt(since) and _vt(version) >= _vt(since)


ENGINE_20_10 = EngineProfile(
    mode="api-1.41", engine_version="20.10.24", api_version="1.41", min_api_version="1.12",
    builder_version="1", events_media_types=(), swarm_ping_header=False, legacy_service_networks=True,
    platform_name="",
)
ENGINE_29 = EngineProfile(
    mode="current", engine_version="29.2.1", api_version="1.53", min_api_version="1.44",
    builder_version="2",
    events_media_types=("application/jsonl", "application/x-ndjson", "application/json-seq"),
    swarm_ping_header=True, legacy_service_networks=False, platform_name="Docker Engine - Community",
)
ENGINE_MODES = (ENGINE_20_10, ENGINE_29)
# The version history: API 1.52 stopped sending these container event fields.
LEGACY_EVENT_FIELDS_UNTIL = "1.52"


def _vt(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class ApiError(Exception):
    """Answered as {"message": ...} with `status`, as the engine does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TaskEvent:
    """One task state change, for asserting orderings (start-first, stop-first)."""

    t: float
    task_id: str
    service: str
    slot: int | None
    node: str | None
    state: str


@dataclass
class Timing:
    """How long a task of one service takes to start, become healthy and stop (seconds)."""

    start_delay: float = 0.02
    health_delay: float = 0.02
    stop_delay: float = 0.02
    healthy: bool = True


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    message: str
    times: int
    delay: float


@dataclass
class _Container:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    node: str
    pid: int
    nano_cpus: int
    cpu_quota: int
    cpu_period: int
    memory: int
    created: float
    running: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int = 0
    health: str | None = None  # None, "starting", "healthy", "unhealthy"


@dataclass
class _Node:
    id: str
    hostname: str
    role: str
    labels: dict[str, str]
    addr: str
    created: float
    state: str = "ready"
    availability: str = "active"
    version: int = 1
    platform_os: str = "linux"
    platform_arch: str = "x86_64"
    engine_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Service:
    id: str
    spec: dict[str, Any]
    version: int
    created: float
    updated: float
    timing: Timing
    updating: tuple[str, str | None] | None = None  # (old task id, new task id)
    slots: set[int] = field(default_factory=set)  # the replica slots the service has (replicated mode)


@dataclass
class _Config:
    id: str
    name: str
    labels: dict[str, str]
    data: bytes
    version: int
    created: float
    updated: float
    extra: dict[str, Any] = field(default_factory=dict)  # Templating, Driver: kept and returned as sent


@dataclass
class _Task:
    id: str
    service_id: str
    slot: int | None
    spec: dict[str, Any]
    created: float
    version: int
    node_id: str | None = None
    state: str = "new"
    desired: str = "running"
    message: str = ""
    updated: float = 0.0
    container_id: str | None = None
    address: str = ""
    due: float | None = None  # when the next transition happens (monotonic)
    orphan_at: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _new_id(n: int = 25) -> str:
    return secrets.token_hex(32)[:n]


def _filters(query: Mapping[str, list[str]]) -> dict[str, list[str]]:
    raw = query.get("filters", [""])[0]
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"invalid filter: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid filter: expected an object")
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        out[key] = list(value.keys()) if isinstance(value, dict) else list(value)
    return out


def _label_match(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _template_key(template: Mapping[str, Any]) -> str:
    """The part of a task template whose change replaces tasks (placement is judged per node)."""
    doc = {k: v for k, v in template.items() if k != "Placement"}
    return json.dumps(doc, sort_keys=True)


def has_healthcheck(template: Mapping[str, Any]) -> bool:
    test = (template.get("ContainerSpec") or {}).get("Healthcheck", {}).get("Test")
    return bool(test) and test != ["NONE"]


class FakeEngine:
    """See the module docstring. Start with `.start()` or use as a context manager."""

    def __init__(
        self,
        hostname: str = "node-1",
        *,
        workers: Iterable[str] = (),
        swarm: bool = True,
        tick: float = 0.005,
        orphan_delay: float = 0.1,
        timing: Timing | None = None,
        profile: EngineProfile = ENGINE_20_10,
    ) -> None:
        self.hostname = hostname
        self.profile = profile
        self.tick = tick
        self.orphan_delay = orphan_delay
        self.default_timing = timing or Timing()
        self.lock = threading.RLock()
        self.unknown_routes: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.api_versions: list[str | None] = []  # the version prefix of each request (None: none)
        self.timeline: list[TaskEvent] = []
        self._swarm = swarm
        self._index = itertools.count(10)
        self._pids = itertools.count(40000)
        self._addresses = itertools.count(2)
        self._containers: dict[str, _Container] = {}
        self._events: list[dict[str, Any]] = []
        self._subscribers: list[queue.Queue[dict[str, Any]]] = []
        self._faults: list[_Fault] = []
        self._nodes: dict[str, _Node] = {}
        self._services: dict[str, _Service] = {}
        self._tasks: dict[str, _Task] = {}
        self._pending_timing: dict[str, Timing] = {}
        self._configs: dict[str, _Config] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        if swarm:
            self.add_node(hostname, role="manager")
            for worker in workers:
                self.add_node(worker)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeEngine:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._schedule_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> FakeEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def assert_no_unknown_routes(self) -> None:
        """Fails if any request hit a route this fake does not know (call it at teardown)."""
        with self.lock:
            unknown = list(self.unknown_routes)
        assert not unknown, f"requests to routes the fake engine does not know: {unknown}"

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeEngine not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- containers ------------------------------------------------------------------
    def add_container(
        self,
        *,
        name: str | None = None,
        image: str = "stressapp:test",
        labels: Mapping[str, str] | None = None,
        pid: int | None = None,
        nano_cpus: int = 0,
        cpu_quota: int = 0,
        cpu_period: int = 0,
        memory: int = 0,
        running: bool = True,
        node: str | None = None,
        health: str | None = None,
    ) -> str:
        """Adds a container (running by default, emitting create and start); returns its id."""
        cid = secrets.token_hex(32)
        with self.lock:
            box = _Container(
                id=cid, name=name or f"c{cid[:8]}", image=image, labels=dict(labels or {}),
                node=node or self.hostname, pid=pid if pid is not None else next(self._pids),
                nano_cpus=nano_cpus, cpu_quota=cpu_quota, cpu_period=cpu_period, memory=memory,
                created=time.time(), health=health,
            )
            self._containers[cid] = box
            self._container_event(box, "create")
            if running:
                self._start_container(box)
        return cid

    def stop_container(self, cid: str, *, exit_code: int = 0) -> None:
        with self.lock:
            box = self._container(cid)
            if box.running:
                box.running = False
                box.finished_at = time.time()
                box.exit_code = exit_code
                self._container_event(box, "die", exitCode=str(exit_code))
                self._container_event(box, "stop")

    def start_container(self, cid: str, *, pid: int | None = None) -> None:
        """(Re)starts a stopped container, with a new main pid (given, or the next fake one); emits "start"."""
        with self.lock:
            box = self._container(cid)
            if not box.running:
                box.pid = pid if pid is not None else next(self._pids)
                self._start_container(box)

    def remove_container(self, cid: str) -> None:
        with self.lock:
            box = self._container(cid)
            self.stop_container(cid)
            del self._containers[cid]
            self._container_event(box, "destroy")

    def set_health(self, cid: str, health: str) -> None:
        with self.lock:
            box = self._container(cid)
            box.health = health
            self._container_event(box, f"health_status: {health}")

    def emit_event(self, doc: Mapping[str, Any]) -> None:
        """Pushes an event document to every /events stream (and the history for since=)."""
        with self.lock:
            event = dict(doc)
            event.setdefault("time", int(time.time()))
            event.setdefault("timeNano", int(time.time() * 1e9))
            self._events.append(event)
            for sub in list(self._subscribers):
                sub.put(event)

    def _container(self, cid: str) -> _Container:
        for key, box in self._containers.items():
            if key == cid or (len(cid) >= 4 and key.startswith(cid)) or box.name == cid.lstrip("/"):
                return box
        raise ApiError(404, f"No such container: {cid}")

    def _start_container(self, box: _Container) -> None:
        box.running = True
        box.started_at = time.time()
        self._container_event(box, "start")

    def _container_event(self, box: _Container, action: str, **extra: str) -> None:
        if box.node != self.hostname:
            return
        attributes = {**box.labels, "name": box.name, "image": box.image, **extra}
        self.emit_event({"Type": "container", "Action": action, "Actor": {"ID": box.id, "Attributes": attributes},
                         "scope": "local"})

    # ---- swarm: nodes, timings, faults ---------------------------------------------------
    def add_node(self, hostname: str, *, role: str = "worker", labels: Mapping[str, str] | None = None) -> str:
        with self.lock:
            node = _Node(
                id=_new_id(), hostname=hostname, role=role, labels=dict(labels or {}),
                addr=f"10.99.0.{10 + len(self._nodes)}", created=time.time(),
            )
            self._nodes[node.id] = node
            return node.id

    def node_down(self, hostname: str) -> None:
        """The node stops answering: state "down"; its tasks are orphaned after `orphan_delay`."""
        with self.lock:
            node = self._node(hostname)
            node.state = "down"
            node.version = next(self._index)
            due = time.monotonic() + self.orphan_delay
            for task in self._tasks.values():
                if task.node_id == node.id and task.desired == "running":
                    task.orphan_at = due

    def node_up(self, hostname: str) -> None:
        """The node answers again; tasks not yet orphaned keep running there."""
        with self.lock:
            node = self._node(hostname)
            node.state = "ready"
            node.version = next(self._index)
            for task in self._tasks.values():
                if task.node_id == node.id:
                    task.orphan_at = None

    def set_availability(self, hostname: str, availability: str) -> None:
        """"active", "pause" (no new tasks) or "drain" (its tasks are moved away too)."""
        with self.lock:
            self._node(hostname).availability = availability

    def set_timing(self, service: str, **kwargs: Any) -> None:
        """Sets start_delay / health_delay / stop_delay / healthy for a service (by name, now or later)."""
        with self.lock:
            svc = self._find_service(service, missing_ok=True)
            if svc is not None:
                for key, value in kwargs.items():
                    setattr(svc.timing, key, value)
            else:
                timing = self._pending_timing.setdefault(service, copy.copy(self.default_timing))
                for key, value in kwargs.items():
                    setattr(timing, key, value)

    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = 500,
        message: str = "fake engine: injected failure",
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The next `times` requests matching METHOD and the path (without the /vX.Y prefix) fail or are slow."""
        with self.lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, message, times, delay))

    def version_conflict(self, *, times: int = 1) -> None:
        self.fail("POST", r"^/services/[^/]+/update$", status=500, message=OUT_OF_SEQUENCE, times=times)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.method == method and fault.times > 0 and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
        return None

    # ---- swarm: reading state for assertions -------------------------------------------
    def task_events(self, service: str, *, state: str | None = None) -> list[TaskEvent]:
        with self.lock:
            return [e for e in self.timeline if e.service == service and (state is None or e.state == state)]

    def service_spec(self, service: str) -> dict[str, Any]:
        """A copy of the service's current spec (see also the module-level `service_spec` builder)."""
        with self.lock:
            svc = self._find_service(service)
            assert svc is not None
            return copy.deepcopy(svc.spec)

    def service_version(self, service: str) -> int:
        with self.lock:
            svc = self._find_service(service)
            assert svc is not None
            return svc.version

    def running_tasks(self, service: str) -> list[tuple[str, str]]:
        """(task id, node host name) of the service's tasks in state running."""
        with self.lock:
            svc = self._find_service(service)
            assert svc is not None
            return [
                (t.id, self._nodes[t.node_id].hostname)
                for t in self._tasks.values()
                if t.service_id == svc.id and t.state == "running" and t.node_id
            ]

    def container_of(self, task_id: str) -> str | None:
        """The container id of a task (None before it was placed)."""
        with self.lock:
            task = self._tasks.get(task_id)
            return task.container_id if task else None

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
        """Polls `predicate` (for tests that must wait for the scheduler); False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(self.tick)
        return predicate()

    def _node(self, key: str) -> _Node:
        for node in self._nodes.values():
            if key in (node.id, node.hostname):
                return node
        raise ApiError(404, f"node {key} not found")

    def _find_service(self, key: str, *, missing_ok: bool = False) -> _Service | None:
        for svc in self._services.values():
            if key in (svc.id, svc.spec.get("Name")) or (len(key) >= 4 and svc.id.startswith(key)):
                return svc
        if missing_ok:
            return None
        raise ApiError(404, f"service {key} not found")

    # ---- swarm: API documents ----------------------------------------------------------
    def _node_doc(self, node: _Node) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ID": node.id, "Version": {"Index": node.version},
            "CreatedAt": _iso(node.created), "UpdatedAt": _iso(node.created),
            "Spec": {"Labels": dict(node.labels), "Role": node.role, "Availability": node.availability},
            "Description": {
                "Hostname": node.hostname, "Platform": {"Architecture": node.platform_arch, "OS": node.platform_os},
                "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 24 << 30},
                "Engine": {"EngineVersion": self.profile.engine_version, "Labels": dict(node.engine_labels)},
            },
            "Status": {"State": node.state, "Addr": node.addr},
        }
        if node.role == "manager":
            doc["ManagerStatus"] = {"Leader": node.hostname == self.hostname, "Reachability": "reachable", "Addr": f"{node.addr}:2377"}
        return doc

    def _service_doc(self, svc: _Service) -> dict[str, Any]:
        spec = copy.deepcopy(svc.spec)
        if not self.profile.legacy_service_networks:
            spec.pop("Networks", None)
        return {
            "ID": svc.id, "Version": {"Index": svc.version},
            "CreatedAt": _iso(svc.created), "UpdatedAt": _iso(svc.updated),
            "Spec": spec, "Endpoint": {"Spec": {}},
        }

    def adjust_spec(self, spec: Any, version: str) -> Any:
        """A service create/update body as the engine takes it at `version` (module docstring)."""
        if not isinstance(spec, dict):
            return spec
        spec = copy.deepcopy(spec)
        template = spec.get("TaskTemplate") if isinstance(spec.get("TaskTemplate"), dict) else {}
        health = (template.get("ContainerSpec") or {}).get("Healthcheck")
        if isinstance(health, dict) and not self.profile.speaks(version, "1.44"):
            health.pop("StartInterval", None)
        if not self.profile.legacy_service_networks:
            legacy = spec.pop("Networks", None)
            if legacy and _vt(version) < _vt("1.44") and not template.get("Networks"):
                template["Networks"] = legacy
        return spec

    def served_event(self, event: Mapping[str, Any], version: str) -> dict[str, Any]:
        """An event as sent to a request at `version`: below 1.52 with the legacy fields."""
        doc = dict(event)
        if _vt(version) < _vt(LEGACY_EVENT_FIELDS_UNTIL) and doc.get("Type") in ("container", "image"):
            actor = doc.get("Actor") or {}
            doc.setdefault("status", doc.get("Action"))
            doc.setdefault("id", actor.get("ID"))
            if doc.get("Type") == "container":
                doc.setdefault("from", (actor.get("Attributes") or {}).get("image"))
        return doc

    def _task_doc(self, task: _Task) -> dict[str, Any]:
        svc = self._services.get(task.service_id)
        doc: dict[str, Any] = {
            "ID": task.id, "Version": {"Index": task.version},
            "CreatedAt": _iso(task.created), "UpdatedAt": _iso(task.updated),
            "Labels": {}, "Spec": copy.deepcopy(task.spec), "ServiceID": task.service_id,
            "Status": {"Timestamp": _iso(task.updated), "State": task.state, "Message": task.message},
            "DesiredState": task.desired,
        }
        if task.slot is not None:
            doc["Slot"] = task.slot
        if task.node_id:
            doc["NodeID"] = task.node_id
        if task.container_id:
            box = self._containers.get(task.container_id)
            doc["Status"]["ContainerStatus"] = {
                "ContainerID": task.container_id, "PID": box.pid if box and box.running else 0,
                "ExitCode": box.exit_code if box else 0,
            }
        if task.address:
            doc["NetworksAttachments"] = [{
                "Network": {"ID": "overlaynet", "Spec": {"Name": "swarmguard"}},
                "Addresses": [task.address],
            }]
        if svc is None:
            doc["Status"]["Message"] = task.message or "removed"
        return doc

    # ---- swarm: writes from the API ------------------------------------------------------
    def _validate_spec(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict) or not spec.get("Name"):
            raise ApiError(400, "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
        template = spec.setdefault("TaskTemplate", {})
        if not isinstance(template.get("ContainerSpec"), dict) or not template["ContainerSpec"].get("Image"):
            raise ApiError(400, "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided")
        for constraint in (template.get("Placement") or {}).get("Constraints") or []:
            _parse_constraint(constraint)
        mode = spec.setdefault("Mode", {"Replicated": {"Replicas": 1}})
        if "Replicated" in mode:
            mode["Replicated"].setdefault("Replicas", 1)
        elif "Global" not in mode:
            raise ApiError(400, "rpc error: code = InvalidArgument desc = unknown service mode")
        spec.setdefault("Labels", {})
        return spec

    def create_service(self, spec: Mapping[str, Any]) -> str:
        with self.lock:
            doc = self._validate_spec(copy.deepcopy(dict(spec)))
            if self._find_service(doc["Name"], missing_ok=True) is not None:
                raise ApiError(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
                                    f"service {doc['Name']} already exists")
            now = time.time()
            timing = self._pending_timing.pop(doc["Name"], None) or copy.copy(self.default_timing)
            svc = _Service(id=_new_id(), spec=doc, version=next(self._index), created=now, updated=now, timing=timing)
            self._services[svc.id] = svc
            return svc.id

    def update_service(self, key: str, version: int, spec: Mapping[str, Any]) -> None:
        with self.lock:
            svc = self._find_service(key)
            assert svc is not None
            if version != svc.version:
                raise ApiError(500, OUT_OF_SEQUENCE)
            doc = self._validate_spec(copy.deepcopy(dict(spec)))
            if doc["Name"] != svc.spec["Name"]:
                raise ApiError(400, "rpc error: code = Unimplemented desc = renaming services is not supported")
            svc.spec = doc
            svc.version = next(self._index)
            svc.updated = time.time()

    def remove_service(self, key: str) -> None:
        with self.lock:
            svc = self._find_service(key)
            assert svc is not None
            del self._services[svc.id]
            for task in self._tasks.values():
                if task.service_id == svc.id:
                    self._set_desired(task, "remove")

    # ---- swarm: configs -------------------------------------------------------------------
    def create_config(self, name: str, data: bytes, labels: Mapping[str, str] | None = None,
                      **extra: Any) -> str:
        """Stores a config as `POST /configs/create` does (same checks and errors); returns its id."""
        with self.lock:
            if not isinstance(name, str) or not CONFIG_NAME_RE.fullmatch(name):
                raise ApiError(400, "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] "
                                    "characters allowed, and the start and end character must be [a-zA-Z0-9]")
            if not 0 < len(data) < MAX_CONFIG_SIZE:
                raise ApiError(400, "rpc error: code = InvalidArgument desc = config data must be larger than 0 "
                                    f"and less than {MAX_CONFIG_SIZE} bytes")
            if any(c.name == name for c in self._configs.values()):
                raise ApiError(409, f"rpc error: code = AlreadyExists desc = config {name} already exists")
            now = time.time()
            config = _Config(id=_new_id(), name=name, labels=dict(labels or {}), data=bytes(data),
                             version=next(self._index), created=now, updated=now, extra=dict(extra))
            self._configs[config.id] = config
            return config.id

    def config_labels(self, key: str) -> dict[str, str]:
        with self.lock:
            return dict(self._find_config(key).labels)

    def _find_config(self, key: str) -> _Config:
        """By id, then name, then unique id prefix (the engine's getConfigByNameOrIDPrefix)."""
        if key in self._configs:
            return self._configs[key]
        for config in self._configs.values():
            if config.name == key:
                return config
        found = [c for c in self._configs.values() if c.id.startswith(key)] if key else []
        if len(found) == 1:
            return found[0]
        raise ApiError(404, f"config {key} not found")

    def _config_doc(self, config: _Config) -> dict[str, Any]:
        spec: dict[str, Any] = {"Name": config.name, "Labels": dict(config.labels),
                                "Data": base64.b64encode(config.data).decode("ascii"), **copy.deepcopy(config.extra)}
        return {"ID": config.id, "Version": {"Index": config.version}, "CreatedAt": _iso(config.created),
                "UpdatedAt": _iso(config.updated), "Spec": spec}

    def _manager_only(self) -> None:
        """The configs API answers only on a manager, as the engine's cluster backend does."""
        me = next((n for n in self._nodes.values() if n.hostname == self.hostname), None)
        if not self._swarm or me is None:
            raise ApiError(503, "This node is not part of a swarm")
        if me.role != "manager":
            raise ApiError(503, "This node is not a swarm manager. Worker nodes can't be used to view or modify "
                                "cluster state. Please run this command on a manager node or promote the current "
                                "node to a manager.")  # Engine 20.10 on a lab worker, word for word

    # ---- swarm: the scheduler ------------------------------------------------------------
    def _schedule_loop(self) -> None:
        while not self._stopping.wait(self.tick):
            with self.lock:
                self._reconcile(time.monotonic())

    def _reconcile(self, now: float) -> None:
        for task in self._tasks.values():  # a drained node's tasks are shut down and replaced elsewhere
            node = self._nodes.get(task.node_id or "")
            if node is not None and node.availability == "drain" and task.desired == "running":
                self._set_desired(task, "shutdown")
        for task in list(self._tasks.values()):
            self._progress(task, now)
        for svc in list(self._services.values()):
            if "Global" in svc.spec["Mode"]:
                self._orchestrate_global(svc)
            else:
                self._orchestrate_replicated(svc)

    def _record(self, task: _Task, state: str, message: str = "") -> None:
        task.state = state
        task.message = message
        task.updated = time.time()
        task.version = next(self._index)
        svc = self._services.get(task.service_id)
        node = self._nodes.get(task.node_id or "")
        self.timeline.append(TaskEvent(
            t=task.updated, task_id=task.id, service=svc.spec["Name"] if svc else task.extras.get("service", ""),
            slot=task.slot, node=node.hostname if node else None, state=state,
        ))

    def _set_desired(self, task: _Task, desired: str) -> None:
        task.desired = desired
        task.version = next(self._index)
        task.due = None

    def _progress(self, task: _Task, now: float) -> None:
        svc = self._services.get(task.service_id)
        timing = svc.timing if svc else self.default_timing
        if task.orphan_at is not None and now >= task.orphan_at and task.state not in TERMINAL_STATES:
            task.orphan_at = None
            self._set_desired(task, "shutdown")
            self._record(task, "orphaned", "task belongs to a node that has been down")
            return
        if task.desired == "running":
            self._advance(task, svc, timing, now)
        elif task.state not in TERMINAL_STATES:
            self._wind_down(task, timing, now)
        elif task.desired == "remove":
            del self._tasks[task.id]

    def _advance(self, task: _Task, svc: _Service | None, timing: Timing, now: float) -> None:
        if svc is None:
            return
        if task.state in ("new", "pending"):
            node = task.extras.get("pinned") or self._pick_node(svc)
            if node is None:
                if task.state != "pending":
                    self._record(task, "pending", "no suitable node (scheduling constraints not satisfied on any node)")
                return
            task.node_id = node.id
            task.address = f"10.0.1.{next(self._addresses)}/24"
            self._create_task_container(task, svc, node)
            self._record(task, "assigned", "scheduler assigned task to node")
            task.due = now + timing.start_delay
        elif task.state == "assigned" and now >= (task.due or 0):
            box = self._containers.get(task.container_id or "")
            if box is not None:
                self._start_container(box)
            if has_healthcheck(task.spec):
                self._record(task, "starting", "starting")
                task.due = now + timing.health_delay if timing.healthy else None
                if box is not None:
                    box.health = "starting"
            else:
                self._record(task, "running", "started")
        elif task.state == "starting" and task.due is not None and now >= task.due:
            box = self._containers.get(task.container_id or "")
            if box is not None:
                box.health = "healthy"
                self._container_event(box, "health_status: healthy")
            self._record(task, "running", "started")

    def _wind_down(self, task: _Task, timing: Timing, now: float) -> None:
        if task.state in ("new", "pending") or task.node_id is None:
            self._record(task, "shutdown", "shutdown before start")
            return
        if self._nodes[task.node_id].state == "down":
            return  # a dead node reports nothing; the task stays as last seen until orphaned
        if task.due is None:
            task.due = now + timing.stop_delay
        elif now >= task.due:
            if task.container_id and task.container_id in self._containers:
                self.stop_container(task.container_id, exit_code=0)
            self._record(task, "shutdown", "shutdown")
            task.due = None

    def _create_task_container(self, task: _Task, svc: _Service, node: _Node) -> None:
        template = task.spec
        cspec = template.get("ContainerSpec") or {}
        limits = (template.get("Resources") or {}).get("Limits") or {}
        labels = {
            **(cspec.get("Labels") or {}),
            "com.docker.swarm.service.id": svc.id, "com.docker.swarm.service.name": svc.spec["Name"],
            "com.docker.swarm.task.id": task.id,
            "com.docker.swarm.task.name": f"{svc.spec['Name']}.{task.slot or node.id}.{task.id}",
            "com.docker.swarm.node.id": node.id,
        }
        cid = secrets.token_hex(32)
        box = _Container(
            id=cid, name=labels["com.docker.swarm.task.name"], image=cspec.get("Image", ""), labels=labels,
            node=node.hostname, pid=next(self._pids), nano_cpus=int(limits.get("NanoCPUs", 0)), cpu_quota=0,
            cpu_period=0, memory=int(limits.get("MemoryBytes", 0)), created=time.time(),
        )
        self._containers[cid] = box
        task.container_id = cid
        self._container_event(box, "create")

    def _eligible(self, svc: _Service, node: _Node) -> bool:
        if node.state != "ready" or node.availability != "active":
            return False
        constraints = (svc.spec["TaskTemplate"].get("Placement") or {}).get("Constraints") or []
        return placement.satisfies(node, constraints)

    def _pick_node(self, svc: _Service) -> _Node | None:
        candidates = [n for n in self._nodes.values() if self._eligible(svc, n)]
        if not candidates:
            return None

        def load(node: _Node) -> tuple[int, int, str]:
            active = [t for t in self._tasks.values() if t.node_id == node.id and t.desired == "running"]
            mine = sum(1 for t in active if t.service_id == svc.id)
            return (mine, len(active), node.hostname)

        return min(candidates, key=load)

    def _new_task(self, svc: _Service, slot: int | None, *, pinned: _Node | None = None) -> _Task:
        task = _Task(
            id=_new_id(), service_id=svc.id, slot=slot, spec=copy.deepcopy(svc.spec["TaskTemplate"]),
            created=time.time(), version=next(self._index), extras={"service": svc.spec["Name"]},
        )
        if pinned is not None:
            task.extras["pinned"] = pinned
        self._tasks[task.id] = task
        self._record(task, "new")
        return task

    def _service_tasks(self, svc: _Service) -> list[_Task]:
        return [t for t in self._tasks.values() if t.service_id == svc.id and t.desired == "running"]

    def _is_dirty(self, svc: _Service, task: _Task) -> bool:
        if _template_key(task.spec) != _template_key(svc.spec["TaskTemplate"]):
            return True
        node = self._nodes.get(task.node_id or "")
        if node is None or node.state != "ready":
            return False
        constraints = (svc.spec["TaskTemplate"].get("Placement") or {}).get("Constraints") or []
        return not placement.satisfies(node, constraints)

    def _orchestrate_replicated(self, svc: _Service) -> None:
        want = int(svc.spec["Mode"]["Replicated"]["Replicas"])
        active = self._service_tasks(svc)
        slots: dict[int, list[_Task]] = {}
        for task in active:
            slots.setdefault(task.slot or 0, []).append(task)
        stopping_first = None  # a stop-first update empties its slot on purpose
        if svc.updating is not None and svc.updating[1] is None and svc.updating[0] in self._tasks:
            stopping_first = self._tasks[svc.updating[0]].slot
        svc.slots |= set(slots)
        free = (n for n in itertools.count(1) if n not in svc.slots)
        while len(svc.slots) < want:  # scale-up: the lowest free slot numbers, as swarmkit's addTasks
            svc.slots.add(next(free))
        if len(svc.slots) > want:
            for slot in self._scale_down_order(svc, slots)[want:]:
                svc.slots.discard(slot)
                for task in slots.get(slot, ()):
                    self._set_desired(task, "shutdown")
        for slot in sorted(svc.slots):  # a new slot, or one whose task ended (orphaned, failed)
            if slot not in slots and slot != stopping_first:
                self._new_task(svc, slot)
        if svc.updating is not None:
            self._continue_update(svc)
            return
        for slot in sorted(s for s in slots if s <= want):
            tasks = slots[slot]
            if len(tasks) == 1 and tasks[0].state == "running" and self._is_dirty(svc, tasks[0]):
                self._start_update(svc, tasks[0])
                return

    def _scale_down_order(self, svc: _Service, slots: Mapping[int, list[_Task]]) -> list[int]:
        """The service's slots, those to keep first, as swarmkit's replicated orchestrator orders them
        for a scale-down (manager/orchestrator/replicated/services.go, slot.go): slots with a running
        task first (then by slot number), each counted as the nth copy of the service on its node;
        slots without exactly one placed task last. The tail is removed: the nodes with the most
        copies lose a task first, and a task not placed yet before any."""
        def running(slot: int) -> bool:
            return any(t.state == "running" for t in slots.get(slot, ()))

        ordered = sorted(svc.slots, key=lambda slot: (not running(slot), slot))
        copies: dict[str, int] = {}
        index: dict[int, int] = {}
        for slot in ordered:
            tasks = slots.get(slot, [])
            if len(tasks) == 1 and tasks[0].node_id:
                copies[tasks[0].node_id] = copies.get(tasks[0].node_id, 0) + 1
                index[slot] = copies[tasks[0].node_id]
        return sorted(ordered, key=lambda slot: (slot not in index, index.get(slot, 0)))

    def _start_update(self, svc: _Service, old: _Task) -> None:
        order = (svc.spec.get("UpdateConfig") or {}).get("Order", "stop-first")
        if order == "start-first":
            new = self._new_task(svc, old.slot)
            svc.updating = (old.id, new.id)
        else:
            self._set_desired(old, "shutdown")
            svc.updating = (old.id, None)

    def _continue_update(self, svc: _Service) -> None:
        assert svc.updating is not None
        old_id, new_id = svc.updating
        old = self._tasks.get(old_id)
        if new_id is None:  # stop-first: start the replacement once the old task is down
            if old is None or old.state in TERMINAL_STATES:
                svc.updating = None
                self._new_task(svc, old.slot if old else None)
            return
        new = self._tasks.get(new_id)
        if new is None or new.desired != "running":
            svc.updating = None
            return
        if new.state == "running" and old is not None and old.desired == "running":
            self._set_desired(old, "shutdown")
        if old is None or old.state in TERMINAL_STATES:
            svc.updating = None

    def _orchestrate_global(self, svc: _Service) -> None:
        active = self._service_tasks(svc)
        by_node = {t.extras["pinned"].id: t for t in active if "pinned" in t.extras}
        for node in self._nodes.values():
            eligible = self._eligible(svc, node)
            if eligible and node.id not in by_node:
                self._new_task(svc, None, pinned=node)
            elif not eligible and node.id in by_node and node.state == "ready":
                self._set_desired(by_node[node.id], "shutdown")

    # ---- HTTP routes ---------------------------------------------------------------------
    def version_refusal(self, version: str | None) -> str | None:
        """The engine's 400 message for a request at `version`, None when it is served."""
        if version is None:
            return None
        if _vt(version) < _vt(self.profile.min_api_version):
            return (f"client version {version} is too old. Minimum supported API version is "
                    f"{self.profile.min_api_version}, please upgrade your client to a newer version")
        if _vt(version) > _vt(self.profile.api_version):
            return f"client version {version} is too new. Maximum supported API version is {self.profile.api_version}"
        return None

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               *, version: str | None = None) -> tuple[int, Any]:
        """Routes one request at `version` (None: the engine's own); returns (status, JSON document
        or str). /events is handled apart."""
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                if name in ("_r_service_create", "_r_service_update"):
                    body = self.adjust_spec(body, version or self.profile.api_version)
                with self.lock:
                    answer: tuple[int, Any] = getattr(self, name)(query, body, *[unquote(g) for g in match.groups()])
                    return answer
        with self.lock:
            self.unknown_routes.append(f"{method} {path}")
        return 404, {"message": "page not found"}

    def _r_ping(self, q: Any, b: Any) -> tuple[int, Any]:
        return 200, "OK"

    def _r_version(self, q: Any, b: Any) -> tuple[int, Any]:
        p = self.profile
        details = {"ApiVersion": p.api_version, "MinAPIVersion": p.min_api_version, "Os": "linux", "Arch": "amd64",
                   "GitCommit": "fake", "GoVersion": "go1.0", "KernelVersion": "6.1.0", "Experimental": "false",
                   "BuildTime": "2025-01-01T00:00:00.000000000+00:00"}
        return 200, {
            "Platform": {"Name": p.platform_name},
            "Components": [{"Name": "Engine", "Version": p.engine_version, "Details": details}],
            "Version": p.engine_version, "ApiVersion": p.api_version, "MinAPIVersion": p.min_api_version,
            "GitCommit": "fake", "GoVersion": "go1.0", "Os": "linux", "Arch": "amd64", "KernelVersion": "6.1.0",
            "BuildTime": "2025-01-01T00:00:00.000000000+00:00",
        }

    def swarm_status(self) -> str:
        """The /_ping Swarm header: "inactive", "active/manager" or "active/worker"."""
        with self.lock:
            me = next((n for n in self._nodes.values() if n.hostname == self.hostname), None)
            if not self._swarm or me is None:
                return "inactive"
            return f"active/{me.role}"

    def _r_info(self, q: Any, b: Any) -> tuple[int, Any]:
        me = next((n for n in self._nodes.values() if n.hostname == self.hostname), None)
        swarm: dict[str, Any] = {"LocalNodeState": "inactive", "NodeID": "", "ControlAvailable": False}
        if self._swarm and me is not None:
            swarm = {
                "LocalNodeState": "active", "NodeID": me.id, "NodeAddr": me.addr, "ControlAvailable": me.role == "manager",
                "Nodes": len(self._nodes), "Managers": sum(1 for n in self._nodes.values() if n.role == "manager"),
                "Cluster": {"ID": "fakecluster"},
            }
        running = sum(1 for c in self._containers.values() if c.node == self.hostname and c.running)
        mine = sum(1 for c in self._containers.values() if c.node == self.hostname)
        return 200, {
            "ID": "FAKE:ENGINE", "Name": self.hostname, "NCPU": 2, "MemTotal": 24 << 30, "ServerVersion": self.profile.engine_version,
            "Containers": mine, "ContainersRunning": running, "CgroupVersion": "1", "CgroupDriver": "cgroupfs",
            "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "Swarm": swarm,
        }

    def _r_containers(self, q: dict[str, list[str]], b: Any) -> tuple[int, Any]:
        filters = _filters(q)
        show_all = q.get("all", ["0"])[0] in ("1", "true", "True")
        out = []
        for box in self._containers.values():
            if box.node != self.hostname or not (box.running or show_all):
                continue
            status = "running" if box.running else ("created" if box.started_at is None else "exited")
            if "status" in filters and status not in filters["status"]:
                continue
            if "id" in filters and not any(box.id.startswith(i) for i in filters["id"]):
                continue
            if "name" in filters and not any(n.lstrip("/") in box.name for n in filters["name"]):
                continue
            if "label" in filters and not _label_match(box.labels, filters["label"]):
                continue
            out.append({
                "Id": box.id, "Names": [f"/{box.name}"], "Image": box.image, "ImageID": "sha256:" + "0" * 64,
                "Command": "python3 -m stressapp", "Created": int(box.created), "State": status,
                "Status": "Up" if box.running else f"Exited ({box.exit_code})", "Labels": dict(box.labels),
                "Ports": [], "Mounts": [], "HostConfig": {"NetworkMode": "default"},
                "NetworkSettings": {"Networks": {}},
            })
        return 200, out

    def _r_container(self, q: Any, b: Any, cid: str) -> tuple[int, Any]:
        box = self._container(cid)
        if box.node != self.hostname:
            raise ApiError(404, f"No such container: {cid}")
        state: dict[str, Any] = {
            "Status": "running" if box.running else ("created" if box.started_at is None else "exited"),
            "Running": box.running, "Paused": False, "Restarting": False, "OOMKilled": False, "Dead": False,
            "Pid": box.pid if box.running else 0, "ExitCode": box.exit_code, "Error": "",
            "StartedAt": _iso(box.started_at), "FinishedAt": _iso(box.finished_at),
        }
        if box.health is not None:
            state["Health"] = {"Status": box.health, "FailingStreak": 0, "Log": []}
        return 200, {
            "Id": box.id, "Created": _iso(box.created), "Name": f"/{box.name}", "State": state,
            "Image": "sha256:" + "0" * 64, "RestartCount": 0,
            "Config": {"Hostname": box.id[:12], "Image": box.image, "Labels": dict(box.labels), "Env": []},
            "HostConfig": {
                "NanoCpus": box.nano_cpus, "CpuQuota": box.cpu_quota, "CpuPeriod": box.cpu_period,
                "Memory": box.memory, "CpuShares": 0,
            },
            "NetworkSettings": {"Networks": {}},
        }

    def _r_nodes(self, q: dict[str, list[str]], b: Any) -> tuple[int, Any]:
        filters = _filters(q)
        out = []
        for node in self._nodes.values():
            if "id" in filters and node.id not in filters["id"]:
                continue
            if "name" in filters and node.hostname not in filters["name"]:
                continue
            if "role" in filters and node.role not in filters["role"]:
                continue
            if "node.label" in filters and not _label_match(node.labels, filters["node.label"]):
                continue
            out.append(self._node_doc(node))
        return 200, out

    def _r_node(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        return 200, self._node_doc(self._node(key))

    def _r_services(self, q: dict[str, list[str]], b: Any) -> tuple[int, Any]:
        filters = _filters(q)
        out = []
        for svc in self._services.values():
            if "id" in filters and not any(svc.id.startswith(i) for i in filters["id"]):
                continue
            if "name" in filters and not any(svc.spec["Name"].startswith(n) for n in filters["name"]):
                continue
            if "label" in filters and not _label_match(svc.spec.get("Labels") or {}, filters["label"]):
                continue
            if "mode" in filters and not any(m.capitalize() in svc.spec["Mode"] for m in filters["mode"]):
                continue
            out.append(self._service_doc(svc))
        return 200, out

    def _r_service_create(self, q: Any, body: Any) -> tuple[int, Any]:
        return 201, {"ID": self.create_service(body)}

    def _r_service(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        svc = self._find_service(key)
        assert svc is not None
        return 200, self._service_doc(svc)

    def _r_service_update(self, q: dict[str, list[str]], body: Any, key: str) -> tuple[int, Any]:
        raw = q.get("version", [""])[0]
        if not raw.isdigit():
            raise ApiError(400, f"invalid service version '{raw}'")
        self.update_service(key, int(raw), body)
        return 200, {"Warnings": None}

    def _r_service_delete(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        self.remove_service(key)
        return 200, ""

    def _r_tasks(self, q: dict[str, list[str]], b: Any) -> tuple[int, Any]:
        filters = _filters(q)
        services = None
        if "service" in filters:
            services = {s.id for s in self._services.values() if s.id in filters["service"] or s.spec["Name"] in filters["service"]}
            for key in filters["service"]:  # the engine resolves each service first (moby daemon/cluster/tasks.go)
                if self._find_service(key, missing_ok=True) is None:
                    raise ApiError(404, f"service {key} not found")
        nodes = None
        if "node" in filters:
            nodes = {n.id for n in self._nodes.values() if n.id in filters["node"] or n.hostname in filters["node"]}
        out = []
        for task in self._tasks.values():
            if services is not None and task.service_id not in services:
                continue
            if nodes is not None and task.node_id not in nodes:
                continue
            if "desired-state" in filters and task.desired not in filters["desired-state"]:
                continue
            if "id" in filters and task.id not in filters["id"]:
                continue
            out.append(self._task_doc(task))
        return 200, out

    def _r_task(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        task = self._tasks.get(key)
        if task is None:
            raise ApiError(404, f"task {key} not found")
        return 200, self._task_doc(task)

    def _r_configs(self, q: dict[str, list[str]], b: Any) -> tuple[int, Any]:
        self._manager_only()
        filters = _filters(q)
        out = []
        for config in self._configs.values():
            if "id" in filters and not any(config.id.startswith(i) for i in filters["id"]):
                continue
            if "name" in filters and not any(config.name.startswith(n) for n in filters["name"]):
                continue
            if "names" in filters and config.name not in filters["names"]:
                continue
            if "label" in filters and not _label_match(config.labels, filters["label"]):
                continue
            out.append(self._config_doc(config))
        return 200, out

    def _r_config_create(self, q: Any, body: Any) -> tuple[int, Any]:
        self._manager_only()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid JSON body")
        data = _spec_data(body.get("Data"))
        extra = {k: v for k, v in body.items() if k in ("Templating", "Driver")}
        return 201, {"ID": self.create_config(body.get("Name") or "", data, body.get("Labels") or {}, **extra)}

    def _r_config(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        self._manager_only()
        return 200, self._config_doc(self._find_config(key))

    def _r_config_update(self, q: dict[str, list[str]], body: Any, key: str) -> tuple[int, Any]:
        self._manager_only()
        raw = q.get("version", [""])[0]
        if not raw.isdigit():
            raise ApiError(400, "invalid config version")
        config = self._find_config(key)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid JSON body")
        data = body.get("Data")
        if body.get("Name") != config.name or (data is not None and _spec_data(data) != config.data):
            raise ApiError(400, "rpc error: code = InvalidArgument desc = only updates to Labels are allowed")
        if int(raw) != config.version:  # swarmkit checks the version last, in the store's update
            raise ApiError(500, OUT_OF_SEQUENCE)
        config.labels = dict(body.get("Labels") or {})
        config.version = next(self._index)
        config.updated = time.time()
        return 200, ""

    def _r_config_delete(self, q: Any, b: Any, key: str) -> tuple[int, Any]:
        self._manager_only()
        config = self._find_config(key)
        users = [svc.spec["Name"] for svc in self._services.values()
                 if any(ref.get("ConfigID") == config.id
                        for ref in ((svc.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Configs") or [])]
        if users:
            raise ApiError(400, f"rpc error: code = InvalidArgument desc = config '{config.name}' is in use by the "
                                f"following service{'s' if len(users) > 1 else ''}: {', '.join(users)}")
        del self._configs[config.id]
        return 204, ""

    # ---- /events -------------------------------------------------------------------------
    def event_matches(self, event: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
        if "type" in filters and event.get("Type") not in filters["type"]:
            return False
        actor = event.get("Actor") or {}
        if "container" in filters:
            name = (actor.get("Attributes") or {}).get("name", "")
            if not any(actor.get("ID", "").startswith(c) or c == name for c in filters["container"]):
                return False
        if "event" in filters and event.get("Action") not in filters["event"]:
            return False
        if "label" in filters and not _label_match(actor.get("Attributes") or {}, filters["label"]):
            return False
        return True

    def subscribe(self, since: float | None) -> tuple[list[dict[str, Any]], queue.Queue[dict[str, Any]]]:
        with self.lock:
            past = [e for e in self._events if since is not None and e["timeNano"] / 1e9 >= since]
            sub: queue.Queue[dict[str, Any]] = queue.Queue()
            self._subscribers.append(sub)
            return past, sub

    def unsubscribe(self, sub: queue.Queue[dict[str, Any]]) -> None:
        with self.lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()


def _spec_data(raw: Any) -> bytes:
    """A ConfigSpec's Data as the engine's JSON decoding reads it: standard base64, else a 400."""
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise ApiError(400, "json: cannot unmarshal into Go struct field ConfigSpec.Data of type []uint8")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "illegal base64 data at input byte 0") from None


def _parse_constraint(text: str) -> None:
    """Refuses an expression as Engine 20.10 does when a service is created or updated: a 500
    "rpc error: code = Unknown" (swarmkit returns the parser's error unwrapped)."""
    try:
        placement.parse(text)
    except placement.ConstraintError as exc:
        raise ApiError(500, f"rpc error: code = Unknown desc = {exc}") from None


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), n)
    for m, p, n in [
        ("GET", r"^/_ping$", "_r_ping"),
        ("HEAD", r"^/_ping$", "_r_ping"),
        ("GET", r"^/version$", "_r_version"),
        ("GET", r"^/info$", "_r_info"),
        ("GET", r"^/containers/json$", "_r_containers"),
        ("GET", r"^/containers/([^/]+)/json$", "_r_container"),
        ("GET", r"^/nodes$", "_r_nodes"),
        ("GET", r"^/nodes/([^/]+)$", "_r_node"),
        ("GET", r"^/services$", "_r_services"),
        ("POST", r"^/services/create$", "_r_service_create"),
        ("GET", r"^/services/([^/]+)$", "_r_service"),
        ("POST", r"^/services/([^/]+)/update$", "_r_service_update"),
        ("DELETE", r"^/services/([^/]+)$", "_r_service_delete"),
        ("GET", r"^/tasks$", "_r_tasks"),
        ("GET", r"^/tasks/([^/]+)$", "_r_task"),
        ("GET", r"^/configs$", "_r_configs"),
        ("POST", r"^/configs/create$", "_r_config_create"),
        ("GET", r"^/configs/([^/]+)$", "_r_config"),
        ("POST", r"^/configs/([^/]+)/update$", "_r_config_update"),
        ("DELETE", r"^/configs/([^/]+)$", "_r_config_delete"),
    ]
]


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive, as the engine does; /events is chunked and streamed."""

    protocol_version = "HTTP/1.1"
    fake: FakeEngine

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def version_string(self) -> str:
        """The Server header, as the engine's version middleware sets it."""
        return f"Docker/{self.fake.profile.engine_version} (linux)"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        prefix = re.match(r"^/v(\d+\.\d+)(?=/)", parts.path)
        version = prefix.group(1) if prefix else None
        path = parts.path[prefix.end():] if prefix else parts.path
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with self.fake.lock:
            self.fake.requests.append((method, path))
            self.fake.api_versions.append(version)
        refusal = self.fake.version_refusal(version)  # the engine's version middleware runs first
        if refusal is not None:
            self._send(400, {"message": refusal}, head=method == "HEAD")
            return
        fault = self.fake._take_fault(method, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                self._send(fault.status, {"message": fault.message})
                return
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            self._send(400, {"message": "invalid JSON body"})
            return
        served_at = version or self.fake.profile.api_version
        if method == "GET" and path == "/events":
            self._events(query, served_at)
            return
        try:
            status, doc = self.fake.handle(method, path, query, body, version=served_at)
        except ApiError as exc:
            status, doc = exc.status, {"message": exc.message}
        extra = self._ping_headers() if path == "/_ping" and status == 200 else {}
        self._send(status, doc, head=method == "HEAD", headers=extra)

    def _ping_headers(self) -> dict[str, str]:
        profile = self.fake.profile
        headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                   "Builder-Version": profile.builder_version, "Docker-Experimental": "false"}
        if profile.swarm_ping_header:
            headers["Swarm"] = self.fake.swarm_status()
        return headers

    def _common_headers(self) -> None:
        """What the engine's version middleware sets on every answer."""
        profile = self.fake.profile
        self.send_header("Api-Version", profile.api_version)
        self.send_header("Ostype", "linux")

    def _send(self, status: int, doc: Any, *, head: bool = False, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(doc, str):
            data, ctype = doc.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(doc).encode() + b"\n", "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", "0" if head else str(len(data)))
        self._common_headers()
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _events_media_type(self) -> str:
        """The /events Content-Type for this request's Accept header, as the profile's engine picks it."""
        offers = self.fake.profile.events_media_types
        accepted = [part.split(";")[0].strip() for part in (self.headers.get("Accept") or "").split(",") if part.strip()]
        for offer in offers:
            if offer in accepted:
                return offer
        if offers and any(a in ("*/*", "application/*") for a in accepted):
            return offers[0]
        return "application/json"

    def _events(self, query: dict[str, list[str]], version: str) -> None:
        try:
            filters = _filters(query)
            since = float(query["since"][0]) if query.get("since", [""])[0] else None
            until = float(query["until"][0]) if query.get("until", [""])[0] else None
        except (ApiError, ValueError) as exc:
            self._send(400, {"message": f"invalid events query: {exc}"})
            return
        media_type = self._events_media_type()
        past, sub = self.fake.subscribe(since if since is not None else (time.time() if until is not None else None))
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Transfer-Encoding", "chunked")
            self._common_headers()
            self.end_headers()
            self.wfile.flush()
            for event in past:
                if until is not None and event["timeNano"] / 1e9 > until:
                    break
                self._chunk(event, filters, version=version, media_type=media_type)
            while not self.fake.stopping and (until is None or time.time() < until):
                try:
                    event = sub.get(timeout=0.05)
                except queue.Empty:
                    continue
                if until is not None and event["timeNano"] / 1e9 > until:
                    break
                self._chunk(event, filters, version=version, media_type=media_type)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client closed the stream
        finally:
            self.fake.unsubscribe(sub)

    def _chunk(self, event: Mapping[str, Any], filters: Mapping[str, list[str]], *, version: str, media_type: str) -> None:
        if not self.fake.event_matches(event, filters):
            return
        data = json.dumps(self.fake.served_event(event, version)).encode() + b"\n"
        if media_type == "application/json-seq":  # RFC 7464: each record starts with RS
            data = b"\x1e" + data
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def service_spec(
    name: str,
    *,
    replicas: int | None = 1,
    healthcheck: bool = True,
    order: str | None = None,
    constraints: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    image: str = "10.99.0.1:5000/stressapp:test",
) -> dict[str, Any]:
    """A service spec as the engine takes it (replicas None: global mode), for `create_service`."""
    container: dict[str, Any] = {"Image": image}
    if healthcheck:
        container["Healthcheck"] = {"Test": ["CMD", "curl", "-fs", "http://localhost:8080/health"], "Interval": 1_000_000_000}
    spec: dict[str, Any] = {
        "Name": name,
        "Labels": dict(labels or {}),
        "TaskTemplate": {"ContainerSpec": container, "Placement": {"Constraints": list(constraints)}},
        "Mode": {"Global": {}} if replicas is None else {"Replicated": {"Replicas": replicas}},
    }
    if order:
        spec["UpdateConfig"] = {"Parallelism": 1, "Order": order}
    return spec
