"""The whole SwarmGuard stack on the lab: exporters on every node, the controller on the manager,
and one real proactive migration of web-stress driven by the exporter's alerts.

This is the smoke test of issues 4 and 5 on a real multi-node Swarm; the measured scenarios with
probes and reports are the end-to-end suite's job.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sgcommon.engine import EngineError, connect, translate
from tests.tools import deploy, labinfo

pytestmark = [pytest.mark.swarm, pytest.mark.slow]

STACK = labinfo.STACK
APP = f"{STACK}_web-stress"


def eventually(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def exec_in(client: Any, container: str, cmd: list[str]) -> str:
    with translate(f"exec in {container[:12]}"):
        exec_id = client.exec_create(container, cmd)["Id"]
        return client.exec_start(exec_id).decode()


def running_tasks(client: Any, service: str) -> list[dict[str, Any]]:
    with translate(f"tasks of {service}"):
        tasks = client.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def node_names(client: Any) -> dict[str, str]:
    with translate("nodes"):
        return {n["ID"]: n["Description"]["Hostname"] for n in client.nodes()}


@pytest.fixture(scope="module")
def stack(lab: labinfo.Lab, client: Any) -> Iterator[labinfo.Lab]:
    assert deploy.main(["--lab", "--wait", "120"]) == 0
    yield lab
    with translate(f"remove stack {STACK}"):
        for service in client.services(filters={"label": f"com.docker.stack.namespace={STACK}"}):
            client.remove_service(service["ID"])


def controller_container(client: Any) -> str:
    with translate("controller container"):
        found = client.containers(filters={"label": f"com.docker.swarm.service.name={STACK}_controller"})
    return found[0]["Id"] if found else ""


def events(client: Any) -> list[dict[str, Any]]:
    container = controller_container(client)
    if not container:
        return []
    try:
        body = exec_in(client, container, ["curl", "-fsS", "-m", "2", "http://127.0.0.1:5000/events?limit=20"])
        return json.loads(body)["events"]
    except (EngineError, ValueError, KeyError):
        return []


def test_an_exporter_runs_on_every_node_and_the_controller_on_the_manager(stack: labinfo.Lab, client: Any) -> None:
    names = node_names(client)
    exporters = eventually(lambda: len(running_tasks(client, f"{STACK}_exporter")) == len(names) and
                           running_tasks(client, f"{STACK}_exporter"), timeout=90, what="an exporter on every node")
    assert {names[t["NodeID"]] for t in exporters} == set(names.values())
    controller = eventually(lambda: running_tasks(client, f"{STACK}_controller"), timeout=90, what="the controller")
    with translate("manager node"):
        assert client.inspect_node(controller[0]["NodeID"])["Spec"]["Role"] == "manager"
    # The controller scrapes every exporter: all of them answered its last round.
    def exporters_up() -> float | None:
        text = exec_in(client, controller_container(client),
                       ["curl", "-fsS", "-m", "2", "http://127.0.0.1:5000/metrics"])
        for line in text.splitlines():
            if line.startswith("swarmguard_controller_exporters_up "):
                value = float(line.split()[1])
                return value if value == len(names) else None
        return None

    assert eventually(exporters_up, timeout=30, what=f"{len(names)} exporters up on the controller") == len(names)


def test_a_cpu_stressed_replica_is_migrated_to_another_node_before_the_old_one_stops(
    stack: labinfo.Lab, client: Any,
) -> None:
    names = node_names(client)
    task = eventually(lambda: running_tasks(client, APP), timeout=90, what="web-stress running")[0]
    old_node = names[task["NodeID"]]
    node_client = connect(stack.socket_of(old_node), timeout=30)
    old_container = task["Status"]["ContainerStatus"]["ContainerID"]
    before = {e["id"] for e in events(client)}
    started = time.time()
    answer = exec_in(node_client, old_container,
                     ["curl", "-fsS", "http://127.0.0.1:8080/stress/cpu?target=95&duration=60&ramp=1"])
    assert json.loads(answer)["status"] == "started"

    def migrated() -> dict[str, Any] | None:
        new = [e for e in events(client) if e["id"] not in before and e["action"] == "migrate"]
        return new[0] if new else None

    record = eventually(migrated, timeout=90, what="a migrate record on the controller's /events")
    assert record["result"] == "success", record
    assert record["service"] == APP and record["node_from"] == old_node
    assert record["node_to"] not in (None, old_node)
    times = [record[f"t{i}"] for i in range(7)]
    assert all(t is not None for t in times), record
    assert started - 5 <= times[0] <= times[1] <= times[2] <= times[3] <= times[4] <= times[5] <= times[6], record
    now_running = running_tasks(client, APP)
    assert len(now_running) == 1 and names[now_running[0]["NodeID"]] == record["node_to"]
