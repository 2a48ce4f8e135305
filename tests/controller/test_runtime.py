"""The runtime's wiring: which evaluation each input triggers, the timeline it stamps, its life cycle,
and one end-to-end run with the real rules and engine against the fake Docker Engine API.

The stand-ins below (a rule source, a one-line rule engine, a recording executor and `make_rig`) are
also what the HTTP tests (test_app.py, test_alert_fuzz.py) and the latency benchmark drive the
runtime with; the real engine and executor are tested by their own modules."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controller.actions.executor import Executor
from controller.actions.migrate import MIGRATE
from controller.actions.settings import ActionSettings
from controller.app import AppConfig, create_app
from controller.cache import MetricsCache
from controller.decide import RuleState, evaluate
from controller.events import ControllerMetrics, EventLog
from controller.model import (
    ActionRecord,
    ContainerMetrics,
    Decision,
    Result,
    ServiceInfo,
    Snapshot,
    Submission,
    Timeline,
    Verdict,
)
from controller.rules import RuleSet, load_rules
from controller.runtime import Runtime, Schedule
from controller.services import ServiceRefresher
from sgcommon.alert import Alert, encode_alert
from sgcommon.engine.errors import EngineUnavailable
from sgcommon.engine.swarm import SwarmAdapter
from tests.controller.conftest import FakeClock
from tests.fakes.engine import FakeEngine, service_spec

TOKEN = "s3cret-token"


@dataclass
class FixedRules:
    """A rule source whose rules never change on disk."""

    rules: RuleSet = field(default_factory=RuleSet)
    checks: int = 0

    def current(self) -> RuleSet:
        return self.rules

    def check_now(self) -> bool:
        self.checks += 1
        return False


@dataclass
class CpuRule:
    """Migrate a container whose latest fresh sample has cpu > limit; remembers what it was asked."""

    limit: float = 75.0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, rules: RuleSet, snapshot: Snapshot, now: float, state: RuleState, *,
                 container_id: str | None = None, scope: str | None = None) -> list[Decision]:
        self.calls.append({"rules": rules, "now": now, "container_id": container_id, "scope": scope,
                           "containers": len(snapshot.containers)})
        if scope == "service":
            return []
        ids = [container_id] if container_id is not None else list(snapshot.containers)
        decisions = []
        for cid in ids:
            c = snapshot.containers.get(cid)
            if c is not None and not c.stale and c.cpu > self.limit:
                decisions.append(Decision(rule="cpu-high", action=MIGRATE, service=c.service, container_id=cid,
                                          node=c.node, t0=c.ts, reason=f"cpu {c.cpu} > {self.limit}"))
        return decisions


class RecordingExecutor:
    """Records submissions; finishes each at once with a record, like a dry-run executor would."""

    def __init__(self, on_record: Callable[[ActionRecord], None] | None = None, *,
                 answer: Submission = Submission(Verdict.ACCEPTED)) -> None:
        self.submitted: list[tuple[Decision, Timeline]] = []
        self.on_record = on_record
        self.answer = answer
        self.reconciled = self.shut_down = False
        self.lifted = 0
        self._lock = threading.Lock()

    def submit(self, decision: Decision, timeline: Timeline) -> Submission:
        with self._lock:
            self.submitted.append((decision, timeline))
        if self.on_record is not None:
            self.on_record(ActionRecord(id=f"a{len(self.submitted)}", action=decision.action.name,
                                        service=decision.service, rule=decision.rule, result=Result.DRY_RUN,
                                        timeline=timeline, node_from=decision.node, container_id=decision.container_id,
                                        dry_run=True))
        return self.answer

    def lift_expired_exclusions(self) -> int:
        self.lifted += 1
        return 0

    def release_settled(self) -> int:
        return 0

    def reconcile(self) -> bool | None:
        self.reconciled = True
        return None

    def busy_services(self) -> set[str]:
        return set()

    def moving(self) -> int:
        return 0

    def shutdown(self, wait: bool = True) -> None:
        self.shut_down = True


@dataclass
class Rig:
    runtime: Runtime
    executor: RecordingExecutor
    evaluate: Any  # a CpuRule unless the test passed the real engine
    registry: CollectorRegistry
    config: AppConfig


def make_rig(*, token: str | None = TOKEN, clock: Any = None, swarm: Any = None, **runtime_args: Any) -> Rig:
    """A Runtime with the stand-ins, unless `runtime_args` names real parts; `swarm` feeds the service list."""
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    events = EventLog(metrics, keep=100)
    cache = MetricsCache()
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    args: dict[str, Any] = {
        "cache": cache, "rules": FixedRules(), "evaluate": CpuRule(), "state": RuleState(),
        "executor": RecordingExecutor(events.record), "metrics": metrics, "events": events, "schedule": Schedule(),
        "services": ServiceRefresher(swarm, cache) if swarm is not None else None, **extra,
    }
    args.update(runtime_args)
    runtime = Runtime(**args)
    config = AppConfig(alert_token=token, registry=registry, recent_events=events.recent, **extra)
    return Rig(runtime=runtime, executor=args["executor"], evaluate=args["evaluate"], registry=registry, config=config)


def hot(cid: str, ts: float, *, cpu: float = 95.0) -> ContainerMetrics:
    return ContainerMetrics(node="worker-1", service="web", container_id=cid, task_id="t", ts=ts, cpu=cpu, mem=30.0,
                            mem_mb=100.0, net=2.0, net_rx=1.0, net_tx=1.0)


def test_a_scrape_round_evaluates_every_container_and_stamps_t2_t3_but_no_t1(clock: FakeClock) -> None:
    rig = make_rig(clock=clock)
    rig.runtime.cache.add_containers([hot("a", clock.now - 1), hot("b", clock.now - 1, cpu=5.0)])
    rig.runtime.scrape_and_evaluate()
    [call] = rig.evaluate.calls
    assert call["container_id"] is None and call["scope"] is None and call["containers"] == 2
    [(decision, timeline)] = rig.executor.submitted
    assert decision.container_id == "a"
    assert timeline.t1 is None and timeline.t2 == clock.now and timeline.t3 == clock.now
    assert timeline.t0 == clock.now - 1


def test_the_service_rule_job_evaluates_service_scope_only(clock: FakeClock) -> None:
    rig = make_rig(clock=clock)
    rig.runtime.evaluate_service_rules()
    assert [c["scope"] for c in rig.evaluate.calls] == ["service"]


def test_a_scrape_round_forgets_containers_not_seen_for_a_while(clock: FakeClock) -> None:
    rig = make_rig(clock=clock)
    rig.runtime.cache.add_container(hot("old", clock.now - 1000))
    rig.runtime.scrape_and_evaluate()
    assert rig.runtime.cache.stats()["containers"] == 0


def test_start_reconciles_and_schedules_every_job_and_stop_shuts_everything_down() -> None:
    closed: list[str] = []
    rig = make_rig(closers=(lambda: closed.append("influx"),))
    rig.runtime.start()
    try:
        assert rig.runtime._scheduler is not None
        jobs = {job.id for job in rig.runtime._scheduler.get_jobs()}
    finally:
        rig.runtime.stop()
    assert rig.executor.reconciled
    assert jobs == {"scrape", "services", "service_rules", "exclusions", "rules"}
    assert rig.executor.shut_down and closed == ["influx"]


def test_a_failing_job_is_logged_and_does_not_stop_the_runtime(clock: FakeClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from controller.runtime import _guarded

    def boom() -> None:
        raise RuntimeError("boom")

    _guarded("scrape", boom)()
    [record] = [r for r in caplog.records if r.getMessage() == "background job failed"]
    assert record.fields["job"] == "scrape"  # type: ignore[attr-defined]


def test_the_service_list_comes_from_swarm_with_replicas_labels_and_healthcheck(fake_engine: FakeEngine,
                                                                                 swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", replicas=2, labels={"swarmguard.enable": "true"}))
    fake_engine.create_service(service_spec("agent", replicas=None, healthcheck=False))
    rig = make_rig()
    refresher = ServiceRefresher(swarm, rig.runtime.cache)
    assert refresher.refresh()
    services = rig.runtime.cache.snapshot(time.time()).services
    assert dataclasses.replace(services["web"], tasks_per_node=None, observed=None) == ServiceInfo(
        name="web", replicas=2, labels={"swarmguard.enable": "true"}, has_healthcheck=True)
    assert sum((services["web"].tasks_per_node or {}).values()) == 2 and services["web"].observed is not None
    assert services["agent"].replicas is None and not services["agent"].has_healthcheck


def test_a_failed_service_refresh_keeps_the_last_list() -> None:
    class Broken:
        def list_services(self) -> list[ServiceInfo]:
            raise RuntimeError("engine gone")

    rig = make_rig()
    rig.runtime.cache.set_services({"web": ServiceInfo(name="web", replicas=1)})
    assert not ServiceRefresher(Broken(), rig.runtime.cache).refresh()
    assert set(rig.runtime.cache.snapshot(0.0).services) == {"web"}


def test_an_alert_stream_breaching_scenario_1_with_the_default_rules_ends_as_a_migration_on_events(
    fake_engine: FakeEngine, swarm: SwarmAdapter
) -> None:
    fake_engine.create_service(service_spec("web", replicas=2, labels={"swarmguard.enable": "true"}))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 2)
    task = swarm.list_tasks(service="web", desired_state="running")[0]
    rig = make_rig(rules=FixedRules(load_rules(["rules/default.yml"])), evaluate=evaluate, state=RuleState(),
                   swarm=swarm)
    rig.runtime.refresh_services()
    client = create_app(rig.config, rig.runtime).test_client()
    t = time.time() - 3  # samples from the last seconds, as a live exporter sends them
    codes = []
    for i in range(3):
        body = encode_alert(Alert(t0=t + i, t1=t + i + 0.01, node=task.node_hostname or "",
                                  container_id=task.container_id or "", service="web", task_id=task.id,
                                  metrics={"cpu": 92.0, "mem": 40.0, "mem_mb": 300.0, "net": 3.0, "net_rx": 1.0,
                                           "net_tx": 1.0}))
        codes.append(client.post("/alert", data=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code)
    assert codes == [200, 202, 200]  # `for: 2`, then the rule's cooldown
    [event] = client.get("/events").get_json()["events"]
    assert (event["action"], event["rule"], event["service"]) == ("migrate", "migrate-on-container-problem", "web")
    assert event["node_from"] == task.node_hostname and event["container_id"] == task.container_id
    assert event["t0"] == pytest.approx(t) and event["t1"] == pytest.approx(t + 1.01)
    assert event["t1"] <= event["t2"] <= event["t3"]


def test_a_reconcile_that_fails_at_start_is_retried_before_any_exclusion_is_lifted() -> None:
    rig = make_rig()
    calls = []

    def reconcile() -> None:
        calls.append("reconcile")
        if len(calls) == 1:
            raise RuntimeError("docker.sock not there yet")

    rig.executor.reconcile = reconcile  # type: ignore[method-assign]
    rig.runtime.start(scheduler=False)
    assert rig.runtime.health()["reconciled"] is False
    rig.runtime.lift_exclusions()
    assert calls == ["reconcile", "reconcile"] and rig.executor.lifted == 0
    rig.runtime.lift_exclusions()
    assert rig.executor.lifted == 1 and rig.runtime.health()["reconciled"] is True


class _UnreachableSwarm:
    """The engine socket is not there yet: every read fails as the adapter would report it."""

    def list_services(self, *, label: str | None = None) -> list[object]:
        raise EngineUnavailable("list services: docker.sock not there yet")


def test_health_says_not_reconciled_while_the_real_executor_could_not_reach_the_engine() -> None:
    executor = Executor(_UnreachableSwarm(), ActionSettings(), on_record=lambda record: None,  # type: ignore[arg-type]
                        node_load=dict)
    rig = make_rig(executor=executor)
    try:
        rig.runtime.start(scheduler=False)
        assert rig.runtime.health()["reconciled"] is False
    finally:
        executor.shutdown()


@pytest.mark.parametrize(("verdict", "released"), [(Verdict.BUSY, True), (Verdict.RATE_LIMITED, True),
                                                   (Verdict.OVER_BUDGET, True), (Verdict.ACCEPTED, False),
                                                   (Verdict.DRY_RUN, False), (Verdict.REFUSED, False)])
def test_a_decision_the_executor_did_not_take_gets_its_cooldown_released(clock: FakeClock, verdict: Verdict,
                                                                        released: bool) -> None:
    state = RuleState()
    rig = make_rig(clock=clock, state=state)
    rig.executor.answer = Submission(verdict, "why")
    state.cooldown_until[("cpu-high", "web")] = clock.now + 60  # as the engine leaves it when the rule fires
    rig.runtime.cache.add_container(hot("a", clock.now - 1))
    rig.runtime.scrape_and_evaluate()
    assert len(rig.executor.submitted) == 1
    assert state.in_cooldown("web", clock.now) == ([] if released else ["cpu-high"])
