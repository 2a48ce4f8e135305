"""Rebalancing after a node comes back (controller/actions/rebalance.py) on the fake Engine API: the
service figures the rule sees (`task_skew`, `nodes_ready`), the rule through the real runtime,
rule engine and executor (one task at a time, the budget's invariant checked at every poll, no task
moved twice), dry-run, the rule's silence on balanced and constrained services, the refusals, and
a restart in the middle of a move."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from controller.actions.executor import Executor
from controller.actions.ownership import ACTION_LABEL, MOVED_LABEL, read_moved, write_action, write_moved
from controller.actions.rebalance import REBALANCE
from controller.actions.registry import param_defaults
from controller.actions.settings import ActionSettings
from controller.decide import RuleState, evaluate
from controller.model import ActionRecord, ContainerMetrics, Decision, Result, ServiceInfo, Snapshot, Timeline, Verdict
from controller.rules import ExprError, RuleError, ServiceEnv, compile_condition, load_rules
from controller.services import ServiceRefresher
from sgcommon.engine import connect
from sgcommon.engine.swarm import SwarmAdapter
from sgcommon.settings import SettingsError
from tests.controller.conftest import FakeClock
from tests.controller.test_runtime import FixedRules, make_rig
from tests.fakes.engine import EngineProfile, FakeEngine, Timing, service_spec
from tests.support import TaskPoller

NODES = ("manager-1", "worker-1", "worker-2", "worker-3")
OPT_IN = {"swarmguard.enable": "true"}
RULE = """
thresholds: {max_task_skew: 1}
rules:
  - name: rebalance
    labels: {swarmguard.enable: "true"}
    scope: service
    when: task_skew > max_task_skew and nodes_ready >= 2
    for: 2
    action: rebalance
    cooldown: 30s
    moved_hold: 10m
"""


@pytest.fixture
def cluster(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    """Four nodes (a manager that runs tasks too, three workers); tasks take 50 ms to start, 50 ms to
    become healthy and 50 ms to stop, so the transitions are visible to a poller."""
    with FakeEngine(NODES[0], workers=NODES[1:], timing=Timing(0.05, 0.05, 0.05), profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


@pytest.fixture
def swarm(cluster: FakeEngine) -> Iterator[SwarmAdapter]:
    client = connect(cluster.base_url, timeout=10)
    yield SwarmAdapter(client, backoff=(0.01, 0.02, 0.04))
    client.close()


def spread(fake: FakeEngine, service: str) -> dict[str, int]:
    counts = Counter(node for _, node in fake.running_tasks(service))
    return {node: counts.get(node, 0) for node in NODES}


def skew(counts: dict[str, int]) -> int:
    return max(counts.values()) - min(counts.values())


def deploy(fake: FakeEngine, name: str, replicas: int, **kwargs: Any) -> None:
    fake.create_service(service_spec(name, replicas=replicas, order="start-first", labels=OPT_IN, **kwargs))
    assert fake.wait_until(lambda: len(fake.running_tasks(name)) == replicas, timeout=10)


def outage(fake: FakeEngine, name: str, node: str, replicas: int) -> None:
    """`node` goes down until Swarm has rescheduled its tasks elsewhere, then comes back (empty)."""
    fake.node_down(node)
    assert fake.wait_until(lambda: len(fake.running_tasks(name)) == replicas
                           and all(n != node for _, n in fake.running_tasks(name)), timeout=10)
    fake.node_up(node)


def rules() -> FixedRules:
    return FixedRules(load_rules([_rule_file()]))


def _rule_file() -> str:
    import tempfile
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    with handle:
        handle.write(RULE)
    return handle.name


# ---- the figures the rule sees ----------------------------------------------------------------

def test_the_service_list_says_how_the_running_tasks_spread_over_the_nodes_the_service_may_use(
        cluster: FakeEngine, swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    deploy(cluster, "zoned", 2, constraints=["node.hostname!=manager-1", "node.hostname!=worker-3"])
    cluster.create_service(service_spec("agent", replicas=None))
    outage(cluster, "web", "worker-3", 4)
    rig = make_rig()
    clock = FakeClock()
    assert ServiceRefresher(swarm, rig.runtime.cache, clock=clock).refresh()
    services = rig.runtime.cache.snapshot(clock.now).services
    web = services["web"]
    assert web.tasks_per_node is not None and web.observed == clock.now
    assert sorted(web.tasks_per_node.values()) == [0, 1, 1, 2] and web.tasks_per_node["worker-3"] == 0
    assert services["zoned"].tasks_per_node == {"worker-1": 1, "worker-2": 1}  # its constraints leave two nodes
    assert services["agent"].tasks_per_node is None  # global: never rebalanced
    env = ServiceEnv((), web.replicas, web.tasks_per_node)
    condition = compile_condition("task_skew >= 2 and nodes_ready == 4", scope="service", thresholds={})
    assert condition.holds(env) and condition.explain(env) == "task_skew=2, nodes_ready=4"


def test_the_placement_figures_exist_in_service_scope_only_and_are_missing_figures_when_unknown() -> None:
    with pytest.raises(ExprError, match="unknown name 'task_skew'"):
        compile_condition("task_skew > 1", scope="container", thresholds={})
    condition = compile_condition("task_skew > 1", scope="service", thresholds={})
    assert not condition.needs_samples
    assert not condition.holds(ServiceEnv((), 4, None)) and condition.explain(ServiceEnv((), 4, None)) == "task_skew=n/a"
    assert compile_condition("task_skew > 1 and sum(cpu) > 1", scope="service", thresholds={}).needs_samples
    assert compile_condition("containers > 1", scope="service", thresholds={}).needs_samples
    with pytest.raises(RuleError, match="task_skew"):  # a threshold may not take a figure's name
        load_rules([_write("thresholds: {task_skew: 1}\nrules: []\n")])


def _write(text: str) -> str:
    import tempfile
    handle = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    with handle:
        handle.write(text)
    return handle.name


def test_a_rule_on_swarm_figures_counts_service_reads_and_does_not_wait_for_stale_containers() -> None:
    ruleset = load_rules([_rule_file()])
    state = RuleState()
    stale = ContainerMetrics(node="worker-3", service="web", container_id="gone", task_id="t", ts=1.0, cpu=1.0,
                             mem=1.0, mem_mb=1.0, net=1.0, net_rx=1.0, net_tx=1.0, stale=True)

    def snapshot(observed: float, counts: dict[str, int]) -> Snapshot:
        info = ServiceInfo("web", 4, OPT_IN, tasks_per_node=counts, observed=observed)
        return Snapshot(containers={"gone": stale}, history={}, services={"web": info}, nodes={})

    skewed = {"worker-1": 2, "worker-2": 2, "worker-3": 0}
    assert evaluate(ruleset, snapshot(100.0, skewed), 100.0, state) == []
    assert evaluate(ruleset, snapshot(100.0, skewed), 101.0, state) == []  # the same read counts once
    [decision] = evaluate(ruleset, snapshot(105.0, skewed), 105.0, state)
    assert decision.action is REBALANCE and decision.params["replicas"] == 4 and decision.t0 == 100.0
    assert "task_skew=2" in decision.reason and "nodes_ready=3" in decision.reason
    assert evaluate(ruleset, snapshot(110.0, skewed), 110.0, state) == []  # cooling down
    balanced = {"worker-1": 2, "worker-2": 1, "worker-3": 1}
    for t in (140.0, 145.0, 150.0):
        assert evaluate(ruleset, snapshot(t, balanced), t, state) == []


# ---- the rule, the runtime and the executor together -----------------------------------------

def run_controller(fake: FakeEngine, swarm: SwarmAdapter, *, rounds: int, dry_run: bool = False,
                   until: Any = None) -> tuple[list[ActionRecord], Counter[Verdict]]:
    """Refreshes the service list and evaluates every rule `rounds` times, 5 controller seconds apart
    (the service-list interval), waiting for each accepted action to end; the records and verdicts."""
    records: list[ActionRecord] = []
    done = threading.Condition()

    def on_record(record: ActionRecord) -> None:
        with done:
            records.append(record)
            done.notify_all()

    executor = Executor(swarm, ActionSettings(poll_interval=0.01, scale_timeout=10.0, dry_run=dry_run),
                        on_record=on_record, node_load=dict)
    verdicts: Counter[Verdict] = Counter()

    class Counting:
        def submit(self, decision: Decision, timeline: Timeline) -> Any:
            answer = executor.submit(decision, timeline)
            verdicts[answer.verdict] += 1
            return answer

        def __getattr__(self, name: str) -> Any:
            return getattr(executor, name)

    clock = FakeClock()
    rig = make_rig(clock=clock, rules=rules(), evaluate=evaluate, state=RuleState(), executor=Counting())
    refresher = ServiceRefresher(swarm, rig.runtime.cache, clock=clock)
    try:
        for _ in range(rounds):
            clock.advance(5.0)
            assert refresher.refresh()
            before = len(records)
            rig.runtime.scrape_and_evaluate()
            if verdicts[Verdict.ACCEPTED] > sum(1 for r in records if not r.dry_run):
                with done:
                    assert done.wait_for(lambda before=before: len(records) > before, timeout=20), "the action did not end"
            if until is not None and until():
                break
    finally:
        executor.shutdown(wait=True)
    return records, verdicts


@pytest.mark.parametrize(("replicas", "moves"), [(4, 1), (8, 2)])
def test_after_a_node_comes_back_tasks_move_to_it_one_at_a_time_until_the_skew_is_at_most_one(
        cluster: FakeEngine, swarm: SwarmAdapter, replicas: int, moves: int) -> None:
    deploy(cluster, "web", replicas)
    deploy(cluster, "calm", 2)  # at most one task per node all along: the rule leaves it alone
    outage(cluster, "web", "worker-3", replicas)
    assert cluster.wait_until(lambda: len(cluster.running_tasks("calm")) == 2 and skew(spread(cluster, "calm")) == 1)
    cluster_before = spread(cluster, "web")
    assert skew(cluster_before) >= 2 and cluster_before["worker-3"] == 0
    survivors = {task for task, _ in cluster.running_tasks("web")}
    calm = set(cluster.running_tasks("calm"))
    poller = TaskPoller(cluster.base_url, names={s.id: s.name for s in swarm.list_services()}, max_moving=1,
                        max_moving_total=3)
    polling = threading.Thread(target=poller.run, daemon=True)
    polling.start()
    try:
        records, verdicts = run_controller(cluster, swarm, rounds=40)
    finally:
        poller.stop()
        polling.join(5)
    assert [(r.action, r.service, r.result) for r in records] == [("rebalance", "web", Result.SUCCESS)] * moves
    assert all(r.node_to == "worker-3" for r in records)
    after = spread(cluster, "web")
    assert skew(after) <= 1 and sum(after.values()) == replicas and after["worker-3"] >= 1
    assert poller.violations == [] and poller.peak_service == 1 and poller.polls > 20  # one task in transition at most
    placed = {task for task, _ in cluster.running_tasks("web")} - survivors
    assert len(placed) == moves  # every move added exactly one task ...
    assert len(survivors - {task for task, _ in cluster.running_tasks("web")}) == moves  # ... and removed one
    assert set(read_moved(swarm.get_service("web").labels)) == placed  # none of which is moved again
    assert set(cluster.running_tasks("calm")) == calm
    assert swarm.get_service("web").replicas == replicas and ACTION_LABEL not in swarm.get_service("web").labels
    assert [e.state for e in cluster.task_events("web") if e.task_id in placed].count("running") == moves


def test_in_dry_run_the_record_says_what_would_be_done_and_nothing_changes(cluster: FakeEngine,
                                                                            swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    outage(cluster, "web", "worker-3", 4)
    version = cluster.service_version("web")
    records, _ = run_controller(cluster, swarm, rounds=3, dry_run=True)
    [record] = records
    assert record.result is Result.DRY_RUN and record.action == "rebalance"
    assert "task_skew=2" in record.reason
    assert ("would move one task of web, start-first: scale 4 -> 5 (Swarm's spread starts the new task on the "
            "eligible node with the fewest of its tasks), wait until it runs, then 5 -> 4") in record.reason
    assert cluster.service_version("web") == version and spread(cluster, "web")["worker-3"] == 0


def test_the_rule_stays_quiet_on_a_skew_the_services_own_constraints_make(cluster: FakeEngine,
                                                                          swarm: SwarmAdapter) -> None:
    deploy(cluster, "pinned", 4, constraints=["node.hostname==worker-1"])  # 4-0-0-0 by design
    deploy(cluster, "workers", 3, constraints=["node.role==worker"])
    outage(cluster, "workers", "worker-3", 3)  # 2-1 on the workers, the manager never counts
    records, verdicts = run_controller(cluster, swarm, rounds=4)
    assert [r.service for r in records] == ["workers"] and sum(verdicts.values()) == 1
    assert spread(cluster, "pinned") == {"manager-1": 0, "worker-1": 4, "worker-2": 0, "worker-3": 0}


# ---- refusals, restart ---------------------------------------------------------------------------

def decision(service: str = "web", replicas: int = 4) -> Decision:
    return Decision(rule="rebalance", action=REBALANCE, service=service, container_id=None, node=None, t0=1.0,
                    reason="task_skew=2", params={**{p.name: param_defaults()[p.name] for p in REBALANCE.params},
                                                  "replicas": replicas})


def run_one(swarm: SwarmAdapter, decision: Decision) -> ActionRecord:
    records: list[ActionRecord] = []
    executor = Executor(swarm, ActionSettings(poll_interval=0.01, scale_timeout=5.0), on_record=records.append,
                        node_load=dict)
    try:
        assert executor.submit(decision, Timeline()).verdict is Verdict.ACCEPTED
    finally:
        executor.shutdown(wait=True)
    [record] = records
    return record


def test_a_task_a_rebalance_placed_recently_on_a_node_swarm_could_take_from_is_never_moved_again(
        cluster: FakeEngine, swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    outage(cluster, "web", "worker-3", 4)
    counts = spread(cluster, "web")
    fullest = max(counts, key=lambda node: counts[node])
    task = next(t for t, node in cluster.running_tasks("web") if node == fullest)
    swarm.update_placement("web", labels={MOVED_LABEL: write_moved({task: time.time() + 600})})
    version = cluster.service_version("web")
    record = run_one(swarm, decision())
    assert record.result is Result.REJECTED and f"task {task[:12]} on {fullest} was moved there by a rebalance" in (
        record.error or "")
    assert cluster.service_version("web") == version  # nothing written
    swarm.update_placement("web", labels={MOVED_LABEL: write_moved({task: time.time() - 1})})  # expired
    assert run_one(swarm, decision()).result is Result.SUCCESS


def test_a_balanced_or_moving_service_is_left_alone_by_the_action_itself(cluster: FakeEngine,
                                                                         swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    record = run_one(swarm, decision())
    assert record.result is Result.REJECTED and "nothing to move" in (record.error or "")
    cluster.set_timing("web", healthy=False)
    swarm.scale("web", 5)  # a replica that never gets healthy: the service is in transition
    record = run_one(swarm, decision(replicas=5))
    assert record.result is Result.REJECTED and "in transition" in (record.error or "")


def test_an_extra_task_that_never_runs_is_taken_back_and_the_count_restored(cluster: FakeEngine,
                                                                             swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    outage(cluster, "web", "worker-3", 4)
    cluster.set_timing("web", healthy=False)
    records: list[ActionRecord] = []
    executor = Executor(swarm, ActionSettings(poll_interval=0.01, scale_timeout=0.5), on_record=records.append,
                        node_load=dict)
    try:
        executor.submit(decision(), Timeline())
    finally:
        executor.shutdown(wait=True)
    [record] = records
    assert record.result is Result.TIMEOUT and "scaled back to 4" in record.reason
    assert swarm.get_service("web").replicas == 4


def test_a_restart_in_the_middle_of_a_move_sets_the_count_back_and_is_recorded(cluster: FakeEngine,
                                                                               swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    marker = write_action(id="abc", action="rebalance", replicas=4, node="worker-1", started=1.0)
    swarm.scale("web", 5, labels={ACTION_LABEL: marker})  # the controller died after the first write
    records: list[ActionRecord] = []
    executor = Executor(swarm, ActionSettings(), on_record=records.append, node_load=dict)
    try:
        assert executor.reconcile()
    finally:
        executor.shutdown()
    [record] = records
    assert (record.id, record.action, record.result, record.rule) == ("abc", "rebalance", Result.SUCCESS, "(interrupted)")
    assert "replica count set back from 5 to 4" in record.reason
    view = swarm.get_service("web")
    assert view.replicas == 4 and ACTION_LABEL not in view.labels
    assert cluster.wait_until(lambda: len(cluster.running_tasks("web")) == 4)


# ---- the plugin's place in the loader and the settings ------------------------------------------

def test_the_plugin_brings_its_rule_parameter_and_setting_along() -> None:
    assert ActionSettings().moved_hold == 600.0 and param_defaults(ActionSettings(moved_hold=60.0))["moved_hold"] == 60.0
    with pytest.raises(SettingsError, match="moved_hold: must be >= 0"):
        ActionSettings(moved_hold=-1.0)
    with pytest.raises(RuleError, match="action rebalance needs scope service, not container"):
        load_rules([_write("rules:\n  - {name: r, when: cpu > 1, action: rebalance}\n")])
    with pytest.raises(RuleError, match="moved_hold"):
        load_rules([_write("rules:\n  - {name: r, scope: service, when: replicas > 1, action: scale_down, "
                           "moved_hold: 1m}\n")])


def test_the_fake_engine_scales_down_as_swarm_does_from_the_node_with_the_most_copies(
        cluster: FakeEngine, swarm: SwarmAdapter) -> None:
    deploy(cluster, "web", 4)
    outage(cluster, "web", "worker-3", 4)
    counts = spread(cluster, "web")
    swarm.scale("web", 5)
    assert cluster.wait_until(lambda: spread(cluster, "web")["worker-3"] == 1 and len(cluster.running_tasks("web")) == 5)
    swarm.scale("web", 4)
    assert cluster.wait_until(lambda: len(cluster.running_tasks("web")) == 4)
    fullest = max(counts, key=lambda node: counts[node])
    assert spread(cluster, "web") == {**counts, fullest: counts[fullest] - 1, "worker-3": 1}
