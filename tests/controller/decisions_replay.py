"""A seeded run of the default rules over a small changing cluster, for the engine's recorded-decisions test.

Kept apart from the test so that the same run can be made with another tree's engine
(`PYTHONPATH=<tree> python -m tests.controller.decisions_replay > tests/controller/data/default_decisions.json`):
the recording in tests/controller/data was made with the engine of commit 22ad10f, before the rule state
changed shape (docs/scale.md). The run mixes full evaluations, alerts (one container), service-scope
evaluations, stale samples, containers that leave and come back, and decisions the executor refuses
(`RuleState.release`), so that every path of the state machine is taken.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, ServiceInfo, Snapshot
from controller.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
SERVICES, REPLICAS, ROUNDS = 12, 5, 160


def replay(seed: int = 7) -> list[list[Any]]:
    """Every decision of the run as [round, kind, rule, service, container or None, t0]."""
    rules = load_rules([str(ROOT / "rules" / "default.yml")])
    rng = random.Random(seed)
    state = RuleState()
    services = {f"svc-{s}": ServiceInfo(f"svc-{s}", REPLICAS, {"swarmguard.enable": "true"},
                                        tasks_per_node={"n1": 3, "n2": 2}, observed=0.0) for s in range(SERVICES)}
    level = {f"c{s}-{r}": rng.uniform(10, 90) for s in range(SERVICES) for r in range(REPLICAS)}
    latest: dict[str, ContainerMetrics] = {}
    history: dict[str, list[ContainerMetrics]] = {}
    made: list[list[Any]] = []

    def sample(cid: str, ts: float) -> ContainerMetrics:
        s = int(cid[1:].split("-")[0])
        level[cid] = min(99.0, max(1.0, level[cid] + rng.uniform(-12, 12)))
        mem = min(99.0, max(1.0, level[cid] + rng.uniform(-20, 20)))
        net = rng.choice((5.0, 20.0, 50.0, 80.0))
        return ContainerMetrics(f"n{1 + s % 2}", f"svc-{s}", cid, f"t-{cid}", ts, level[cid], mem, 100.0 + mem,
                                net, 1.0, 1.0, stale=rng.random() < 0.03)

    def snapshot() -> Snapshot:
        return Snapshot(dict(latest), {k: tuple(v[-60:]) for k, v in history.items()}, dict(services), {})

    def record(round_: int, kind: str, decisions: list[Any]) -> None:
        for i, d in enumerate(decisions):
            made.append([round_, kind, d.rule, d.service, d.container_id, d.t0])
            if (round_ + i) % 3 == 0:  # the executor refused it: busy, rate limited, over budget
                state.release(d)

    for round_ in range(ROUNDS):
        now = 1000.0 + round_
        for cid in level:
            if rng.random() < 0.04 and cid in latest:  # the container leaves for a while
                del latest[cid]
                continue
            if rng.random() < 0.9:
                latest[cid] = sample(cid, now - 0.2)
                history.setdefault(cid, []).append(latest[cid]._replace(stale=False))
        record(round_, "cycle", evaluate(rules, snapshot(), now, state))
        for _ in range(3):  # alerts: one container's fresh sample, evaluated alone
            cid = rng.choice(sorted(latest))
            latest[cid] = sample(cid, now + 0.3)._replace(stale=False)
            history.setdefault(cid, []).append(latest[cid])
            record(round_, "alert", evaluate(rules, snapshot(), now + 0.35, state, container_id=cid))
        if round_ % 5 == 0:
            services = {n: ServiceInfo(i.name, i.replicas, i.labels, tasks_per_node=i.tasks_per_node, observed=now)
                        for n, i in services.items()}
            record(round_, "service", evaluate(rules, snapshot(), now + 0.5, state, scope="service"))
    return made


if __name__ == "__main__":
    json.dump(replay(), sys.stdout)
    sys.stdout.write("\n")
