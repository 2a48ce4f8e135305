"""An action whose service is removed, or whose change someone else's update undid, while it waits:
it ends at once as `failed` with the reason, gives back its budget share and its service's lock,
and an update that keeps the action's change does not end it (fake engine, both engine profiles)."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.actions.executor import OPERATOR_YIELD, Executor
from controller.actions.ownership import ACTION_LABEL, EXCLUSIONS_LABEL
from controller.actions.settings import ActionSettings
from controller.model import Timeline, Verdict
from sgcommon.engine.swarm import SwarmAdapter
from tests.controller.test_actions import FAST, Records, deploy, migrate_decision, scale_decision
from tests.fakes.engine import FakeEngine

LONG = 30.0  # a time-out the tests never reach: an action that ends does so because it noticed


@pytest.fixture
def records() -> Records:
    return Records()


class Later:
    """The wall clock, which a test can move on (past the executor's yield to an operator)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def later() -> Later:
    return Later()


@pytest.fixture
def executor(swarm: SwarmAdapter, records: Records, later: Later) -> Iterator[Executor]:
    made = Executor(swarm, ActionSettings(**{**FAST, "migrate_timeout": LONG, "scale_timeout": LONG}),  # type: ignore[arg-type]
                    on_record=records, node_load=dict, clock=later)
    yield made
    made.shutdown(wait=True)


def waiting(fake: FakeEngine, name: str) -> None:
    """Returns once the action wrote its change (the in-flight marker is in the service) and polls tasks."""
    def polling() -> bool:
        requests = list(fake.requests)
        writes = [i for i, (method, path) in enumerate(requests) if method == "POST" and path.endswith("/update")]
        return bool(writes) and any(path.endswith("/tasks") for _, path in requests[writes[-1]:])

    assert fake.wait_until(lambda: ACTION_LABEL in (fake.service_spec(name).get("Labels") or {}) and polling(), timeout=5)


def operator_update(fake: FakeEngine, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """An update by someone else, written straight to the engine with the current version."""
    spec = fake.service_spec(name)
    edit(spec)
    fake.update_service(name, fake.service_version(name), spec)


def assert_released(executor: Executor, fake: FakeEngine, records: Records, name: str, later: Later) -> None:
    """Nothing busy or held; the operator's change wins for OPERATOR_YIELD (another rule on the same
    breach would undo it), then the next action on the service starts and runs."""
    assert executor.busy_services() == set()
    assert executor.moving() == 0
    fake.set_timing(name, healthy=True)
    held = executor.submit(scale_decision(name, "scale_up", max_replicas=10), Timeline())
    assert held.verdict is Verdict.BUSY and "an operator's change ended SwarmGuard's last action" in held.reason
    later.ahead = OPERATOR_YIELD + 1.0
    assert executor.submit(scale_decision(name, "scale_up", max_replicas=10), Timeline()).verdict is Verdict.ACCEPTED
    assert records.wait(2)[-1].result == "success"


def test_a_migration_whose_service_is_removed_while_it_waits_fails_at_once(fake_engine, executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", healthy=False)  # the replacement never gets healthy: the action waits
    assert executor.submit(migrate_decision(fake_engine, "web"), Timeline()).verdict is Verdict.ACCEPTED
    waiting(fake_engine, "web")
    fake_engine.remove_service("web")
    [record] = records.wait(timeout=LONG / 3)
    assert record.result == "failed"
    assert record.error == ("service removed while the action waited: web is gone "
                            "(replacement task running on another node)")
    assert executor.busy_services() == set() and executor.moving() == 0


def test_a_migration_whose_exclusion_an_operator_update_removed_fails_at_once_and_says_so(
        fake_engine, executor, records, later) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", healthy=False)
    executor.submit(migrate_decision(fake_engine, "web"), Timeline())
    waiting(fake_engine, "web")
    written = fake_engine.service_version("web")

    def drop_constraints(spec: dict[str, Any]) -> None:  # what a stack redeploy from the file does
        spec["TaskTemplate"]["Placement"]["Constraints"] = []

    operator_update(fake_engine, "web", drop_constraints)
    [record] = records.wait(timeout=LONG / 3)
    assert record.result == "failed"
    assert re.fullmatch(rf"superseded while the action waited \(replacement task running on another node\): web was "
                        rf"updated by someone else \(version {written} -> (\d+)\) and the constraint "
                        r"node.hostname!=worker-1 is gone", record.error or ""), record.error
    labels = fake_engine.service_spec("web")["Labels"]
    assert ACTION_LABEL not in labels  # the marker is cleared as after any action
    assert list(json.loads(labels[EXCLUSIONS_LABEL])) == ["worker-1"]  # forgotten by reconcile, not here
    assert_released(executor, fake_engine, records, "web", later)


def test_an_operator_update_that_keeps_the_exclusion_does_not_end_the_migration(fake_engine, executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", health_delay=0.5)
    executor.submit(migrate_decision(fake_engine, "web"), Timeline())
    waiting(fake_engine, "web")

    def add_env(spec: dict[str, Any]) -> None:
        spec["TaskTemplate"]["ContainerSpec"]["Env"] = ["OPERATOR=1"]

    operator_update(fake_engine, "web", add_env)
    [record] = records.wait(timeout=LONG / 3)
    assert record.result == "success", record.error
    assert "worker-1" not in [node for _, node in fake_engine.running_tasks("web")]


def test_a_scale_up_whose_replica_count_an_operator_changed_fails_at_once(fake_engine, executor, records, later) -> None:
    deploy(fake_engine, "web", node=None)
    fake_engine.set_timing("web", healthy=False)
    executor.submit(scale_decision("web", "scale_up"), Timeline())
    waiting(fake_engine, "web")

    def five(spec: dict[str, Any]) -> None:
        spec["Mode"]["Replicated"]["Replicas"] = 5

    operator_update(fake_engine, "web", five)
    [record] = records.wait(timeout=LONG / 3)
    assert record.result == "failed"
    assert record.error is not None and record.error.startswith("superseded while the action waited (new replica running)")
    assert record.error.endswith("and it is set to 5 replicas, not the 2 the action set")
    assert fake_engine.service_spec("web")["Mode"]["Replicated"]["Replicas"] == 5  # the operator's count stays
    assert_released(executor, fake_engine, records, "web", later)


def test_a_scale_down_whose_service_is_removed_while_it_waits_fails_at_once(fake_engine, executor, records) -> None:
    deploy(fake_engine, "web", node=None, replicas=2)
    fake_engine.set_timing("web", stop_delay=LONG)  # the surplus replica takes long to stop: the action waits
    executor.submit(scale_decision("web", "scale_down"), Timeline())
    waiting(fake_engine, "web")
    fake_engine.remove_service("web")
    [record] = records.wait(timeout=LONG / 3)
    assert record.result == "failed"
    assert record.error == "service removed while the action waited: web is gone (surplus replica stopped)"
    assert executor.busy_services() == set() and executor.moving() == 0


def test_a_timed_out_action_whose_service_is_then_removed_gives_its_budget_back(fake_engine, swarm, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", healthy=False)
    executor = Executor(swarm, ActionSettings(**{**FAST, "migrate_timeout": 0.3}), on_record=records,  # type: ignore[arg-type]
                        node_load=dict)
    try:
        executor.submit(migrate_decision(fake_engine, "web"), Timeline())
        [record] = records.wait()
        assert record.result == "timeout"
        assert executor.moving() == 1  # Swarm goes on with the change: its share stays held
        fake_engine.remove_service("web")
        assert executor.release_settled() == 1
        assert executor.moving() == 0
    finally:
        executor.shutdown(wait=True)


def test_listing_the_tasks_of_a_service_that_does_not_exist_is_not_found_as_on_a_real_engine(fake_engine, swarm) -> None:
    from sgcommon.engine import NotFound

    with pytest.raises(NotFound, match="service nothere not found"):
        swarm.list_tasks(service="nothere")
