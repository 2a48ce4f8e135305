"""A big evaluation split into parts decides exactly what one evaluation would, and lets alerts in between."""
from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, Decision, NodeMetrics, ServiceInfo, Snapshot
from controller.rules import RuleSet, load_rules
from controller.runtime import in_evaluation_order, split_by_service
from sgcommon.alert import Alert
from tests.controller.conftest import FakeClock
from tests.controller.test_runtime import FixedRules, make_rig

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_rules([str(ROOT / "rules" / "default.yml")])
OPT_IN = {"swarmguard.enable": "true"}
MODES = {  # figures: cpu, mem, net
    "problem": (90.0, 50.0, 5.0), "traffic": (90.0, 90.0, 80.0), "calm": (20.0, 30.0, 50.0), "idle": (1.0, 2.0, 1.0),
}


class Cluster:
    """300 services of 1-10 replicas on 30 nodes; containers change mode now and then."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.services: dict[str, ServiceInfo] = {}
        self.containers: list[tuple[str, str, str]] = []  # cid, service, node
        for s in range(300):
            replicas = None if s % 37 == 0 else self.rng.randint(1, 10)
            labels = {} if s % 11 == 0 else OPT_IN
            self.services[f"svc-{s}"] = ServiceInfo(f"svc-{s}", replicas, labels)
            for r in range(replicas or 3):
                self.containers.append((f"c-{s}-{r}", f"svc-{s}", f"node-{(s + r) % 30}"))
        self.rng.shuffle(self.containers)  # the cache's order is not the services' order
        self.mode = {cid: "idle" if s.endswith("0") else self.rng.choice(list(MODES)) for cid, s, _ in self.containers}

    def round(self, ts: float) -> list[ContainerMetrics]:
        out = []
        for cid, service, node in self.containers:
            if self.rng.random() < 0.15 and not service.endswith("0"):  # svc-*0 stay as they are
                self.mode[cid] = self.rng.choice(list(MODES))
            cpu, mem, net = MODES[self.mode[cid]]
            out.append(ContainerMetrics(node, service, cid, f"t-{cid}", ts, cpu=cpu, mem=mem, mem_mb=64.0, net=net,
                                        net_rx=1.0, net_tx=1.0))
        return out


def decided(rig: Any) -> list[tuple[Any, ...]]:
    return [(d.rule, d.action.name, d.service, d.container_id, d.node, d.t0, d.reason, sorted(d.params.items()),
             t.t2, t.t3) for d, t in rig.executor.submitted]


def test_a_cycle_split_into_parts_makes_the_same_decisions_in_the_same_order_as_one_evaluation() -> None:
    cluster = Cluster(seed=7)
    clock = FakeClock(10_000.0)
    rigs = [make_rig(clock=clock, rules=FixedRules(DEFAULT), evaluate=evaluate, state=RuleState(), part_size=size)
            for size in (10**9, 97)]
    for rig in rigs:
        rig.runtime.cache.set_services(cluster.services)
    assert len(split_by_service(rigs[1].runtime.cache.snapshot(clock.now), 97)) == 0  # nothing cached yet
    for r in range(45):
        clock.advance(5.0)
        samples = cluster.round(clock.now - 1.0)
        down = {f"node-{r % 30}"} if r % 7 == 3 else set()  # an exporter gone now and then: stale containers
        for rig in rigs:
            rig.runtime.cache.add_containers(samples)
            rig.runtime.cache.add_nodes([NodeMetrics(f"node-{n}", clock.now, 10.0, 20.0, 5.0) for n in range(30)])
            for node in [f"node-{n}" for n in range(30)]:
                rig.runtime.cache.set_node_down(node, node in down, since=clock.now)
            rig.runtime.scrape_and_evaluate()
            if r % 3 == 0:
                rig.runtime.evaluate_service_rules()
        one, split = (decided(rig) for rig in rigs)
        assert one == split, f"round {r}"
    assert len(one) > 100 and {d[1] for d in one} == {"migrate", "scale_up", "scale_down"}
    states = [rig.runtime._state for rig in rigs]
    assert states[0] == states[1]


def test_the_parts_hold_whole_services_and_every_container_once() -> None:
    cluster = Cluster(seed=3)
    containers = {c.container_id: c for c in cluster.round(1.0)}
    containers["stray"] = ContainerMetrics("node-1", "not-a-service", "stray", "t", 1.0, 1, 1, 1, 1, 1, 1)
    snapshot = Snapshot(containers, {}, cluster.services, {})
    parts = split_by_service(snapshot, 50)
    seen: dict[str, int] = {}
    for i, part in enumerate(parts):
        known = {c.service for c in part.containers.values()} & set(cluster.services)
        assert known <= set(part.services) <= set(cluster.services)
        assert part.history is snapshot.history and part.nodes is snapshot.nodes
        for c in part.containers.values():
            assert seen.setdefault(c.service, i) == i  # a service in one part only
    assert sorted(cid for p in parts for cid in p.containers) == sorted(containers)
    assert len(parts) == -(-len(containers) // 50) and max(len(p.containers) for p in parts) < 3 * 50


def test_decisions_of_the_parts_are_ordered_by_rule_then_by_the_snapshots_order() -> None:
    cluster = Cluster(seed=5)
    containers = {c.container_id: c for c in cluster.round(1.0)}
    snapshot = Snapshot(containers, {}, cluster.services, {})
    order = list(containers)
    rule_names = [r.name for r in DEFAULT.rules]

    def decision(rule: str, cid: str | None, service: str) -> tuple[Decision, float]:
        action = next(r.action for r in DEFAULT.rules if r.name == rule)
        return Decision(rule, action, service, cid, None, None, ""), 0.0

    made = [decision(rule_names[1], order[5], containers[order[5]].service),
            decision(rule_names[2], None, "svc-9"), decision(rule_names[0], order[9], containers[order[9]].service),
            decision(rule_names[1], order[2], containers[order[2]].service), decision(rule_names[2], None, "svc-1"),
            decision(rule_names[0], order[1], containers[order[1]].service)]
    ranked = in_evaluation_order(made, DEFAULT, snapshot)
    assert [(d.rule, d.container_id or d.service) for d, _ in ranked] == [
        (rule_names[0], order[1]), (rule_names[0], order[9]), (rule_names[1], order[2]), (rule_names[1], order[5]),
        (rule_names[2], "svc-1"), (rule_names[2], "svc-9")]


def test_an_alert_that_comes_during_a_split_cycle_is_evaluated_before_the_next_part() -> None:
    calls: list[str] = []
    in_part = threading.Event()
    release = threading.Event()

    def slow_engine(rules: RuleSet, snapshot: Snapshot, now: float, state: RuleState, *,
                    container_id: str | None = None, scope: str | None = None, forget: bool = True) -> list[Decision]:
        calls.append("alert" if container_id is not None else "part")
        if container_id is None and len(calls) == 1:
            in_part.set()
            assert release.wait(5)
        return []

    clock = FakeClock()
    rig = make_rig(clock=clock, evaluate=slow_engine, part_size=10)
    rig.runtime.cache.set_services({f"s{i}": ServiceInfo(f"s{i}", 1, OPT_IN) for i in range(50)})
    rig.runtime.cache.add_containers(
        ContainerMetrics("n", f"s{i}", f"c{i}", "t", clock.now - 1, 1, 1, 1, 1, 1, 1) for i in range(50))
    cycle = threading.Thread(target=rig.runtime.scrape_and_evaluate)
    cycle.start()
    assert in_part.wait(5)
    alert = Alert(t0=clock.now - 0.5, t1=clock.now, node="n", container_id="c1", service="s1", task_id="t",
                  metrics={"cpu": 1.0, "mem": 1.0, "mem_mb": 1.0, "net": 1.0, "net_rx": 1.0, "net_tx": 1.0})
    sender = threading.Thread(target=rig.runtime.handle_alert, args=(alert,), kwargs={"received": clock.now})
    sender.start()
    while rig.runtime._alerts_queued == 0:  # the alert waits for the engine's lock
        threading.Event().wait(0.001)
    release.set()
    cycle.join(5)
    sender.join(5)
    assert calls[:2] == ["part", "alert"] and calls.count("part") >= 3  # 50 services in 5 parts by hash
