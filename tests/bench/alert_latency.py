"""Alert-path and evaluation-cycle latency of the controller with a big cache (goals: docs/controller.md).

With 100 nodes x 50 containers in the cache (10 samples of history each, 500 services of 10
replicas, the real default rules and engine), it measures:
- alert received -> action dispatched: a Flask test-client POST /alert until the (recording)
  executor's submit is called, for alerts that complete a `for: 2` breach run (p50/p99);
- the same for alerts that decide nothing (the common case);
- one full evaluation cycle: snapshot of the whole cache + every rule over every container;
- alerts while scrape rounds (5000 new samples + a full cycle) run every second on another thread,
  as in production: an alert that arrives during a cycle waits for the engine's lock.
Goals: p99 decision <= 5 ms, cycle <= 100 ms. Run from the repo root: `.venv/bin/python -m tests.bench.alert_latency [--cycles N]`.
"""
from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from controller.app import create_app
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, Decision, ServiceInfo, Submission, Timeline, Verdict
from controller.rules import load_rules
from sgcommon.alert import Alert, encode_alert
from tests.controller.test_runtime import TOKEN, FixedRules, make_rig
from sgcommon.version import add_version_argument

REPLICAS, HISTORY = 10, 10
NODES, PER_NODE = 100, 50  # set from --nodes/--per-node


class TimingExecutor:
    """Records when submit was called; accepts everything, runs nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Decision, Timeline]] = []

    def submit(self, decision: Decision, timeline: Timeline) -> Submission:
        self.calls.append((time.perf_counter(), decision, timeline))
        return Submission(Verdict.ACCEPTED)

    def lift_expired_exclusions(self) -> int:
        return 0

    def release_settled(self) -> int:
        return 0

    def reconcile(self) -> None:
        pass

    def busy_services(self) -> set[str]:
        return set()

    def moving(self) -> int:
        return 0

    def shutdown(self, wait: bool = True) -> None:
        pass


def sample(i: int, ts: float, *, cpu: float = 20.0) -> ContainerMetrics:
    return ContainerMetrics(node=f"node-{i // PER_NODE}", service=f"svc-{i // REPLICAS}", container_id=f"c{i:05d}",
                            task_id=f"t{i}", ts=ts, cpu=cpu, mem=30.0, mem_mb=200.0, net=5.0, net_rx=1.0, net_tx=1.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(values: list[float]) -> str:
    return (f"p50 {percentile(values, 0.5) * 1e3:.2f} ms, p99 {percentile(values, 0.99) * 1e3:.2f} ms, "
            f"max {max(values) * 1e3:.2f} ms (n={len(values)})")


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.alert_latency")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--per-node", type=int, default=50, help="containers per node (a multiple of 10)")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--busy-alerts", type=int, default=800, help="alerts sent during background scrape rounds")
    args = parser.parse_args()
    global NODES, PER_NODE
    NODES, PER_NODE = args.nodes, args.per_node
    total = NODES * PER_NODE
    executor = TimingExecutor()
    rig = make_rig(rules=FixedRules(load_rules(["rules/default.yml"])), evaluate=evaluate, state=RuleState(),
                   executor=executor)
    runtime, cache = rig.runtime, rig.runtime.cache
    cache.set_services({f"svc-{s}": ServiceInfo(name=f"svc-{s}", replicas=REPLICAS,
                                                labels={"swarmguard.enable": "true"}) for s in range(total // REPLICAS)})
    start = time.time() - HISTORY - args.cycles - 2
    for k in range(HISTORY):
        cache.add_containers(sample(i, start + k) for i in range(total))

    cycles = []
    for k in range(args.cycles):  # calm scrape rounds: every container gets a new sample, nothing fires
        cache.add_containers(sample(i, start + HISTORY + k) for i in range(total))
        began = time.perf_counter()
        runtime.scrape_and_evaluate()
        cycles.append(time.perf_counter() - began)
    assert not executor.calls, "a calm cycle decided something"

    hot = list(range(0, total, REPLICAS))  # one container per service starts a breach run in the last round
    ts = time.time() - 1
    cache.add_containers(sample(i, ts, cpu=95.0 if i in set(hot) else 20.0) for i in range(total))
    runtime.scrape_and_evaluate()

    client = create_app(rig.config, runtime).test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def post(i: int, cpu: float) -> float:
        c = sample(i, time.time(), cpu=cpu)
        body = encode_alert(Alert(t0=c.ts, t1=c.ts, node=c.node, container_id=c.container_id, service=c.service,
                                  task_id=c.task_id, metrics={"cpu": cpu, "mem": 30.0, "mem_mb": 200.0, "net": 5.0,
                                                              "net_rx": 1.0, "net_tx": 1.0}))
        began = time.perf_counter()
        response = client.post("/alert", data=body, headers=headers)
        assert response.status_code in (200, 202), response.data
        return began

    dispatch = []
    for i in hot:
        began = post(i, 95.0)
        assert executor.calls and executor.calls[-1][1].container_id == sample(i, 0).container_id, "no decision"
        dispatch.append(executor.calls[-1][0] - began)
    quiet = []
    for i in range(1, total, 10):
        began = post(i, 20.0)
        quiet.append(time.perf_counter() - began)
    decision_latency = [t.t3 - t.t2 for _, _, t in executor.calls]

    stop = threading.Event()

    def scrape_rounds() -> None:
        while not stop.wait(1.0):
            now = time.time()
            cache.add_containers(sample(i, now) for i in range(total))
            runtime.scrape_and_evaluate()

    background = threading.Thread(target=scrape_rounds, daemon=True)
    background.start()
    busy = []
    for n in range(args.busy_alerts):
        began = post((1 + n * 7) % total, 20.0)
        busy.append(time.perf_counter() - began)
        time.sleep(0.01)
    stop.set()
    background.join()

    print(f"cache: {total} containers on {NODES} nodes, {total // REPLICAS} services, "
          f"{cache.stats()['samples']} samples")
    print(f"alert -> action dispatched (POST to executor.submit): {ms(dispatch)}")
    print(f"alert deciding nothing (whole POST):                {ms(quiet)}")
    print(f"decision latency T3-T2 of the dispatched alerts:    {ms(decision_latency)}")
    print(f"full evaluation cycle (prune + snapshot + rules):   {ms(cycles)}")
    print(f"alert POST while scrape rounds run every second:    {ms(busy)}")
    return {"dispatch_p99": percentile(dispatch, 0.99), "cycle_max": max(cycles)}


if __name__ == "__main__":
    main()
