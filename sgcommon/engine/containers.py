"""The local engine's containers: list, inspect, follow events, read stats (one method, one endpoint).

Used by the exporter's discovery (list once, then follow `start`/`die`/`destroy` events) and by
its benchmark (the stats endpoint it replaces). Every call goes through `translate`, so callers
only ever see sgcommon.engine.errors exceptions.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import docker

from sgcommon.engine.errors import EngineUnavailable, translate

SERVICE_LABEL = "com.docker.swarm.service.name"
TASK_LABEL = "com.docker.swarm.task.id"
WATCHED_ACTIONS = ("start", "die", "destroy")


@dataclass(frozen=True)
class LocalContainer:
    """What the exporter keeps about one running container."""

    id: str
    name: str
    service: str  # Swarm service name, or the container name for a plain container
    task_id: str  # Swarm task id, "" for a plain container
    pid: int  # main process on the host (0 when not running)
    cpu_limit: float | None  # CPUs (NanoCpus or CpuQuota/CpuPeriod), None when unlimited
    memory_limit: int | None  # bytes, None when unlimited
    image: str = ""  # the image as the container was created from it (Config.Image), "" when unknown


@dataclass(frozen=True)
class ContainerEvent:
    action: str  # one of WATCHED_ACTIONS
    container_id: str
    time: float  # Unix seconds (timeNano when the engine sends it)


def parse_inspect(doc: Mapping[str, Any]) -> LocalContainer:
    """Builds a LocalContainer from `GET /containers/{id}/json`."""
    config = doc.get("Config") or {}
    host = doc.get("HostConfig") or {}
    labels = config.get("Labels") or {}
    name = str(doc.get("Name") or "").lstrip("/")
    return LocalContainer(
        id=str(doc["Id"]),
        name=name,
        service=labels.get(SERVICE_LABEL) or name,
        task_id=labels.get(TASK_LABEL) or "",
        pid=int((doc.get("State") or {}).get("Pid") or 0),
        cpu_limit=cpu_limit(host),
        memory_limit=int(host["Memory"]) if host.get("Memory") else None,
        image=str(config.get("Image") or ""),
    )


def cpu_limit(host_config: Mapping[str, Any]) -> float | None:
    nano = host_config.get("NanoCpus") or 0
    if nano > 0:
        return nano / 1e9
    quota, period = host_config.get("CpuQuota") or 0, host_config.get("CpuPeriod") or 0
    if quota > 0:
        return quota / (period or 100_000)
    return None


def list_running(client: docker.APIClient) -> list[str]:
    """Ids of the running containers."""
    with translate("list containers"):
        return [c["Id"] for c in client.containers(filters={"status": "running"})]


def inspect(client: docker.APIClient, container_id: str) -> LocalContainer:
    """Raises NotFound when the container is gone."""
    with translate(f"inspect container {container_id[:12]}"):
        return parse_inspect(client.inspect_container(container_id))


def node_name(client: docker.APIClient) -> str:
    """The engine's host name (`/info` Name): the Swarm node's host name."""
    with translate("engine info"):
        return str(client.info()["Name"])


class EventStream:
    """Container start/die/destroy events since `since`; `close()` from another thread ends it."""

    def __init__(self, client: docker.APIClient, *, since: float | None = None) -> None:
        with translate("follow events"):
            # The stub allows an int `since` only; docker sends it unchanged and the Engine API
            # takes fractional seconds.
            self._stream = client.events(  # type: ignore[call-overload]
                since=since,
                decode=True,
                filters={"type": "container", "event": list(WATCHED_ACTIONS)},
            )

    def __iter__(self) -> Iterator[ContainerEvent]:
        with translate("follow events"):
            for doc in self._stream:
                event = _parse_event(doc)
                if event is not None:
                    yield event
        raise EngineUnavailable("follow events: the engine closed the event stream")

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError:
            pass  # already closed by the engine


def _parse_event(doc: Mapping[str, Any]) -> ContainerEvent | None:
    # Type / Action / Actor.ID only: the top-level status / id / from were deprecated in API 1.22
    # and are gone from API 1.52 on (docs/engine-api.md).
    action = doc.get("Action")
    cid = (doc.get("Actor") or {}).get("ID")
    if doc.get("Type") != "container" or action not in WATCHED_ACTIONS or not cid:
        return None
    stamp = doc.get("timeNano")
    when = stamp / 1e9 if stamp else float(doc.get("time") or 0)
    return ContainerEvent(action=action, container_id=cid, time=when)


def stats_once(client: docker.APIClient, container_id: str, *, one_shot: bool) -> dict[str, Any]:
    """`GET /containers/{id}/stats?stream=false[&one-shot=true]` (the benchmark's comparison);
    `one-shot` exists from API 1.41 on, SwarmGuard's minimum."""
    with translate(f"stats of container {container_id[:12]}"):
        return dict(client.stats(container_id, stream=False, one_shot=one_shot or None))
