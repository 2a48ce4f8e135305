"""The one constraint matcher (sgcommon/engine/placement.py) against the real engine on the lab.

For each case of the table, a tiny service (the lab's base image running `sleep`, one replica per
lab node at most, as many replicas as nodes) is created with that constraint list; Swarm's own
placement (the nodes its tasks are assigned to, and the tasks left Pending for want of a suitable
node) or its refusal of the expression is compared with what the matcher predicts for each node.
Two workers get test labels for the run (removed afterwards), to judge node.labels. Run under the
lab lock: `flock /tmp/swarmguard-lab.lock .venv/bin/python -m pytest -m swarm tests/lab/test_placement_on_lab.py -s`.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from docker import types

from labkit import labinfo
from sgcommon.engine import connect
from sgcommon.engine.placement import ConstraintError, eligible_nodes, parse_all
from sgcommon.engine.swarm import NodeView, SwarmAdapter

pytestmark = pytest.mark.swarm

IMAGE = labinfo.BASE_IMAGE
LABELS = {"worker-1": {"sgtest.zone": "a", "sgtest.Rack": "7"}, "worker-2": {"sgtest.zone": "B"}}
REFUSED = "refused"


def cases(nodes: dict[str, NodeView]) -> list[list[str]]:
    """The constraint lists to check (each one service)."""
    w3 = nodes["worker-3"]
    return [
        [],
        ["node.hostname==worker-1"],
        ["node.hostname!=worker-1"],
        ["node.hostname==WORKER-2"],  # values compare case-insensitively
        ["NODE.HOSTNAME==worker-3"],  # and so do keys
        ["  node.hostname  ==  worker-1  "],  # both are trimmed
        ["node.hostname==worker-*"],  # no globbing
        ["node.role==worker"],
        ["node.role==MANAGER"],
        ["node.id==" + w3.id],
        ["node.labels.sgtest.zone==a"],
        ["node.labels.sgtest.zone==b"],  # the label is "B"
        ["node.labels.sgtest.zone!=a"],  # nodes without the label too
        ["NODE.LABELS.sgtest.zone==a"],  # the prefix is case-insensitive
        ["node.labels.SGTEST.ZONE==a"],  # the label name is not
        ["node.labels.sgtest.Rack==7"],
        ["engine.labels.sgtest!=x"],
        ["node.platform.os==Linux", "node.platform.arch==x86_64"],
        [f"node.ip=={w3.addr}"],
        ["node.ip!=10.99.0.8/29"],  # a network: the workers' .11-.13 are inside it
        ["node.ip==worker-1"],  # neither an address nor a network
        ["node.name==worker-1"],  # a key Swarm does not know
        ["node.role==worker", "node.hostname!=worker-1"],
        ["node.hostname=worker-1"],  # refused: no operator
        ["node.hostname==a=b"],  # refused: `=` in the value
        ["1node==x"],  # refused: a key starts with a letter or _
    ]


def predicted(nodes: list[NodeView], constraints: list[str]) -> str | set[str]:
    try:
        parse_all(constraints)
    except ConstraintError:
        return REFUSED
    return {n.hostname for n in eligible_nodes(nodes, constraints)}


@pytest.fixture(scope="module")
def labelled(lab: labinfo.Lab) -> Iterator[SwarmAdapter]:
    """The lab's nodes with the test labels on two workers, put back as they were afterwards."""
    client = connect(lab.host_socket, timeout=30)
    adapter = SwarmAdapter(client)
    hostnames = {n.hostname for n in adapter.list_nodes()}
    if not {"worker-1", "worker-2", "worker-3"} <= hostnames:
        pytest.skip(f"needs worker-1..3, the lab has {sorted(hostnames)}")
    before = {n.hostname: dict(n.labels) for n in adapter.list_nodes()}
    try:
        for hostname, labels in LABELS.items():
            _set_labels(client, adapter, hostname, {**before[hostname], **labels})
        yield adapter
    finally:
        for hostname in LABELS:
            _set_labels(client, adapter, hostname, before[hostname])
        after = {n.hostname: dict(n.labels) for n in adapter.list_nodes()}
        client.close()
    assert after == before, "the test labels were not removed from the lab's nodes"


def _set_labels(client: Any, adapter: SwarmAdapter, hostname: str, labels: dict[str, str]) -> None:
    [node] = [n for n in adapter.list_nodes() if n.hostname == hostname]
    doc = client.inspect_node(node.id)
    client.update_node(node.id, doc["Version"]["Index"], {**doc["Spec"], "Labels": labels})


def _create(client: Any, name: str, constraints: list[str], replicas: int) -> str | None:
    """Creates the service; the engine's error text when it refuses the constraints."""
    template = types.TaskTemplate(
        types.ContainerSpec(IMAGE, command=["sleep", "600"], stop_grace_period=1_000_000_000),
        placement=types.Placement(constraints=constraints, maxreplicas=1),
        restart_policy=types.RestartPolicy(condition="none"),
        resources=types.Resources(cpu_limit=50_000_000, mem_limit=32 * 2**20),
    )
    try:
        client.create_service(template, name=name, mode=types.ServiceMode("replicated", replicas=replicas),
                              labels={"swarmguard.test": "placement"})
    except docker.errors.APIError as exc:
        return str(exc.explanation)
    return None


def _wait(what: str, probe: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if probe():
            return
        time.sleep(0.5)
    pytest.fail(f"{what}: not after {timeout} s")


def test_the_matcher_predicts_where_the_real_engine_places_or_refuses_each_case(
        labelled: SwarmAdapter, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    client = connect(timeout=30)
    nodes = labelled.list_nodes()
    by_name = {n.hostname: n for n in nodes}
    hostname_of = {n.id: n.hostname for n in nodes}
    table = cases(by_name)
    run = uuid.uuid4().hex[:6]
    services: dict[int, str] = {}
    engine: dict[int, str | set[str]] = {}
    pending: dict[int, int] = {}
    try:
        for index, constraints in enumerate(table):
            name = f"sgplace-{run}-{index}"
            refused = _create(client, name, constraints, replicas=len(nodes))
            if refused is None:
                services[index] = name
            else:
                engine[index] = REFUSED
                pending[index] = 0
                assert "rpc error" in refused, refused

        def scheduled() -> bool:
            for index, name in services.items():
                tasks = client.tasks(filters={"service": name})
                placed = {hostname_of.get(t.get("NodeID", ""), t.get("NodeID")) for t in tasks if t.get("NodeID")}
                waiting = [t for t in tasks if not t.get("NodeID") and t["Status"]["State"] == "pending"
                           and "no suitable node" in t["Status"].get("Err", t["Status"].get("Message", ""))]
                if len(tasks) < len(nodes) or len(placed) + len(waiting) < len(nodes):
                    return False
                engine[index], pending[index] = placed, len(waiting)
            return True

        _wait("every task placed or pending for want of a suitable node", scheduled, timeout=60)
    finally:
        for name in services.values():
            try:
                client.remove_service(name)
            except docker.errors.APIError:
                pass
        client.close()
    rows, wrong = [], []
    for index, constraints in enumerate(table):
        want = predicted(nodes, constraints)
        got = engine[index]
        ok = want == got and (got == REFUSED or pending[index] == len(nodes) - len(got))
        rows.append(f"{'ok ' if ok else 'BAD'} {', '.join(repr(c) for c in constraints) or '(none)':<58} "
                    f"matcher {_show(want):<36} engine {_show(got)}"
                    + (f" + {pending[index]} pending" if got != REFUSED and pending[index] else ""))
        if not ok:
            wrong.append(rows[-1])
    with capsys.disabled():
        print(f"\nplacement on the lab ({len(table)} cases, {time.monotonic() - started:.1f} s):")
        print("\n".join(rows))
    assert wrong == []


def _show(nodes: str | set[str]) -> str:
    return nodes if isinstance(nodes, str) else "{" + ", ".join(sorted(nodes)) + "}"
