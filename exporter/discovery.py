"""Which containers run on this node, kept current from the engine's event stream.

List once, then follow `start` / `die` / `destroy` events instead of re-listing every tick
(listing and inspecting cost the engine far more than reading a cgroup file). A `start`
re-inspects the container, so a restarted container gets its new main pid. When the engine
goes away (restart, socket gone) the watcher backs off, reconnects and lists again; until
then the last known inventory stays in place so collection goes on. An inspect answer that
cannot be understood (a field missing or of the wrong type) skips that one container, counted
as an `engine` error and logged once per container.

The exporter only reads from the engine: list containers, inspect, events, info (and the
client's version negotiation). It never creates, changes or removes anything.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import docker

from sgcommon.engine import EngineError, NotFound, connect
from sgcommon.engine import containers as engine_containers
from sgcommon.engine.containers import ContainerEvent, LocalContainer
from sgcommon.jsonlog import OnceLogger, event, get_logger

log = get_logger("swarmguard.exporter.discovery")


class Inventory:
    """The running containers by id, and the node name; a thread-safe copy-on-write map."""

    def __init__(self, node: str = "") -> None:
        self._lock = threading.Lock()
        self._containers: dict[str, LocalContainer] = {}
        self.node = node

    def snapshot(self) -> dict[str, LocalContainer]:
        return self._containers  # replaced, never mutated: safe to iterate without the lock

    def replace(self, containers: dict[str, LocalContainer]) -> None:
        with self._lock:
            self._containers = dict(containers)

    def put(self, c: LocalContainer) -> None:
        with self._lock:
            self._containers = {**self._containers, c.id: c}

    def remove(self, container_id: str) -> None:
        with self._lock:
            if container_id in self._containers:
                self._containers = {k: v for k, v in self._containers.items() if k != container_id}


class Discovery:
    """A thread that fills an Inventory from the engine at `base_url` (None: DOCKER_HOST or the socket)."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        base_url: str | None = None,
        node_name: str = "",
        on_error: Callable[[str], None] = lambda kind: None,
        backoff: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        self.inventory = inventory
        self.ready = threading.Event()  # set after the first successful listing
        self._base_url = base_url
        self._fixed_node = node_name
        self._on_error = on_error
        self._backoff = backoff
        self._stop = threading.Event()
        self._stream: engine_containers.EventStream | None = None
        self._once = OnceLogger(log)
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)

    def start(self) -> Discovery:
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            client = None
            try:
                client = connect(self._base_url, timeout=5.0)
                self._follow(client)
                delay = self._backoff[0]
            except EngineError as exc:
                if self._stop.is_set():
                    break
                self._on_error("engine")
                self._once.warn("engine", "engine lost, reconnecting", error=str(exc), retry_in=delay)
            finally:
                if client is not None:
                    client.close()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self._backoff[1])

    def _follow(self, client: docker.APIClient) -> None:
        node = self._fixed_node or engine_containers.node_name(client)
        since = time.time()
        self.inventory.node = node
        found = {}
        for cid in engine_containers.list_running(client):
            meta = self._inspect(client, cid)
            if meta is not None:
                found[cid] = meta
        self._stream = engine_containers.EventStream(client, since=since - 1.0)
        self.inventory.replace(found)
        self.ready.set()
        self._once.clear("engine", "engine reachable, containers listed", node=node, containers=len(found))
        event(log, "containers listed", node=node, containers=len(found))
        try:
            for ev in self._stream:
                if self._stop.is_set():
                    return
                self._apply(client, ev)
        finally:
            self._stream.close()
            self._stream = None

    def _apply(self, client: docker.APIClient, ev: ContainerEvent) -> None:
        if ev.action == "start":
            meta = self._inspect(client, ev.container_id)
            if meta is not None:
                self.inventory.put(meta)
        else:
            self.inventory.remove(ev.container_id)

    def _inspect(self, client: docker.APIClient, cid: str) -> LocalContainer | None:
        try:
            meta = engine_containers.inspect(client, cid)
        except NotFound:
            return None  # gone between the listing (or the event) and the inspect
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # an answer we cannot read
            self._on_error("engine")
            self._once.warn(f"inspect:{cid}", "container inspect not understood, skipped", container_id=cid,
                            error=f"{type(exc).__name__}: {exc}"[:300])
            return None
        return meta if meta.pid > 0 else None
