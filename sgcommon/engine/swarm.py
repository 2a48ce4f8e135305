"""The Swarm half of the one Docker adapter: nodes, services, tasks and safe service updates.

Why it exists: every write to a service must re-read it right before writing and carry its
version (a stale version fails "update out of sequence":
https://github.com/docker/docker-py/issues/1848), should survive a transient
5xx, and the rest of the controller should see small frozen views instead of engine JSON.
One method maps to one endpoint family (configs included: `configs.py`); every call runs inside
`errors.translate`.

Updates are expressed as a function that edits a fresh copy of the service spec (`update`);
`scale` and `update_placement` are thin uses of it. An edit that changes nothing is not written
(so a retried update that already landed is not applied twice). The whole spec as read goes back,
edited, as the request body: docker-py's `update_service` rebuilds it from a few keys and drops
the rest (the deprecated top-level `Networks` an API 1.41 engine still returns). A spec that sets
a field the negotiated API version lacks is refused before the write, since the engine would drop
that field silently (`versions.SERVICE_SPEC_FIELDS`, docs/engine-api.md).
"""
from __future__ import annotations

import copy
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import quote

import docker
import docker.errors
import requests

from sgcommon.engine import versions
from sgcommon.engine.configs import ConfigView, config_spec, config_view
from sgcommon.engine.errors import OutOfSequence, ServerError, UnsupportedVersion, translate
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.engine.swarm")
T = TypeVar("T")
DEFAULT_BACKOFF = (0.1, 0.3, 0.9)
STOPPED_STATES = frozenset({"shutdown", "failed", "rejected", "orphaned", "complete", "remove"})


@dataclass(frozen=True)
class NodeView:
    id: str
    hostname: str
    role: str
    state: str  # "ready", "down", "unknown", "disconnected"
    availability: str  # "active", "pause", "drain"
    labels: Mapping[str, str] = field(default_factory=dict)
    addr: str = ""
    platform_os: str = ""  # Description.Platform.OS, e.g. "linux"
    platform_arch: str = ""  # Description.Platform.Architecture, e.g. "x86_64"
    engine_labels: Mapping[str, str] = field(default_factory=dict)  # the engine's own (daemon) labels

    @property
    def schedulable(self) -> bool:
        """Ready and active: Swarm may place new tasks here."""
        return self.state == "ready" and self.availability == "active"


@dataclass(frozen=True)
class ServiceView:
    id: str
    name: str
    version: int
    replicas: int | None  # None for a global-mode service
    labels: Mapping[str, str]
    constraints: tuple[str, ...]
    update_order: str  # "stop-first" (the engine's default) or "start-first"
    has_healthcheck: bool
    image: str = ""


@dataclass(frozen=True)
class TaskView:
    id: str
    service_id: str
    node_id: str | None
    node_hostname: str | None
    slot: int | None
    state: str
    desired_state: str
    container_id: str | None
    created_at: str
    status_at: str  # Status.Timestamp: when the task entered `state`
    message: str = ""
    addresses: tuple[str, ...] = ()

    @property
    def stopped(self) -> bool:
        """In a final state: this task will not run (again)."""
        return self.state in STOPPED_STATES


def engine_time(text: str) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds, e.g. TaskView.status_at) as Unix seconds."""
    whole, _, rest = text.rstrip("Z").partition(".")
    try:
        base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    digits = "".join(itertools.takewhile(str.isdigit, rest))
    return base + (float(f"0.{digits}") if digits else 0.0)


def service_view(doc: Mapping[str, Any]) -> ServiceView:
    spec = doc.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    mode = spec.get("Mode") or {}
    replicas = None if "Global" in mode else int((mode.get("Replicated") or {}).get("Replicas", 1))
    test = ((template.get("ContainerSpec") or {}).get("Healthcheck") or {}).get("Test")
    return ServiceView(
        id=doc["ID"],
        name=spec.get("Name", ""),
        version=int((doc.get("Version") or {}).get("Index", 0)),
        replicas=replicas,
        labels=dict(spec.get("Labels") or {}),
        constraints=tuple((template.get("Placement") or {}).get("Constraints") or ()),
        update_order=(spec.get("UpdateConfig") or {}).get("Order") or "stop-first",
        has_healthcheck=bool(test) and test != ["NONE"],
        image=(template.get("ContainerSpec") or {}).get("Image", ""),
    )


def node_view(doc: Mapping[str, Any]) -> NodeView:
    spec = doc.get("Spec") or {}
    status = doc.get("Status") or {}
    description = doc.get("Description") or {}
    platform = description.get("Platform") or {}
    return NodeView(
        id=doc["ID"],
        hostname=description.get("Hostname", ""),
        role=spec.get("Role", "worker"),
        state=status.get("State", "unknown"),
        availability=spec.get("Availability", "active"),
        labels=dict(spec.get("Labels") or {}),
        addr=status.get("Addr", ""),
        platform_os=platform.get("OS", ""),
        platform_arch=platform.get("Architecture", ""),
        engine_labels=dict((description.get("Engine") or {}).get("Labels") or {}),
    )


def task_view(doc: Mapping[str, Any], hostnames: Mapping[str, str]) -> TaskView:
    status = doc.get("Status") or {}
    node_id = doc.get("NodeID") or None
    addresses = tuple(a for att in doc.get("NetworksAttachments") or () for a in att.get("Addresses") or ())
    return TaskView(
        id=doc["ID"],
        service_id=doc.get("ServiceID", ""),
        node_id=node_id,
        node_hostname=hostnames.get(node_id or ""),
        slot=doc.get("Slot"),
        state=status.get("State", "unknown"),
        desired_state=doc.get("DesiredState", ""),
        container_id=(status.get("ContainerStatus") or {}).get("ContainerID") or None,
        created_at=doc.get("CreatedAt", ""),
        status_at=status.get("Timestamp", ""),
        message=status.get("Message", ""),
        addresses=addresses,
    )


SpecEdit = Callable[[dict[str, Any]], None]


class SwarmAdapter:
    """Reads and writes Swarm objects through a low-level `docker.APIClient` (see module docstring).

    `client` is a client, or a function that opens one (e.g. `lambda: connect(url)`): then the
    adapter connects, and so negotiates the API version, at its first call, so a process can start
    before the engine answers; and when the engine refuses the negotiated version (it was upgraded
    or reconfigured under us) the call raises UnsupportedVersion and the next call negotiates anew.
    """

    def __init__(
        self,
        client: docker.APIClient | Callable[[], docker.APIClient],
        *,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open = None if isinstance(client, docker.APIClient) else client
        self._current: docker.APIClient | None = client if isinstance(client, docker.APIClient) else None
        self._client_lock = threading.Lock()
        self._backoff = tuple(backoff)
        self._sleep = sleep

    @property
    def _client(self) -> docker.APIClient:
        with self._client_lock:
            if self._current is None:
                assert self._open is not None
                self._current = self._open()  # raises EngineError subclasses
            return self._current

    def _forget_client(self) -> None:
        """Drops a client the adapter opened itself, so the next call connects (negotiates) again."""
        with self._client_lock:
            if self._open is None or self._current is None:
                return
            stale, self._current = self._current, None
        stale.close()

    # ---- reads ---------------------------------------------------------------------------
    def list_nodes(self) -> list[NodeView]:
        return [node_view(d) for d in self._call("list nodes", self._client.nodes)]

    def list_services(self, *, label: str | None = None) -> list[ServiceView]:
        filters = {"label": label} if label else None
        return [service_view(d) for d in self._call("list services", lambda: self._client.services(filters=filters))]

    def get_service(self, name_or_id: str) -> ServiceView:
        return service_view(self._inspect(name_or_id))

    def list_tasks(
        self,
        *,
        service: str | None = None,
        desired_state: str | None = None,
        node: str | None = None,
    ) -> list[TaskView]:
        filters: dict[str, str] = {}
        if service:
            filters["service"] = service
        if desired_state:
            filters["desired-state"] = desired_state
        if node:
            filters["node"] = node
        docs = self._call(f"list tasks {filters}", lambda: self._client.tasks(filters=filters))
        hostnames = {n.id: n.hostname for n in self.list_nodes()}
        return [task_view(d, hostnames) for d in docs]

    # ---- writes --------------------------------------------------------------------------
    def scale(self, service: str, replicas: int, *, labels: Mapping[str, str | None] | None = None) -> ServiceView:
        """Sets the replica count of a replicated service (refuses a global one)."""
        if replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {replicas}")

        def edit(spec: dict[str, Any]) -> None:
            mode = spec.get("Mode") or {}
            if "Replicated" not in mode:
                raise ValueError(f"service {service} is not replicated: it cannot be scaled")
            mode["Replicated"]["Replicas"] = replicas
            _apply_labels(spec, labels)

        return self.update(service, edit, what=f"scale {service} to {replicas}")

    def update_placement(
        self,
        service: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        update_order: str | None = None,
        labels: Mapping[str, str | None] | None = None,
    ) -> ServiceView:
        """Adds/removes placement constraints, optionally sets the update order and service labels,
        all in one update (one version, one rollout)."""
        add, remove = tuple(add), tuple(remove)

        def edit(spec: dict[str, Any]) -> None:
            if add or remove:
                placement = spec.setdefault("TaskTemplate", {}).setdefault("Placement", {})
                current = [c for c in placement.get("Constraints") or [] if c not in remove]
                current += [c for c in add if c not in current]
                placement["Constraints"] = current
            if update_order is not None:
                spec.setdefault("UpdateConfig", {})["Order"] = update_order
            _apply_labels(spec, labels)

        return self.update(service, edit, what=f"update placement of {service}")

    def update(self, service: str, edit: SpecEdit, *, what: str) -> ServiceView:
        """Re-reads the service, applies `edit` to a copy of its spec and writes it with the version
        just read; retries once on "update out of sequence" and backs off on 5xx."""
        conflicts = 0
        while True:
            try:
                return self._update_once(service, edit, what)
            except OutOfSequence:
                conflicts += 1
                event(log, "service update out of sequence", level=logging.WARNING, service=service, attempt=conflicts)
                if conflicts > 1:
                    raise

    def _update_once(self, service: str, edit: SpecEdit, what: str) -> ServiceView:
        doc = self._inspect(service)
        spec = copy.deepcopy(doc["Spec"])
        edit(spec)
        if spec == doc["Spec"]:
            return service_view(doc)
        api = str(self._client.api_version)
        newer = versions.fields_newer_than(spec, api)
        if newer:
            names = ", ".join(f"{f.name} (API {f.since}+)" for f in newer)
            raise UnsupportedVersion(
                f"{what}: not written: the spec sets {names}, which the negotiated API {api} does not "
                "carry, so the engine would drop it silently"
            )
        version = int(doc["Version"]["Index"])
        self._call(what, lambda: self._write_spec(doc["ID"], version, spec))
        return self.get_service(doc["ID"])

    def _write_spec(self, service_id: str, version: int, spec: Mapping[str, Any]) -> None:
        """`POST /services/{id}/update?version=N` with `spec` as the body, as it is. No
        X-Registry-Auth: the engine then keeps the registry credentials stored with the service."""
        client = self._client
        url = f"{client.base_url}/v{client.api_version}/services/{quote(service_id, safe='')}/update"
        response = client.post(url, json=spec, params={"version": version}, timeout=client.timeout)
        _raise_for_status(response)
        try:
            warnings = (response.json() or {}).get("Warnings") or []
        except ValueError:
            warnings = []
        for warning in warnings:
            event(log, "engine warning on service update", level=logging.WARNING, service=spec.get("Name"), warning=warning)

    # ---- configs (sgcommon/engine/configs.py says what the engine guarantees) ------------
    def list_configs(self, *, label: str | None = None) -> list[ConfigView]:
        """Every config, or those carrying `label` ("key" or "key=value"), with their Data."""
        filters = {"label": [label]} if label else None
        return [config_view(d) for d in self._call("list configs", lambda: self._client.configs(filters=filters))]

    def get_config(self, name_or_id: str) -> ConfigView:
        """One config by name or id; NotFound when there is none."""
        return config_view(self._call(f"inspect config {name_or_id}", lambda: self._client.inspect_config(name_or_id)))

    def create_config(self, name: str, data: bytes, *, labels: Mapping[str, str]) -> ConfigView:
        """Creates a config and returns it as stored. A name in use answers 409 (EngineError with
        status 409), also when a create retried after a 5xx had landed: the caller reads the name."""
        client = self._client
        url = f"{client.base_url}/v{client.api_version}/configs/create"

        def create() -> str:
            response = client.post(url, json=config_spec(name, data, labels), timeout=client.timeout)
            _raise_for_status(response)
            doc = response.json() or {}
            return str(doc.get("ID") or doc.get("Id") or "")  # engines send "ID"; the reference says "Id"

        config_id = self._call(f"create config {name}", create)
        return self.get_config(config_id or name)

    def update_config_labels(self, name_or_id: str, labels: Mapping[str, str | None], *,
                             always: bool = False) -> ConfigView:
        """Sets (or, for None, removes) labels of a config: the one change the engine allows. Re-reads
        the config and writes with its version; retries once on "update out of sequence". Nothing
        is written when nothing changes, unless `always` (the write itself counts: it makes the
        config the cluster's latest write, `configs.ConfigView.version`)."""
        what = f"update labels of config {name_or_id}"
        for attempt in (1, 2):
            current = self._call(f"inspect config {name_or_id}", lambda: self._client.inspect_config(name_or_id))
            spec = copy.deepcopy(current["Spec"])
            _apply_labels(spec, labels)
            if spec == current["Spec"] and not always:
                return config_view(current)
            try:
                config_id, index = current["ID"], int(current["Version"]["Index"])
                self._call(what, lambda: self._write_config(config_id, index, spec))  # noqa: B023 (called at once, in this iteration)
            except OutOfSequence:
                event(log, "config update out of sequence", level=logging.WARNING, config=name_or_id, attempt=attempt)
                if attempt == 2:
                    raise
                continue
            break
        return self.get_config(current["ID"])

    def remove_config(self, name_or_id: str) -> None:
        """Removes a config; NotFound when it is gone already."""
        self._call(f"remove config {name_or_id}", lambda: self._client.remove_config(name_or_id))

    def _write_config(self, config_id: str, version: int, spec: Mapping[str, Any]) -> None:
        """`POST /configs/{id}/update?version=N` with the whole spec as read (Data included: the
        engine accepts unchanged Data and refuses any other change), labels edited."""
        client = self._client
        url = f"{client.base_url}/v{client.api_version}/configs/{quote(config_id, safe='')}/update"
        _raise_for_status(client.post(url, json=spec, params={"version": version}, timeout=client.timeout))

    def _inspect(self, name_or_id: str) -> dict[str, Any]:
        return self._call(f"inspect service {name_or_id}", lambda: self._client.inspect_service(name_or_id))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Runs one API call, retrying 5xx answers after each back-off delay in turn."""
        for delay in (*self._backoff, None):
            try:
                with translate(what):
                    return fn()
            except UnsupportedVersion:
                self._forget_client()
                raise
            except ServerError as exc:
                if delay is None:
                    raise
                event(log, "engine error, backing off", level=logging.WARNING, call=what, status=exc.status, delay=delay)
                self._sleep(delay)
        raise AssertionError("unreachable")


def _raise_for_status(response: requests.Response) -> None:
    """An error answer as the docker package's APIError (so `translate` maps it like any other)."""
    try:
        response.raise_for_status()
    except requests.HTTPError as exc:
        docker.errors.create_api_error_from_http_exception(exc)  # raises the matching APIError


def _apply_labels(spec: dict[str, Any], labels: Mapping[str, str | None] | None) -> None:
    if not labels:
        return
    current = spec.setdefault("Labels", {})
    for key, value in labels.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
