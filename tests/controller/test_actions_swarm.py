"""The executor against the real multi-node Swarm lab (swarm/lab up): a start-first migration
off a node and a scale-up, with the timings printed (run with -s to see them)."""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import docker
import pytest

from controller.actions.executor import Executor
from controller.actions.migrate import MIGRATE
from controller.actions.ownership import EXCLUSIONS_LABEL
from controller.actions.scale import SCALE_UP
from controller.actions.settings import ActionSettings
from controller.model import ActionRecord, Decision, Timeline, Verdict
from sgcommon.engine import EngineError, connect
from sgcommon.engine.swarm import SwarmAdapter, engine_time
from tests.support import unavailable

pytestmark = pytest.mark.swarm
IMAGE = "10.99.0.1:5000/swarmguard-base:latest"
# Exits on SIGTERM, so the old task stops at once instead of after the 10 s grace period.
COMMAND = ["python3", "-c", "import signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(1e9)"]


@pytest.fixture(scope="module")
def lab() -> SwarmAdapter:
    try:
        adapter = SwarmAdapter(connect(timeout=10))
        ready = [n for n in adapter.list_nodes() if n.schedulable]
    except EngineError as exc:
        unavailable(f"the Swarm lab is not up (swarm/lab up): {exc}")
    if len(ready) < 3:
        unavailable(f"the Swarm lab needs 3 ready nodes, has {len(ready)}")
    return adapter


@pytest.fixture
def service(lab: SwarmAdapter) -> Iterator[str]:
    client = connect(timeout=10)
    name = f"sgtest-{secrets.token_hex(3)}"
    health = docker.types.Healthcheck(test=["CMD", "true"], interval=500_000_000, start_period=0)
    template = docker.types.TaskTemplate(
        container_spec=docker.types.ContainerSpec(IMAGE, command=COMMAND, healthcheck=health, stop_grace_period=2_000_000_000),
        placement=docker.types.Placement(constraints=["node.hostname==worker-1"]),
    )
    client.create_service(template, name=name, mode=docker.types.ServiceMode("replicated", 1),
                          labels={"swarmguard.test": "true"})
    try:
        wait(lambda: [t for t in lab.list_tasks(service=name) if t.state == "running"], 90, "first task running")
        lab.update_placement(name, remove=["node.hostname==worker-1"])  # moves nothing
        yield name
    finally:
        client.remove_service(name)


def wait(probe, timeout: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what}: not after {timeout} s")


def run(lab: SwarmAdapter, decision: Decision) -> tuple[ActionRecord, Timeline]:
    got: list[ActionRecord] = []
    done = threading.Event()

    def on_record(record: ActionRecord) -> None:
        got.append(record)
        done.set()

    executor = Executor(lab, ActionSettings(poll_interval=0.1, migrate_timeout=90, scale_timeout=90),
                        on_record=on_record, node_load=dict)
    timeline = Timeline()
    assert executor.submit(decision, timeline).verdict is Verdict.ACCEPTED
    assert done.wait(120)
    executor.shutdown()
    return got[0], timeline


def test_a_real_start_first_migration_moves_the_task_off_its_node(lab: SwarmAdapter, service: str) -> None:
    [task] = [t for t in lab.list_tasks(service=service, desired_state="running")]
    decision = Decision(rule="lab", action=MIGRATE, service=service, container_id=task.container_id,
                        node="worker-1", t0=None, reason="lab test", params={"exclusion_ttl": 60.0})
    record, timeline = run(lab, decision)
    assert record.result == "success", record.error
    assert record.node_to not in (None, "worker-1")
    assert timeline.t4 < timeline.t5 <= timeline.t6  # type: ignore[operator]
    print(f"\nmigrate on the lab: T5-T4 {timeline.t5 - timeline.t4:.2f} s, T6-T4 {timeline.t6 - timeline.t4:.2f} s")  # type: ignore[operator]
    tasks = {t.id: t for t in lab.list_tasks(service=service)}
    old = tasks[task.id]
    [new] = [t for t in tasks.values() if t.desired_state == "running"]
    assert old.state == "shutdown" and new.state == "running"
    assert engine_time(new.status_at) < engine_time(old.status_at) <= timeline.t6 + 0.05  # type: ignore[operator]
    view = lab.get_service(service)
    assert "node.hostname!=worker-1" in view.constraints and EXCLUSIONS_LABEL in view.labels
    assert view.update_order == "start-first"


def test_lifting_an_exclusion_on_a_real_engine_moves_nothing(lab: SwarmAdapter, service: str) -> None:
    [task] = lab.list_tasks(service=service, desired_state="running")
    decision = Decision(rule="lab", action=MIGRATE, service=service, container_id=task.container_id,
                        node="worker-1", t0=None, reason="lab test", params={"exclusion_ttl": 60.0})
    record, _ = run(lab, decision)
    assert record.result == "success", record.error
    [moved] = lab.list_tasks(service=service, desired_state="running")
    later = Executor(lab, ActionSettings(), on_record=lambda r: None, node_load=dict, clock=lambda: time.time() + 3600)
    assert later.lift_expired_exclusions() == 1
    assert "node.hostname!=worker-1" not in lab.get_service(service).constraints
    time.sleep(3)  # a real engine: give its orchestrator time to (wrongly) act
    assert [t.id for t in lab.list_tasks(service=service, desired_state="running")] == [moved.id]


def test_a_real_scale_up_is_done_when_the_new_replica_is_healthy(lab: SwarmAdapter, service: str) -> None:
    decision = Decision(rule="lab", action=SCALE_UP, service=service, container_id=None, node=None, t0=None,
                        reason="lab test", params={"max_replicas": 2})
    record, timeline = run(lab, decision)
    assert record.result == "success", record.error
    assert (record.replicas_before, record.replicas_after) == (1, 2)
    print(f"\nscale-up on the lab: T5-T4 {timeline.t5 - timeline.t4:.2f} s")  # type: ignore[operator]
