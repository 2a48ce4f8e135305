"""The pure rule engine on a fake clock: scenarios, `for`, cooldowns, flapping, scope, safety."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.actions.migrate import MIGRATE
from controller.actions.scale import SCALE_DOWN, SCALE_UP
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, Decision, NodeMetrics, ServiceInfo, Snapshot
from controller.rules import RuleSet, load_rules

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_rules([str(ROOT / "rules" / "default.yml")])
OPT_IN = {"swarmguard.enable": "true"}

PROBLEM = {"cpu": 90.0, "mem": 50.0, "net": 5.0}  # scenario 1: cpu high, network low
TRAFFIC = {"cpu": 90.0, "mem": 90.0, "net": 80.0}  # scenario 2: everything high
CALM = {"cpu": 20.0, "mem": 30.0, "net": 20.0}
IDLE = {"cpu": 5.0, "mem": 10.0, "net": 1.0}


@dataclass
class World:
    """A cache stand-in: services, containers and their samples, turned into Snapshots."""

    services: dict[str, ServiceInfo] = field(default_factory=dict)
    latest: dict[str, ContainerMetrics] = field(default_factory=dict)
    history: dict[str, list[ContainerMetrics]] = field(default_factory=dict)
    nodes: dict[str, NodeMetrics] = field(default_factory=dict)

    def service(self, name: str, replicas: int | None = 1, labels: dict[str, str] | None = None) -> None:
        self.services[name] = ServiceInfo(name, replicas, OPT_IN if labels is None else labels)

    def sample(self, cid: str, ts: float, figures: dict[str, float], *, service: str = "web",
               node: str = "worker-1", stale: bool = False) -> ContainerMetrics:
        values = {"cpu": 0.0, "mem": 0.0, "mem_mb": 100.0, "net": 0.0, "net_rx": 1.0, "net_tx": 1.0}
        values.update(figures)
        metrics = ContainerMetrics(node, service, cid, f"task-{cid}", ts, stale=stale, **values)
        self.latest[cid] = metrics
        self.history.setdefault(cid, []).append(metrics)
        return metrics

    def snapshot(self) -> Snapshot:
        return Snapshot(dict(self.latest), {k: tuple(v) for k, v in self.history.items()}, dict(self.services),
                        dict(self.nodes))


def rules(tmp_path: Path, text: str) -> RuleSet:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    return load_rules([str(path)])


def run(ruleset: RuleSet, world: World, now: float, state: RuleState, **kwargs: object) -> list[Decision]:
    return evaluate(ruleset, world.snapshot(), now, state, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    w = World()
    w.service("web", replicas=2)
    return w


@pytest.fixture
def state() -> RuleState:
    return RuleState()


def test_scenario_one_migrates_after_two_consecutive_breaching_samples(world: World, state: RuleState) -> None:
    world.sample("c1", 100.0, PROBLEM)
    assert run(DEFAULT, world, 100.1, state) == []
    world.sample("c1", 101.0, PROBLEM)
    [decision] = run(DEFAULT, world, 101.1, state)
    assert (decision.action, decision.service, decision.container_id, decision.node) == \
        (MIGRATE, "web", "c1", "worker-1")
    assert decision.rule == "migrate-on-container-problem"
    assert decision.t0 == 100.0
    assert decision.params["cooldown"] == 30
    assert "cpu=90" in decision.reason and "net=5" in decision.reason and "net_low=35" in decision.reason


def test_scenario_two_scales_up_by_one_replica(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("c1", ts, TRAFFIC)
        decisions = run(DEFAULT, world, ts + 0.1, state)
    [decision] = decisions
    assert decision.action is SCALE_UP and decision.container_id == "c1"
    assert decision.params["replicas"] == 2 and decision.params["target_replicas"] == 3
    assert decision.params["max_replicas"] == 10


def test_the_same_sample_seen_by_alert_and_by_scrape_counts_once(world: World, state: RuleState) -> None:
    world.sample("c1", 100.0, PROBLEM)
    assert run(DEFAULT, world, 100.05, state, container_id="c1") == []  # the alert
    assert run(DEFAULT, world, 100.5, state) == []  # the scrape round brings the same sample
    assert run(DEFAULT, world, 100.9, state, container_id="c1") == []
    world.sample("c1", 101.0, PROBLEM)
    assert [d.action.name for d in run(DEFAULT, world, 101.1, state, container_id="c1")] == ["migrate"]


def test_an_alerts_rounded_timestamp_and_the_scrapes_full_one_are_the_same_sample(world: World,
                                                                                   state: RuleState) -> None:
    exact = 100.123456789
    world.sample("c1", round(exact, 4), PROBLEM)  # the alert (sgcommon.alert rounds t0)
    assert run(DEFAULT, world, 100.2, state, container_id="c1") == []
    world.sample("c1", exact, PROBLEM)  # the scrape of the same exporter sample
    assert run(DEFAULT, world, 100.9, state) == []
    world.sample("c1", exact + 0.5, PROBLEM)
    assert len(run(DEFAULT, world, 101.0, state)) == 1


def test_flapping_breach_clear_breach_does_not_fire_with_for_two(world: World, state: RuleState) -> None:
    for ts, figures in ((100.0, PROBLEM), (101.0, CALM), (102.0, PROBLEM), (103.0, CALM), (104.0, PROBLEM)):
        world.sample("c1", ts, figures)
        assert run(DEFAULT, world, ts + 0.1, state) == []
    world.sample("c1", 105.0, PROBLEM)
    [decision] = run(DEFAULT, world, 105.1, state)
    assert decision.t0 == 104.0


def test_a_rule_does_not_fire_again_within_its_cooldown(world: World, state: RuleState) -> None:
    fired = []
    for second in range(0, 40):
        world.sample("c1", 100.0 + second, PROBLEM)
        fired += [(second, d.t0) for d in run(DEFAULT, world, 100.5 + second, state)]
    # fires at 1 (samples 0, 1); the cooldown runs 30 s from 101.5: samples up to 130 (seen
    # before 131.5) are not counted, samples 31 and 32 (seen at 131.5 and 132.5) fire again.
    assert fired == [(1, 100.0), (32, 131.0)]


def test_a_released_decision_keeps_its_run_and_fires_again_on_the_next_fresh_sample(world: World,
                                                                                      state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("c1", ts, TRAFFIC)
        decisions = run(DEFAULT, world, ts + 0.1, state)
    [decision] = decisions
    state.release(decision)  # e.g. the executor answered "rate_limited"
    assert state.in_cooldown("web", 101.2) == [] and state.fired_at("scale_up", "web") is None
    assert run(DEFAULT, world, 101.5, state) == []  # no fresh sample: nothing new to count
    world.sample("c1", 102.0, TRAFFIC)
    [again] = run(DEFAULT, world, 102.1, state)
    assert (again.action.name, again.t0) == ("scale_up", 100.0)  # the breach still began at 100


def test_a_released_decision_whose_breach_ended_does_not_fire_again(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("c1", ts, TRAFFIC)
        decisions = run(DEFAULT, world, ts + 0.1, state)
    state.release(decisions[0])
    world.sample("c1", 102.0, CALM)
    assert run(DEFAULT, world, 102.1, state) == []
    world.sample("c1", 103.0, TRAFFIC)
    assert run(DEFAULT, world, 103.1, state) == []  # a new run: `for: 2` from here


def test_releasing_a_decision_restores_the_time_of_the_one_before(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("c1", ts, TRAFFIC)
        run(DEFAULT, world, ts + 0.1, state)
    assert state.fired_at("scale_up", "web") == 101.1
    for ts in (170.0, 171.0):  # after the 60 s cooldown: fires again, and the executor does not take it
        world.sample("c1", ts, TRAFFIC)
        decisions = run(DEFAULT, world, ts + 0.1, state)
    [again] = decisions
    assert state.fired_at("scale_up", "web") == 171.1
    state.release(again)
    assert state.fired_at("scale_up", "web") == 101.1


def test_cooldown_is_per_service_so_another_service_still_fires(world: World, state: RuleState) -> None:
    world.service("api", replicas=2)
    for ts in (100.0, 101.0):
        world.sample("c1", ts, PROBLEM)
        world.sample("a1", ts, PROBLEM, service="api")
        decisions = run(DEFAULT, world, ts + 0.1, state)
    assert sorted(d.service for d in decisions) == ["api", "web"]
    assert state.in_cooldown("web", 101.2) == ["migrate-on-container-problem"]


def test_a_second_container_of_a_cooling_service_does_not_fire(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("c1", ts, PROBLEM)
        world.sample("c2", ts, PROBLEM, node="worker-2")
        decisions = run(DEFAULT, world, ts + 0.1, state)
    assert len(decisions) == 1
    world.sample("c2", 102.0, PROBLEM, node="worker-2")
    assert run(DEFAULT, world, 102.1, state) == []


def test_stale_containers_are_never_counted_or_acted_on(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0, 102.0):
        world.sample("c1", ts, PROBLEM, stale=True)
        assert run(DEFAULT, world, ts + 0.1, state) == []
        assert run(DEFAULT, world, ts + 0.2, state, container_id="c1") == []
    world.sample("c1", 103.0, PROBLEM)
    assert run(DEFAULT, world, 103.1, state) == []  # only one fresh sample so far
    world.sample("c1", 104.0, PROBLEM)
    assert len(run(DEFAULT, world, 104.1, state)) == 1


def test_a_gap_in_the_data_breaks_a_breaching_run(world: World, state: RuleState) -> None:
    world.sample("c1", 100.0, PROBLEM)
    assert run(DEFAULT, world, 100.1, state) == []  # one breaching sample of the two `for` needs
    world.sample("c1", 100.0, PROBLEM, stale=True)  # its exporter stopped answering
    assert run(DEFAULT, world, 105.0, state) == []
    world.sample("c1", 112.0, PROBLEM)  # back, 12 s later: not the second sample in a row
    assert run(DEFAULT, world, 112.1, state) == []
    world.sample("c1", 113.0, PROBLEM)
    [decision] = run(DEFAULT, world, 113.1, state)
    assert decision.t0 == 112.0


def test_services_that_do_not_opt_in_by_label_are_left_alone(world: World, state: RuleState) -> None:
    world.service("influxdb", replicas=1, labels={})
    world.service("other", replicas=1, labels={"swarmguard.enable": "false"})
    for ts in (100.0, 101.0, 102.0):
        world.sample("i1", ts, PROBLEM, service="influxdb")
        world.sample("o1", ts, PROBLEM, service="other")
        assert run(DEFAULT, world, ts + 0.1, state) == []


def test_containers_of_unknown_services_are_ignored(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0):
        world.sample("x1", ts, PROBLEM, service="not-in-snapshot")
        assert run(DEFAULT, world, ts + 0.1, state) == []


def test_name_patterns_select_services(tmp_path: Path, world: World, state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: web-only
    services: ["web-*"]
    when: cpu > 50
    action: migrate
""")
    world.service("web-front", labels={})
    world.service("db", labels={})
    world.sample("f1", 100.0, PROBLEM, service="web-front")
    world.sample("d1", 100.0, PROBLEM, service="db")
    assert [(d.service, d.container_id) for d in run(ruleset, world, 100.1, state)] == [("web-front", "f1")]


def test_global_services_are_never_scaled_or_migrated(world: World, state: RuleState) -> None:
    world.service("agent", replicas=None)
    for ts in (100.0, 101.0, 102.0):
        world.sample("g1", ts, TRAFFIC, service="agent")
        world.sample("g2", ts, PROBLEM, service="agent", node="worker-2")
        assert run(DEFAULT, world, ts + 0.1, state) == []


def test_scale_up_stops_at_max_replicas(tmp_path: Path, world: World, state: RuleState) -> None:
    world.service("web", replicas=10)
    for ts in (100.0, 101.0, 102.0):
        world.sample("c1", ts, TRAFFIC)
        assert run(DEFAULT, world, ts + 0.1, state) == []
    world.service("web", replicas=9)
    world.sample("c1", 103.0, TRAFFIC)
    [decision] = run(DEFAULT, world, 103.1, state)
    assert decision.params["target_replicas"] == 10


def scale_down_world(world: World, replicas: int, figures: dict[str, float]) -> None:
    world.service("web", replicas=replicas)
    world.latest.clear()
    world.history.clear()
    for index in range(replicas):
        world.sample(f"c{index}", 100.0, figures, node=f"worker-{index}")


def advance(world: World, ts: float) -> None:
    for cid, metrics in list(world.latest.items()):
        world.sample(cid, ts, {k: getattr(metrics, k) for k in ("cpu", "mem", "net")},
                     service=metrics.service, node=metrics.node)


def rounds(world: World, state: RuleState, *, seconds: int, every: int,
           **kwargs: object) -> Iterator[tuple[int, list[Decision]]]:
    """Every `every` s from 100: the same figures again, then an evaluation 0.5 s later; (step, decisions)."""
    for step in range(0, seconds, every):
        advance(world, 100.0 + step)
        yield step, run(DEFAULT, world, 100.5 + step, state, **kwargs)


def test_scale_down_fires_after_the_total_stays_under_the_formula_for_180_s(world: World,
                                                                            state: RuleState) -> None:
    scale_down_world(world, 3, IDLE)
    [(step, decision)] = [(step, d) for step, decisions in rounds(world, state, seconds=200, every=5, scope="service")
                          for d in decisions]
    assert step == 180
    assert decision.action is SCALE_DOWN and decision.container_id is None and decision.t0 == 100.0
    assert decision.params["replicas"] == 3 and decision.params["target_replicas"] == 2


def test_a_scale_down_the_executor_was_busy_for_fires_at_the_next_round_not_180_s_later(world: World,
                                                                                         state: RuleState) -> None:
    # The exclusions job holds a service for a moment; a decision in that moment is answered "busy".
    scale_down_world(world, 3, IDLE)
    fired = []
    for step, decisions in rounds(world, state, seconds=200, every=5, scope="service"):
        for decision in decisions:
            fired.append((step, decision.t0))
            if len(fired) == 1:
                state.release(decision)
    assert fired == [(180, 100.0), (185, 100.0)]


def test_scale_down_waits_when_the_total_would_overload_the_remaining_replicas(world: World,
                                                                              state: RuleState) -> None:
    scale_down_world(world, 3, {"cpu": 55.0, "mem": 10.0, "net": 50.0})  # 165 >= 75 * 2
    assert all(decisions == [] for _, decisions in rounds(world, state, seconds=400, every=10))


def test_scale_down_never_goes_below_min_replicas(world: World, state: RuleState) -> None:
    scale_down_world(world, 1, IDLE)
    assert all(decisions == [] for _, decisions in rounds(world, state, seconds=400, every=10))


def test_scale_down_waits_until_every_replica_reports(world: World, state: RuleState) -> None:
    scale_down_world(world, 3, IDLE)
    world.service("web", replicas=4)  # a fourth replica is starting and has no samples yet
    assert all(decisions == [] for _, decisions in rounds(world, state, seconds=400, every=10))


def test_scale_down_never_fires_within_after_scale_up_of_a_scale_up_of_the_service(world: World,
                                                                                   state: RuleState) -> None:
    for ts in (0.0, 1.0):
        world.sample("c0", ts, TRAFFIC)
        decisions = run(DEFAULT, world, ts + 0.5, state)
    assert [d.action.name for d in decisions] == ["scale_up"]  # at 1.5
    scale_down_world(world, 3, IDLE)
    fired = []
    for step in range(0, 400, 5):
        advance(world, 2.0 + step)
        fired += [step for d in run(DEFAULT, world, 2.5 + step, state) if d.action is SCALE_DOWN]
    # the idle run completes its 180 s at step 180 (t=182.5), which is also the first evaluation
    # after the scale-up's 180 s (1.5 + 180 = 181.5): it fires there and not before
    assert fired == [180]


def test_a_scale_down_held_back_by_after_scale_up_fires_when_the_spacing_ends(tmp_path: Path, world: World,
                                                                               state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: grow
    when: cpu > 80
    action: scale_up
  - name: shrink
    scope: service
    when: max(cpu) < 10
    for: 20s
    action: scale_down
    cooldown: 10m
    after_scale_up: 5m
""")
    world.service("web", replicas=3, labels={})
    world.sample("c0", 0.0, TRAFFIC)
    assert [d.rule for d in run(ruleset, world, 0.5, state)] == ["grow"]
    scale_down_world(world, 3, IDLE)
    fired = []
    for step in range(0, 400, 5):
        advance(world, 1.0 + step)
        fired += [step for d in run(ruleset, world, 1.5 + step, state) if d.rule == "shrink"]
    # idle for 20 s by t=21, but held back until 0.5 + 300 s; the run kept counting, so it fires at once
    assert fired == [300]


def test_a_stale_container_pauses_service_rules(world: World, state: RuleState) -> None:
    scale_down_world(world, 3, IDLE)
    for step in range(0, 400, 10):
        advance(world, 100.0 + step)
        world.sample("c0", 100.0 + step, IDLE, stale=True, node="worker-0")
        assert run(DEFAULT, world, 100.5 + step, state) == []


def test_a_stale_container_breaks_a_service_rules_run(world: World, state: RuleState) -> None:
    scale_down_world(world, 3, IDLE)
    for step in range(0, 170, 10):  # most of the 180 s the scale-down rule needs
        advance(world, 100.0 + step)
        assert run(DEFAULT, world, 100.5 + step, state) == []
    world.sample("c0", 260.0, IDLE, stale=True, node="worker-0")
    assert run(DEFAULT, world, 270.5, state) == []
    for step in range(0, 170, 10):  # counting starts again once every replica reports
        advance(world, 280.0 + step)
        assert run(DEFAULT, world, 280.5 + step, state) == []


def test_scope_service_evaluates_only_service_rules(world: World, state: RuleState) -> None:
    for ts in (100.0, 101.0, 102.0):
        world.sample("c1", ts, PROBLEM)
        assert run(DEFAULT, world, ts + 0.1, state, scope="service") == []
    world.sample("c1", 103.0, PROBLEM)
    assert run(DEFAULT, world, 103.1, state, scope="container") == []  # service calls counted nothing
    world.sample("c1", 104.0, PROBLEM)
    assert [d.action.name for d in run(DEFAULT, world, 104.1, state, scope="container")] == ["migrate"]


def test_container_id_evaluates_that_container_only(world: World, state: RuleState) -> None:
    world.service("api", replicas=2)
    for ts in (100.0, 101.0):
        world.sample("c1", ts, PROBLEM)
        world.sample("a1", ts, PROBLEM, service="api")
        decisions = run(DEFAULT, world, ts + 0.1, state, container_id="a1")
    assert [(d.service, d.container_id) for d in decisions] == [("api", "a1")]
    assert run(DEFAULT, world, 101.2, state, container_id="missing") == []


def test_one_decision_per_service_per_call_and_the_lower_priority_number_wins(
        tmp_path: Path, world: World, state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: move
    when: cpu > 50
    action: migrate
    priority: 20
  - name: grow
    when: cpu > 50
    action: scale_up
    priority: 10
""")
    world.service("web", replicas=2, labels={})
    world.sample("c1", 100.0, PROBLEM)
    world.sample("c2", 100.0, PROBLEM, node="worker-2")
    decisions = run(ruleset, world, 100.1, state)
    assert [(d.rule, d.container_id) for d in decisions] == [("grow", "c1")]


def test_a_held_back_rule_keeps_its_run_and_fires_on_a_later_call(tmp_path: Path, world: World,
                                                                   state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: grow
    when: cpu > 50
    action: scale_up
    priority: 1
    cooldown: 60s
  - name: move
    when: cpu > 50
    action: migrate
    priority: 2
""")
    world.service("web", replicas=2, labels={})
    world.sample("c1", 100.0, PROBLEM)
    assert [d.rule for d in run(ruleset, world, 100.1, state)] == ["grow"]
    world.sample("c1", 101.0, PROBLEM)
    assert [d.rule for d in run(ruleset, world, 101.1, state)] == ["move"]


def test_window_functions_read_the_containers_history(tmp_path: Path, world: World, state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: smoothed
    when: avg(cpu, 3) > 60
    action: migrate
""")
    world.service("web", replicas=2, labels={})
    outcomes = []
    for ts, cpu in ((1.0, 100.0), (2.0, 10.0), (3.0, 10.0), (4.0, 100.0), (5.0, 100.0)):
        world.sample("c1", ts, {"cpu": cpu})
        outcomes.append(bool(run(ruleset, world, ts + 0.1, state)))
    # means: 100, 55, 40, 40, 70
    assert outcomes == [True, False, False, False, True]


def test_disabled_rules_never_fire(tmp_path: Path, world: World, state: RuleState) -> None:
    ruleset = rules(tmp_path, """
rules:
  - name: switched-off
    when: cpu > 0
    action: migrate
    enabled: false
""")
    world.service("web", labels={})
    world.sample("c1", 1.0, PROBLEM)
    assert run(ruleset, world, 1.1, state) == []


def test_a_changed_rule_restarts_its_counters_but_an_unchanged_reload_keeps_them(
        tmp_path: Path, world: World, state: RuleState) -> None:
    text = """
rules:
  - name: move
    when: cpu > {limit}
    for: 2
    action: migrate
"""
    world.service("web", labels={})
    world.sample("c1", 1.0, PROBLEM)
    assert run(rules(tmp_path, text.format(limit=50)), world, 1.1, state) == []
    world.sample("c1", 2.0, PROBLEM)
    assert run(rules(tmp_path, text.format(limit=60)), world, 2.1, state) == []  # changed: run restarts
    world.sample("c1", 3.0, PROBLEM)
    [decision] = run(rules(tmp_path, text.format(limit=60)), world, 3.1, state)  # same rule reloaded
    assert decision.t0 == 2.0


def test_full_evaluations_forget_containers_that_left(world: World, state: RuleState) -> None:
    world.sample("c1", 1.0, PROBLEM)
    run(DEFAULT, world, 1.1, state)
    assert "c1" in state.runs["migrate-on-container-problem"]
    del world.latest["c1"], world.history["c1"]
    run(DEFAULT, world, 2.0, state)
    assert "c1" not in state.runs["migrate-on-container-problem"]


def test_evaluate_does_not_change_the_snapshot(world: World, state: RuleState) -> None:
    world.sample("c1", 1.0, PROBLEM)
    world.sample("c1", 2.0, PROBLEM)
    snapshot = world.snapshot()
    before = replace(snapshot)
    evaluate(DEFAULT, snapshot, 2.1, state)
    assert snapshot == before


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=3)), max_size=40))
def test_a_for_three_rule_fires_exactly_on_every_third_consecutive_breach(steps: list[tuple[bool, int]]) -> None:
    """Whatever the sequence of breaching and clear samples, and however often each sample is
    evaluated again (alert, scrape, alert...), the rule fires where a plain counter says."""
    ruleset = load_rules([str(ROOT / "tests" / "controller" / "data" / "rules" / "good" / "for_three.yml")])
    world, state = World(), RuleState()
    world.service("web", replicas=2, labels={})
    fired, expected, count = [], [], 0
    for index, (breach, repeats) in enumerate(steps):
        world.sample("c1", float(index), PROBLEM if breach else CALM)
        for attempt in range(repeats):
            kwargs = {"container_id": "c1"} if attempt % 2 else {}
            fired += [index for _ in run(ruleset, world, index + 0.1 * attempt, state, **kwargs)]
        count = count + 1 if breach else 0
        if count == 3:
            expected.append(index)
            count = 0
    assert fired == expected


def test_an_unknown_scope_is_a_programming_error(world: World, state: RuleState) -> None:
    with pytest.raises(ValueError, match="scope must be"):
        run(DEFAULT, world, 1.0, state, scope="node")


def test_the_rule_engine_loads_no_executor_and_no_docker_code() -> None:
    """The decision side of the action plugins is pure: importing the engine and the rule loader pulls
    in neither the executor nor the Docker adapter (nor any HTTP library)."""
    probe = ("import sys, controller.decide, controller.rules; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests', 'flask') "
             "or m.startswith(('sgcommon.engine', 'controller.actions.executor', 'controller.actions.context'))))")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert found.stdout.strip() == "[]"


def test_containers_without_a_breach_leave_no_run_object_for_the_cycle_collector(world: World, state: RuleState) -> None:
    import gc

    for i in range(50):
        world.sample(f"c{i}", 100.0, CALM)
    world.sample("hot", 100.0, PROBLEM)
    run(DEFAULT, world, 100.1, state)
    runs = state.runs["migrate-on-container-problem"]
    assert set(runs) == {"hot"}  # a run only where a breach is counted
    assert len(state.counted["migrate-on-container-problem"]) == 51
    gc.collect()
    assert not any(gc.is_tracked(run) for rule_runs in state.runs.values() for run in rule_runs.values())
    assert not any(gc.is_tracked(counted) for counted in state.counted.values())
