"""The whole SwarmGuard stack on the lab: exporters on every node, the controller on the manager,
and one real proactive migration of web-stress driven by the exporter's alerts.

This is the smoke test of the exporter and the controller on a real multi-node Swarm; the measured scenarios with
probes and reports are the end-to-end suite's job.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sgcommon.engine import connect, translate
from labkit import deploy, labinfo
from labkit.controller_api import eventually, events, exec_in, exporters_up, node_names, running_tasks

pytestmark = [pytest.mark.swarm, pytest.mark.slow]

STACK = labinfo.STACK
APP = f"{STACK}_web-stress"


@pytest.fixture(scope="module")
def stack(lab: labinfo.Lab, client: Any) -> Iterator[labinfo.Lab]:
    assert deploy.main(["--lab", "--wait", "120"]) == 0
    yield lab
    with translate(f"remove stack {STACK}"):
        for service in client.services(filters={"label": f"com.docker.stack.namespace={STACK}"}):
            client.remove_service(service["ID"])


def test_an_exporter_runs_on_every_node_and_the_controller_on_the_manager(stack: labinfo.Lab, client: Any) -> None:
    names = node_names(client)
    exporters = eventually(lambda: len(running_tasks(client, f"{STACK}_exporter")) == len(names) and
                           running_tasks(client, f"{STACK}_exporter"), timeout=90, what="an exporter on every node")
    assert {names[t["NodeID"]] for t in exporters} == set(names.values())
    controller = eventually(lambda: running_tasks(client, f"{STACK}_controller"), timeout=90, what="the controller")
    with translate("manager node"):
        assert client.inspect_node(controller[0]["NodeID"])["Spec"]["Role"] == "manager"
    # The controller scrapes every exporter: all of them answered its last round.
    assert eventually(lambda: exporters_up(client) == len(names), timeout=30,
                      what=f"{len(names)} exporters up on the controller")


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
