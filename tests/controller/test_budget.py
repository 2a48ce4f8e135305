"""The disruption budget: its arithmetic on a fake clock, the executor's verdicts and records, and the
invariant under load: breaches on 5 replicas of one service and on 10 services at once, with a poller
that checks at every poll of the fake engine's tasks that no service and not the cluster has more
tasks in transition than the budget allows."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from controller.actions.budget import DisruptionBudget, tasks_in_transition
from controller.actions.executor import Executor
from controller.actions.registry import PLUGINS, param_defaults
from controller.actions.settings import ActionSettings
from controller.decide import RuleState, evaluate
from controller.model import ActionRecord, ContainerMetrics, Decision, Result, Submission, Timeline, Verdict
from controller.rules import load_rules
from controller.services import ServiceRefresher
from sgcommon.engine import connect
from sgcommon.engine.swarm import SwarmAdapter
from tests.controller.conftest import FakeClock
from tests.controller.test_runtime import FixedRules, make_rig
from tests.support import TaskPoller
from tests.fakes.engine import FakeEngine, Timing, service_spec


@dataclass(frozen=True)
class Task:
    slot: int | None
    state: str
    desired_state: str = "running"
    node_id: str | None = "n1"

    @property
    def stopped(self) -> bool:
        return self.state in ("shutdown", "failed", "rejected", "orphaned", "complete")


def test_a_task_in_transition_is_one_beside_the_settled_task_of_its_slot_or_one_not_yet_settled() -> None:
    assert tasks_in_transition([Task(1, "running"), Task(2, "running")]) == 0
    assert tasks_in_transition([Task(1, "running"), Task(1, "starting")]) == 1  # start-first replacement
    assert tasks_in_transition([Task(1, "running", "shutdown"), Task(1, "running")]) == 1  # old one stopping
    assert tasks_in_transition([Task(1, "shutdown", "shutdown"), Task(1, "running")]) == 0
    assert tasks_in_transition([Task(3, "pending")]) == 1  # a new replica not placed yet
    assert tasks_in_transition([Task(2, "running", "shutdown")]) == 1  # a surplus replica stopping
    assert tasks_in_transition([Task(None, "running", node_id="a"), Task(None, "starting", node_id="b")]) == 1


def test_the_budget_counts_per_service_and_in_total_and_says_which_limit_is_reached() -> None:
    clock = FakeClock()
    budget = DisruptionBudget(per_service=1, total=2, clock=clock)
    assert budget.refusal("web", 1) is None
    web = budget.take("web", 1)
    assert budget.refusal("web", 1) == "web already has 1 of max_moving 1 tasks in transition"
    budget.take("api", 1)
    assert budget.refusal("shop", 1) == "2 of max_moving_total 2 tasks already in transition"
    assert budget.refusal("shop", 2) == "the action moves 2 tasks of shop at once, max_moving is 1"
    budget.give_back(web)
    assert budget.refusal("web", 1) is None and budget.moving() == 1


def test_a_dry_run_hold_expires_on_its_own() -> None:
    clock = FakeClock()
    budget = DisruptionBudget(per_service=1, total=3, clock=clock)
    budget.take("web", 1, until=clock.now + 60)
    assert budget.moving("web") == 1
    clock.advance(60)
    assert budget.moving("web") == 0


def decision(service: str, action: str = "scale_up", **params: float) -> Decision:
    plugin = PLUGINS[action]
    defaults = param_defaults()
    return Decision(rule=f"{action}-rule", action=plugin, service=service, container_id=None, node=None, t0=1.0,
                    reason="load", params={**{p.name: defaults[p.name] for p in plugin.params}, **params})


@pytest.fixture
def recorded() -> list[ActionRecord]:
    return []


def test_in_dry_run_the_records_say_what_the_budget_would_allow_and_the_rest_waits(recorded: list[ActionRecord]) -> None:
    clock = FakeClock()
    executor = Executor(None, ActionSettings(dry_run=True, max_moving_total=2), on_record=recorded.append,  # type: ignore[arg-type]
                        node_load=dict, clock=clock)
    try:
        answers = [executor.submit(decision(name), Timeline()) for name in ("a", "b", "c")]
        assert [a.verdict for a in answers] == [Verdict.DRY_RUN, Verdict.DRY_RUN, Verdict.OVER_BUDGET]
        assert answers[2].reason == "2 of max_moving_total 2 tasks already in transition"
        assert [r.service for r in recorded] == ["a", "b"]  # the deferred one is logged, not recorded
        assert recorded[1].reason.endswith("budget: would start it: 1 of max_moving 1 tasks of b and "
                                           "2 of max_moving_total 2 in all in transition")
        clock.advance(ActionSettings().scale_timeout)  # a would-be action holds its share for its time-out
        assert executor.submit(decision("c"), Timeline()).verdict is Verdict.DRY_RUN
    finally:
        executor.shutdown()


def test_a_timed_out_action_keeps_its_share_until_swarm_has_finished(fake_engine: FakeEngine, swarm: SwarmAdapter,
                                                                     recorded: list[ActionRecord]) -> None:
    fake_engine.create_service(service_spec("web"))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    fake_engine.set_timing("web", healthy=False)  # the new replica never becomes healthy
    executor = Executor(swarm, ActionSettings(poll_interval=0.01, scale_timeout=0.3), on_record=recorded.append,
                        node_load=dict)
    try:
        assert executor.submit(decision("web", max_replicas=3), Timeline()).verdict is Verdict.ACCEPTED
        assert fake_engine.wait_until(lambda: len(recorded) == 1)
        assert recorded[0].result is Result.TIMEOUT and executor.busy_services() == set()
        assert executor.moving() == 1
        assert executor.submit(decision("web", max_replicas=3), Timeline()) == Submission(
            Verdict.OVER_BUDGET, "web already has 1 of max_moving 1 tasks in transition")
        assert executor.release_settled() == 0  # still starting
        swarm.scale("web", 1)  # e.g. an operator gives up on the replica: Swarm settles
        assert fake_engine.wait_until(lambda: executor.release_settled() == 1)
        assert executor.moving() == 0
    finally:
        executor.shutdown()


# ---- the invariant under load ------------------------------------------------------------------

NODES = ["manager-1", *(f"worker-{i}" for i in range(1, 8))]
MAX_MOVING, MAX_MOVING_TOTAL = 1, 3
RULES = """
rules:
  - name: move
    labels: {kind: move}
    when: cpu > 75
    action: migrate
  - name: grow
    labels: {kind: grow}
    when: cpu > 75
    action: scale_up
    max_replicas: 2
"""
class CountingExecutor:
    """The real executor, with every verdict it gave counted."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.verdicts: Counter[Verdict] = Counter()

    def submit(self, decision: Decision, timeline: Timeline) -> Submission:
        submission = self.inner.submit(decision, timeline)
        self.verdicts[submission.verdict] += 1
        return submission

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return getattr(self.inner, name)  # type: ignore[no-any-return]


@pytest.fixture
def busy_cluster(tmp_path: Any) -> Iterator[FakeEngine]:
    """Eight nodes; tasks take 0.15 s to start, 0.15 s to become healthy and 0.2 s to stop, so the
    transitions of actions started together overlap."""
    with FakeEngine(NODES[0], workers=NODES[1:], timing=Timing(0.15, 0.15, 0.2)) as engine:
        yield engine
        engine.assert_no_unknown_routes()


def test_simultaneous_breaches_never_put_more_tasks_in_transition_than_the_budget_allows(
        busy_cluster: FakeEngine, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake = busy_cluster
    fake.create_service(service_spec("web", replicas=5, labels={"kind": "move"}))
    for i in range(10):
        fake.create_service(service_spec(f"s{i}", labels={"kind": "move" if i < 5 else "grow"}))
    names = ["web", *(f"s{i}" for i in range(10))]
    assert fake.wait_until(lambda: all(len(fake.running_tasks(n)) == (5 if n == "web" else 1) for n in names),
                           timeout=15)
    client = connect(fake.base_url, timeout=10)
    swarm = SwarmAdapter(client, backoff=(0.01, 0.02, 0.04))
    originals = {t.container_id: t for t in swarm.list_tasks(desired_state="running") if t.container_id}
    assert len(originals) == 15
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(RULES)
    records: list[ActionRecord] = []
    lock = threading.Lock()

    def on_record(record: ActionRecord) -> None:
        with lock:
            records.append(record)

    executor = CountingExecutor(Executor(
        swarm, ActionSettings(max_moving=MAX_MOVING, max_moving_total=MAX_MOVING_TOTAL, max_actions_per_minute=100,
                              poll_interval=0.01, migrate_timeout=20.0, scale_timeout=20.0, workers=8),
        on_record=on_record, node_load=dict))
    rig = make_rig(rules=FixedRules(load_rules([str(rules_file)])), evaluate=evaluate, state=RuleState(),
                   executor=executor, swarm=swarm)
    services = ServiceRefresher(swarm, rig.runtime.cache)
    poller = TaskPoller(fake.base_url, names={s.id: s.name for s in swarm.list_services()}, max_moving=MAX_MOVING,
                        max_moving_total=MAX_MOVING_TOTAL)
    polling = threading.Thread(target=poller.run, daemon=True)
    polling.start()
    grown: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with lock:
                moved = {r.container_id for r in records if r.action == "migrate" and r.result is Result.SUCCESS}
                grown = {r.service for r in records if r.action == "scale_up" and r.result is Result.SUCCESS}
            running = {t.id for t in swarm.list_tasks(desired_state="running") if t.state == "running"}
            breaching = [t for cid, t in originals.items() if cid not in moved and t.id in running
                         and _service_of(poller, t.service_id) not in grown]
            if not breaching:
                break
            services.refresh()
            now = time.time()
            rig.runtime.cache.add_containers([
                ContainerMetrics(node=t.node_hostname or "", service=_service_of(poller, t.service_id),
                                 container_id=t.container_id or "", task_id=t.id, ts=now, cpu=95.0, mem=50.0,
                                 mem_mb=100.0, net=5.0, net_rx=1.0, net_tx=1.0) for t in breaching])
            rig.runtime.scrape_and_evaluate()  # every breaching container, at once, as a scrape round would
            time.sleep(0.05)
        executor.inner.shutdown(wait=True)
    finally:
        poller.stop()
        polling.join(5)
        client.close()
    with lock:
        results = Counter((r.action, r.result.value) for r in records)
    with capsys.disabled():
        print(f"\nbudget invariant: {poller.polls} polls, {len(poller.violations)} violations, peak "
              f"{poller.peak_total} in all / {poller.peak_service} per service; verdicts "
              f"{ {v.value: n for v, n in executor.verdicts.items()} }; records {dict(results)}")
    assert poller.violations == []
    assert results == {("migrate", "success"): 10, ("scale_up", "success"): 5}, records
    assert {r.container_id for r in records if r.action == "migrate"} == {
        cid for cid, t in originals.items() if _service_of(poller, t.service_id) in ("web", *(f"s{i}" for i in range(5)))}
    assert executor.verdicts[Verdict.OVER_BUDGET] > 0  # the budget, not luck, kept the limit
    assert poller.peak_total == MAX_MOVING_TOTAL and poller.polls > 100


def _service_of(poller: TaskPoller, service_id: str) -> str:
    return poller.names[service_id]
