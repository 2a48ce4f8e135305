"""The recovery actions against the fake engine: zero-downtime migration, owned exclusions,
scale bounds, global limits, dry-run, reconcile after a restart and time-outs."""
from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from controller.actions.executor import Executor
from controller.actions.migrate import MIGRATE
from controller.actions.ownership import ACTION_LABEL, EXCLUSIONS_LABEL, write_action, write_exclusions
from controller.actions.plugin import ActionPlugin
from controller.actions.registry import PLUGINS, param_defaults
from controller.actions.settings import ActionSettings
from controller.model import ActionRecord, Decision, Submission, Timeline, Verdict
from sgcommon.engine import EngineUnavailable
from sgcommon.settings import SettingsError
from sgcommon.engine.swarm import SwarmAdapter
from tests.controller.conftest import FakeClock
from tests.fakes.engine import FakeEngine, service_spec

FAST = dict(poll_interval=0.01, migrate_timeout=5.0, scale_timeout=5.0)


class Records:
    """Collects on_record calls; `wait(n)` blocks until n records arrived."""

    def __init__(self) -> None:
        self.items: list[ActionRecord] = []
        self._cond = threading.Condition()

    def __call__(self, record: ActionRecord) -> None:
        with self._cond:
            self.items.append(record)
            self._cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 10.0) -> list[ActionRecord]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= n, timeout=timeout), f"only {self.items}"
            return list(self.items)


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture
def make_executor(swarm: SwarmAdapter, records: Records) -> Iterator[Callable[..., Executor]]:
    made: list[Executor] = []

    def make(clock: Callable[[], float] | None = None, **settings: object) -> Executor:
        executor = Executor(swarm, ActionSettings(**{**FAST, **settings}), on_record=records,  # type: ignore[arg-type]
                            node_load=lambda: {"worker-1": 10.0, "worker-2": 50.0, "manager-1": 30.0},
                            **({"clock": clock} if clock else {}))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.shutdown(wait=True)


def deploy(fake: FakeEngine, name: str, *, node: str | None = "worker-1", **kwargs: object) -> None:
    """Creates a service and waits until it runs (on `node` first, then free to move)."""
    constraints = [f"node.hostname=={node}"] if node else []
    fake.create_service(service_spec(name, constraints=constraints, **kwargs))  # type: ignore[arg-type]
    assert fake.wait_until(lambda: len(fake.running_tasks(name)) == (kwargs.get("replicas") or 1))
    if node:  # drop the pin without moving anything (relaxing a constraint moves nothing)
        spec = fake.service_spec(name)
        spec["TaskTemplate"]["Placement"]["Constraints"] = []
        fake.update_service(name, fake.service_version(name), spec)


def complete(plugin: ActionPlugin, params: dict[str, float]) -> dict[str, float]:
    """The parameters a rule of `plugin` carries: the given ones, the defaults for the rest."""
    defaults = param_defaults()
    return {**{p.name: defaults[p.name] for p in plugin.params}, **params}


def migrate_decision(fake: FakeEngine, name: str, node: str = "worker-1", **params: float) -> Decision:
    [(task_id, on)] = [t for t in fake.running_tasks(name) if t[1] == node]
    cid = fake.container_of(task_id)
    return Decision(rule="migrate-on-container-problem", action=MIGRATE, service=name, container_id=cid,
                    node=on, t0=1.0, reason="cpu 91.0 > 75", params=complete(MIGRATE, params))


def scale_decision(name: str, action: str, **params: float) -> Decision:
    plugin = PLUGINS[action]
    return Decision(rule=f"{action}-rule", action=plugin, service=name, container_id=None, node=None, t0=1.0,
                    reason="load", params=complete(plugin, params))


def verdict(submission: Submission) -> str:
    return submission.verdict.value


def writes(fake: FakeEngine) -> list[tuple[str, str]]:
    return [r for r in fake.requests if r[0] != "GET"]


def test_migration_runs_the_replacement_before_the_old_task_stops(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    timeline = Timeline(t0=1.0)
    assert make_executor().submit(migrate_decision(fake_engine, "web"), timeline).verdict is Verdict.ACCEPTED
    [record] = records.wait()
    assert record.result == "success", record.error
    assert record.node_from == "worker-1" and record.node_to in ("manager-1", "worker-2")
    events = fake_engine.task_events("web")
    new_running = next(e for e in events if e.state == "running" and e.node != "worker-1")
    old_stopped = next(e for e in events if e.state == "shutdown" and e.node == "worker-1")
    assert new_running.t < old_stopped.t
    assert timeline.t4 is not None and timeline.t4 <= timeline.t5 <= timeline.t6  # type: ignore[operator]
    assert timeline.t6 >= old_stopped.t  # type: ignore[operator]


def test_migration_records_its_exclusion_sets_start_first_and_clears_its_marker(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    make_executor().submit(migrate_decision(fake_engine, "web", exclusion_ttl=120.0), Timeline())
    [record] = records.wait()
    spec = fake_engine.service_spec("web")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=worker-1"]
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert "update order changed from stop-first to start-first" in record.reason
    owned = json.loads(spec["Labels"][EXCLUSIONS_LABEL])
    assert list(owned) == ["worker-1"]
    assert owned["worker-1"] == pytest.approx(record.timeline.t4 + 120.0, abs=1.0)
    assert ACTION_LABEL not in spec["Labels"]


def test_the_exclusion_lasts_the_decisions_exclusion_ttl(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    make_executor().submit(migrate_decision(fake_engine, "web", exclusion_ttl=30.0), Timeline())
    [record] = records.wait()
    owned = json.loads(fake_engine.service_spec("web")["Labels"][EXCLUSIONS_LABEL])
    assert owned["worker-1"] == pytest.approx(record.timeline.t4 + 30.0, abs=1.0)


def test_migration_never_excludes_the_last_eligible_node(fake_engine, make_executor, records) -> None:
    fake_engine.create_service(service_spec("web", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    version = fake_engine.service_version("web")
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    [record] = records.wait()
    assert record.result == "rejected"
    assert "no eligible node" in (record.error or "")
    assert fake_engine.service_version("web") == version


def test_a_node_already_excluded_counts_against_the_remaining_nodes(fake_engine, make_executor, records, swarm) -> None:
    deploy(fake_engine, "web")
    swarm.update_placement("web", add=["node.hostname!=manager-1", "node.hostname!=worker-2"])
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    assert records.wait()[0].result == "rejected"


def test_a_service_without_healthcheck_is_migrated_with_a_warning(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "plain", healthcheck=False)
    make_executor().submit(migrate_decision(fake_engine, "plain"), Timeline())
    [record] = records.wait()
    assert record.result == "success"
    assert "zero downtime not guaranteed" in record.reason


def migrated_with_exclusion(fake_engine: FakeEngine, make_executor: Callable[..., Executor], records: Records,
                            clock: FakeClock) -> Executor:
    """An executor that has moved "web" off worker-1, excluding that node for 300 s."""
    deploy(fake_engine, "web")
    executor = make_executor(clock=clock)
    executor.submit(migrate_decision(fake_engine, "web", exclusion_ttl=300.0), Timeline())
    assert records.wait()[0].result == "success"
    return executor


def test_expired_exclusions_are_lifted_and_lifting_moves_nothing(fake_engine, make_executor, records) -> None:
    clock = FakeClock()
    executor = migrated_with_exclusion(fake_engine, make_executor, records, clock)
    running = fake_engine.running_tasks("web")
    assert executor.lift_expired_exclusions() == 0
    clock.advance(301.0)
    assert executor.lift_expired_exclusions() == 1
    spec = fake_engine.service_spec("web")
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == []
    assert EXCLUSIONS_LABEL not in spec["Labels"]
    assert not fake_engine.wait_until(lambda: fake_engine.running_tasks("web") != running, timeout=0.2)


def test_the_lifting_job_reads_and_holds_only_services_with_an_expired_exclusion(fake_engine, make_executor, records) -> None:
    clock = FakeClock()
    executor = migrated_with_exclusion(fake_engine, make_executor, records, clock)
    fake_engine.requests.clear()
    assert executor.lift_expired_exclusions() == 0
    assert [path for method, path in fake_engine.requests if method == "GET" and "/services/" in path] == []
    clock.advance(301.0)
    assert executor.lift_expired_exclusions() == 1


def test_an_operator_constraint_is_never_lifted(fake_engine, make_executor, swarm) -> None:
    clock = FakeClock()
    deploy(fake_engine, "web")
    swarm.update_placement("web", add=["node.hostname!=manager-1"],
                           labels={EXCLUSIONS_LABEL: write_exclusions({"worker-2": clock() - 1})})
    swarm.update_placement("web", add=["node.hostname!=worker-2"])
    assert make_executor(clock=clock).lift_expired_exclusions() == 1
    assert fake_engine.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=manager-1"]


def test_a_version_conflict_during_migration_is_retried_once(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.version_conflict(times=1)
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    assert records.wait()[0].result == "success"


def test_server_errors_are_backed_off_and_the_migration_completes(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.fail("POST", r"/update$", status=500, times=2)
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    assert records.wait()[0].result == "success"


def test_a_persistent_engine_error_is_recorded_as_failed(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.fail("POST", r"/update$", status=500, message="raft unavailable", times=50)
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    [record] = records.wait()
    assert record.result == "failed" and "raft unavailable" in (record.error or "")


def test_three_services_are_migrated_at_once_without_interference(fake_engine, make_executor, records) -> None:
    names = ("web", "api", "shop")
    for name in names:
        deploy(fake_engine, name)
    executor = make_executor()
    for name in names:
        fake_engine.set_timing(name, start_delay=0.1)
    verdicts = [verdict(executor.submit(migrate_decision(fake_engine, name), Timeline())) for name in names]
    assert verdicts == ["accepted"] * 3
    assert executor.busy_services() == set(names)
    done = records.wait(3)
    assert {r.service: r.result for r in done} == dict.fromkeys(names, "success")
    for name in names:
        spec = fake_engine.service_spec(name)
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=worker-1"]
        assert list(json.loads(spec["Labels"][EXCLUSIONS_LABEL])) == ["worker-1"]
        assert [n for _, n in fake_engine.running_tasks(name)] != ["worker-1"]
    assert executor.busy_services() == set()


def test_a_second_decision_for_a_busy_service_answers_busy(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", start_delay=0.2)
    executor = make_executor()
    assert verdict(executor.submit(migrate_decision(fake_engine, "web"), Timeline())) == "accepted"
    assert verdict(executor.submit(scale_decision("web", "scale_up"), Timeline())) == "busy"
    assert len(records.wait()) == 1


def test_dry_run_records_what_it_would_do_and_touches_nothing(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    before = len(fake_engine.requests)
    executor = make_executor(dry_run=True)
    assert verdict(executor.submit(migrate_decision(fake_engine, "web"), Timeline())) == "dry_run"
    assert verdict(executor.submit(scale_decision("api", "scale_up"), Timeline())) == "dry_run"
    executor.reconcile()
    assert executor.lift_expired_exclusions() == 0
    assert len(fake_engine.requests) == before
    migrate_record, scale_record = records.wait(2)
    assert migrate_record.result == "dry_run" and migrate_record.dry_run
    assert "would exclude node worker-1" in migrate_record.reason
    assert scale_record.result == "dry_run"


def test_the_rate_limit_caps_actions_per_minute(make_executor, records) -> None:
    clock = FakeClock()
    executor = make_executor(clock=clock, dry_run=True, max_actions_per_minute=2)
    verdicts = [verdict(executor.submit(scale_decision(f"s{i}", "scale_up"), Timeline())) for i in range(3)]
    assert verdicts == ["dry_run", "dry_run", "rate_limited"]
    clock.advance(59.0)
    assert verdict(executor.submit(scale_decision("s3", "scale_up"), Timeline())) == "rate_limited"
    clock.advance(1.5)
    assert verdict(executor.submit(scale_decision("s4", "scale_up"), Timeline())) == "dry_run"
    assert len(records.items) == 3


def test_an_unknown_action_is_refused_and_recorded(make_executor, records) -> None:
    reboot = dataclasses.replace(PLUGINS["scale_up"], name="reboot")
    decision = Decision(rule="r", action=reboot, service="web", container_id=None, node=None, t0=1.0, reason="load",
                        params={"max_replicas": 3})
    assert make_executor().submit(decision, Timeline()) == Submission(Verdict.REFUSED, "unknown action 'reboot'")
    [record] = records.wait()
    assert (record.action, record.result, record.error) == ("reboot", "rejected", "unknown action 'reboot'")


def test_a_decision_without_its_actions_parameters_is_refused_and_recorded(make_executor, records) -> None:
    decision = Decision(rule="r", action=MIGRATE, service="web", container_id="c", node="worker-1", t0=1.0,
                        reason="cpu", params={})
    submission = make_executor().submit(decision, Timeline())
    assert submission == Submission(Verdict.REFUSED, "the decision lacks the parameters exclusion_ttl")
    assert records.wait()[0].result == "rejected"


def test_scale_up_adds_one_replica_and_is_done_when_it_runs(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web", node=None)
    timeline = Timeline()
    make_executor().submit(scale_decision("web", "scale_up", max_replicas=3), timeline)
    [record] = records.wait()
    assert record.result == "success", record.error
    assert (record.replicas_before, record.replicas_after) == (1, 2)
    assert len(fake_engine.running_tasks("web")) == 2
    new_running = [e for e in fake_engine.task_events("web", state="running")][-1]
    assert timeline.t5 is not None and timeline.t5 >= new_running.t
    assert ACTION_LABEL not in fake_engine.service_spec("web")["Labels"]


def test_scale_up_stops_at_the_maximum(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web", node=None, replicas=2)
    version = fake_engine.service_version("web")
    make_executor().submit(scale_decision("web", "scale_up", max_replicas=2), Timeline())
    [record] = records.wait()
    assert record.result == "rejected" and "max 2" in (record.error or "")
    assert fake_engine.service_version("web") == version


def test_scale_down_removes_one_replica_but_never_below_the_minimum(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web", node=None, replicas=2)
    executor = make_executor()
    executor.submit(scale_decision("web", "scale_down", min_replicas=1), Timeline())
    assert records.wait()[0].result == "success"
    assert len(fake_engine.running_tasks("web")) == 1
    executor.submit(scale_decision("web", "scale_down", min_replicas=1), Timeline())
    second = records.wait(2)[1]
    assert second.result == "rejected" and "min 1" in (second.error or "")
    assert fake_engine.service_spec("web")["Mode"]["Replicated"]["Replicas"] == 1


def test_a_global_service_is_never_scaled(fake_engine, make_executor, records) -> None:
    fake_engine.create_service(service_spec("agent", replicas=None))
    version = fake_engine.service_version("agent")
    make_executor().submit(scale_decision("agent", "scale_up"), Timeline())
    [record] = records.wait()
    assert record.result == "rejected" and "global" in (record.error or "")
    assert fake_engine.service_version("agent") == version


def test_a_migration_timeout_leaves_the_old_task_serving_and_the_exclusion_owned(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    fake_engine.set_timing("web", healthy=False)
    make_executor(migrate_timeout=0.3).submit(migrate_decision(fake_engine, "web"), Timeline())
    [record] = records.wait()
    assert record.result == "timeout"
    assert "replacement task running" in (record.error or "")
    assert [n for _, n in fake_engine.running_tasks("web")] == ["worker-1"]  # start-first kept it
    labels = fake_engine.service_spec("web")["Labels"]
    assert list(json.loads(labels[EXCLUSIONS_LABEL])) == ["worker-1"]
    assert ACTION_LABEL not in labels


def test_reconcile_resolves_an_interrupted_migration_without_repeating_it(fake_engine, make_executor, records, swarm) -> None:
    deploy(fake_engine, "web")
    [(old_task, _)] = fake_engine.running_tasks("web")
    clock = FakeClock()
    marker = write_action(id="abc", action="migrate", node="worker-1", task=old_task, started=clock())
    swarm.update_placement("web", add=["node.hostname!=worker-1"], update_order="start-first",
                           labels={EXCLUSIONS_LABEL: write_exclusions({"worker-1": clock() + 300}), ACTION_LABEL: marker})
    assert fake_engine.wait_until(lambda: fake_engine.task_events("web", state="shutdown") != [])
    make_executor(clock=clock).reconcile()
    [record] = records.wait()
    assert (record.id, record.action, record.result) == ("abc", "migrate", "success")
    assert "not repeated" in record.reason
    spec = fake_engine.service_spec("web")
    assert ACTION_LABEL not in spec["Labels"]
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=worker-1"]
    assert list(json.loads(spec["Labels"][EXCLUSIONS_LABEL])) == ["worker-1"]
    assert len(fake_engine.task_events("web", state="new")) == 2  # the original and one replacement


def test_reconcile_lifts_expired_exclusions_and_forgets_ones_an_operator_removed(fake_engine, make_executor, swarm) -> None:
    clock = FakeClock()
    deploy(fake_engine, "web")
    deploy(fake_engine, "api")
    swarm.update_placement("web", add=["node.hostname!=manager-1"],
                           labels={EXCLUSIONS_LABEL: write_exclusions({"manager-1": clock() - 5})})
    swarm.update_placement("api", labels={EXCLUSIONS_LABEL: write_exclusions({"worker-2": clock() + 300})})
    make_executor(clock=clock).reconcile()
    assert fake_engine.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"] == []
    assert EXCLUSIONS_LABEL not in fake_engine.service_spec("web")["Labels"]
    assert EXCLUSIONS_LABEL not in fake_engine.service_spec("api")["Labels"]


def test_an_unreadable_ownership_label_is_left_alone(fake_engine, make_executor, swarm) -> None:
    deploy(fake_engine, "web")
    swarm.update_placement("web", labels={EXCLUSIONS_LABEL: "not json"})
    version = fake_engine.service_version("web")
    executor = make_executor()
    executor.reconcile()
    assert executor.lift_expired_exclusions() == 0
    assert fake_engine.service_version("web") == version


def test_a_container_swarm_already_replaced_is_not_migrated(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    decision = migrate_decision(fake_engine, "web")
    gone = replace(decision, container_id="f" * 64)
    version = fake_engine.service_version("web")
    make_executor().submit(gone, Timeline())
    [record] = records.wait()
    assert record.result == "rejected" and "already replaced" in (record.error or "")
    assert fake_engine.service_version("web") == version


def test_the_task_node_wins_over_the_node_the_alert_named(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    decision = migrate_decision(fake_engine, "web")
    make_executor().submit(replace(decision, node="worker-2"), Timeline())
    [record] = records.wait()
    assert record.result == "success" and record.node_from == "worker-1"
    assert "runs on worker-1, not on worker-2" in record.reason
    assert fake_engine.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=worker-1"]


def test_a_submit_after_shutdown_is_refused_and_leaves_nothing_busy(make_executor) -> None:
    executor = make_executor()
    executor.shutdown()
    assert executor.submit(scale_decision("web", "scale_up"), Timeline()) == Submission(
        Verdict.REFUSED, "the executor is shutting down")
    assert executor.busy_services() == set()


def test_migrating_one_replica_leaves_the_other_replicas_where_they_are(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web", node=None, replicas=3)
    before = {task for task, node in fake_engine.running_tasks("web") if node != "worker-1"}
    make_executor().submit(migrate_decision(fake_engine, "web"), Timeline())
    [record] = records.wait()
    assert record.result == "success", record.error
    after = fake_engine.running_tasks("web")
    assert before <= {task for task, _ in after}
    assert len(after) == 3 and "worker-1" not in [node for _, node in after]


def test_reconcile_resolves_an_interrupted_scale_up_without_adding_another_replica(fake_engine, make_executor, records, swarm) -> None:
    deploy(fake_engine, "web", node=None)
    swarm.scale("web", 2, labels={ACTION_LABEL: write_action(id="def", action="scale_up", replicas=2, started=1.0)})
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 2)
    make_executor().reconcile()
    [record] = records.wait()
    assert (record.id, record.action, record.result, record.replicas_after) == ("def", "scale_up", "success", 2)
    spec = fake_engine.service_spec("web")
    assert spec["Mode"]["Replicated"]["Replicas"] == 2 and ACTION_LABEL not in spec["Labels"]


def test_reconcile_reports_an_interrupted_action_swarm_has_not_finished(fake_engine, make_executor, records, swarm) -> None:
    deploy(fake_engine, "web", node=None)
    fake_engine.set_timing("web", healthy=False)
    swarm.scale("web", 2, labels={ACTION_LABEL: write_action(id="ghi", action="scale_up", replicas=2, started=1.0)})
    make_executor().reconcile()
    [record] = records.wait()
    assert record.result == "failed" and "1 of 2 replicas running" in record.reason
    assert fake_engine.service_spec("web")["Mode"]["Replicated"]["Replicas"] == 2


class FlakyTasks(SwarmAdapter):
    """Task listing fails `failures` times once the service has been written."""

    def __init__(self, inner: SwarmAdapter, failures: int) -> None:
        self.__dict__.update(inner.__dict__)
        self.failures = failures
        self.written = False

    def update_placement(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.written = True
        return super().update_placement(*args, **kwargs)

    def list_tasks(self, **kwargs):  # type: ignore[no-untyped-def]
        if self.written and self.failures > 0:
            self.failures -= 1
            raise EngineUnavailable("list tasks: engine unreachable (ConnectionError)")
        return super().list_tasks(**kwargs)


def test_an_engine_error_while_waiting_does_not_fail_a_migration_already_in_swarm(fake_engine, swarm, records) -> None:
    deploy(fake_engine, "web")
    flaky = FlakyTasks(swarm, failures=3)
    executor = Executor(flaky, ActionSettings(**FAST), on_record=records, node_load=dict)
    executor.submit(migrate_decision(fake_engine, "web"), Timeline())
    [record] = records.wait()
    executor.shutdown()
    assert record.result == "success", record.error
    assert flaky.failures == 0


def test_a_reconcile_that_cannot_reach_the_engine_is_finished_by_the_periodic_job(fake_engine, make_executor, records, swarm) -> None:
    deploy(fake_engine, "web")
    swarm.update_placement("web", labels={ACTION_LABEL: write_action(id="jkl", action="migrate", node="worker-9", task="x")})
    fake_engine.fail("GET", r"^/services$", status=500, times=4)  # the adapter's three back-offs, then raised
    executor = make_executor()
    executor.reconcile()
    assert records.items == []
    assert executor.lift_expired_exclusions() == 0
    [record] = records.wait()
    assert record.id == "jkl"
    assert ACTION_LABEL not in fake_engine.service_spec("web")["Labels"]


def test_lifting_while_the_engine_is_unreachable_lifts_nothing_and_raises_nothing(fake_engine, make_executor, swarm) -> None:
    clock = FakeClock()
    deploy(fake_engine, "web")
    swarm.update_placement("web", add=["node.hostname!=manager-1"],
                           labels={EXCLUSIONS_LABEL: write_exclusions({"manager-1": clock() - 5})})
    executor = make_executor(clock=clock)
    fake_engine.fail("GET", r"^/services$", status=500, times=4)  # the adapter's three back-offs, then raised
    assert executor.lift_expired_exclusions() == 0
    assert fake_engine.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname!=manager-1"]
    assert executor.lift_expired_exclusions() == 1  # the engine answers again: the expired exclusion goes
    assert fake_engine.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"] == []


def test_a_decision_without_container_moves_the_task_on_the_named_node(fake_engine, make_executor, records) -> None:
    deploy(fake_engine, "web")
    make_executor().submit(replace(migrate_decision(fake_engine, "web"), container_id=None), Timeline())
    assert records.wait()[0].node_from == "worker-1"
    make_executor().submit(replace(migrate_decision(fake_engine, "web", node=fake_engine.running_tasks("web")[0][1]),
                                   container_id=None, node=None), Timeline())
    assert records.wait(2)[1].result == "rejected"


def test_bad_action_settings_are_all_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        ActionSettings(migrate_timeout=0, workers=0, max_replicas=0, min_replicas=1, exclusion_ttl=0.5,
                       max_moving=2, max_moving_total=1)
    assert all(name in str(info.value) for name in ("migrate_timeout", "workers", "max_replicas", "exclusion_ttl",
                                                     "max_moving_total"))


def test_more_actions_than_workers_queue_and_all_complete(fake_engine, make_executor, records) -> None:
    names = [f"svc{i}" for i in range(5)]
    for name in names:
        deploy(fake_engine, name, node=None)
    executor = make_executor(workers=2, max_moving_total=5)
    verdicts = [verdict(executor.submit(scale_decision(name, "scale_up"), Timeline())) for name in names]
    assert verdicts == ["accepted"] * 5
    done = records.wait(5, timeout=20)
    assert sorted((r.service, r.result, r.replicas_after) for r in done) == [(n, "success", 2) for n in names]
    assert all(len(fake_engine.running_tasks(name)) == 2 for name in names)


def test_every_action_is_logged_as_one_line_with_its_timeline(make_executor, records, caplog) -> None:
    caplog.set_level("INFO", logger="swarmguard.controller.actions")
    make_executor(dry_run=True).submit(scale_decision("web", "scale_up"), Timeline(t0=1.0, t3=2.0))
    [line] = [r for r in caplog.records if r.getMessage() == "action finished"]
    fields = line.fields  # type: ignore[attr-defined]
    assert (fields["service"], fields["result"], fields["t0"], fields["t3"], fields["t4"]) == ("web", "dry_run", 1.0, 2.0, None)
