"""Small helpers the end-to-end tools share to look at the stack on the lab.

Nothing in the lab is published (no IPVS), so the controller's /events and /metrics are read by
running curl inside the controller's own container (host engine), and a stress is started by
running curl inside the web-stress task's container on its node's engine. The same few calls were
in tests/lab/test_stack_on_lab.py; scenario 1, measure_mttr and the suite use them from here.
The parsing helpers (`metric_value`, `new_records`) are pure and unit-tested.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sgcommon.engine import EngineError, connect, translate
from labkit import labinfo

CONTROLLER_SERVICE = f"{labinfo.STACK}_controller"
APP_SERVICE = f"{labinfo.STACK}_web-stress"
CONTROLLER_URL = "http://127.0.0.1:5000"
APP_URL = "http://127.0.0.1:8080"
T = TypeVar("T")


class WaitTimeout(EngineError):
    """Something awaited on the lab did not happen in time; the message says what."""


def eventually(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.5,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """The first truthy value of `check()`, polled every `every` s; WaitTimeout after `timeout` s."""
    deadline = clock() + timeout
    while True:
        value = check()
        if value:
            return value
        if clock() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
        sleep(every)


def exec_in(client: Any, container: str, cmd: Sequence[str]) -> str:
    """Runs `cmd` in a running container through `client`'s engine; its output."""
    with translate(f"exec in {container[:12]}"):
        exec_id = client.exec_create(container, list(cmd))["Id"]
        return client.exec_start(exec_id).decode(errors="replace")


def running_tasks(client: Any, service: str) -> list[dict[str, Any]]:
    with translate(f"tasks of {service}"):
        tasks = client.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def node_names(client: Any) -> dict[str, str]:
    """Node id -> host name."""
    with translate("nodes"):
        return {n["ID"]: n["Description"]["Hostname"] for n in client.nodes()}


def controller_container(client: Any) -> str:
    """The id of the controller's container on the host engine, '' when none runs."""
    with translate("controller container"):
        found = client.containers(filters={"label": f"com.docker.swarm.service.name={CONTROLLER_SERVICE}",
                                           "status": "running"})
    return found[0]["Id"] if found else ""


def controller_get(client: Any, path: str) -> str:
    """GET the controller's `path` from inside its container; EngineError when it does not answer."""
    container = controller_container(client)
    if not container:
        raise EngineError(f"no running {CONTROLLER_SERVICE} container on the host engine")
    return exec_in(client, container, ["curl", "-fsS", "-m", "3", f"{CONTROLLER_URL}{path}"])


def events(client: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """The controller's newest ActionRecords (as_dict form); [] when it cannot be read right now."""
    try:
        return list(json.loads(controller_get(client, f"/events?limit={limit}"))["events"])
    except (EngineError, ValueError, KeyError, TypeError):
        return []


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """The value of sample `name{labels}` in Prometheus text, None when absent."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head == key:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def exporters_up(client: Any) -> float | None:
    """The controller's swarmguard_controller_exporters_up, None when unreadable."""
    try:
        return metric_value(controller_get(client, "/metrics"), "swarmguard_controller_exporters_up")
    except EngineError:
        return None


def new_records(records: Iterable[dict[str, Any]], seen: set[str], *, action: str | None = None,
                service: str | None = None) -> list[dict[str, Any]]:
    """Records whose id is not in `seen`, of `action` and `service` when given, oldest first by T0."""
    found = [r for r in records if r.get("id") not in seen and (action is None or r.get("action") == action)
             and (service is None or r.get("service") == service)]
    return sorted(found, key=lambda r: r.get("t0") or 0.0)


def task_exec(lab: labinfo.Lab, task: dict[str, Any], hostname: str, cmd: Sequence[str]) -> str:
    """Runs `cmd` in `task`'s container through the engine of its node `hostname`."""
    node_client = connect(lab.socket_of(hostname), timeout=30)
    try:
        return exec_in(node_client, task["Status"]["ContainerStatus"]["ContainerID"], cmd)
    finally:
        node_client.close()


def app_get(lab: labinfo.Lab, task: dict[str, Any], hostname: str, path: str) -> dict[str, Any]:
    """GET `path` of the stress app inside `task`'s container; its JSON answer."""
    body = task_exec(lab, task, hostname, ["curl", "-sS", "-m", "5", f"{APP_URL}{path}"])
    try:
        return dict(json.loads(body))
    except ValueError:
        raise EngineError(f"the stress app answered {path} with {body[:200]!r}") from None
