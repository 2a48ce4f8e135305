"""Rebalancing on the lab, one run (the 5-run figures come from `tests/scripts/rebalance_test`).

A worker stops and comes back; the rebalance rule (enabled for the test by labkit/rebalance_lab.py)
must bring the 4-replica web-stress back to a skew of at most 1 within 60 s of the node's return,
with no failed probe request after the node's return (requests lost while the node was down are
the outage's own cost, before any rebalance; shown, not asserted) and no task moved twice while it
is watched. The lab is restored
afterwards (all workers up, web-stress at its replica count, the lab rule set deactivated and
removed) even on failure. The rule reaches the lab controller as a stored rule set (Swarm config),
so nothing is written into the checkout's rules/, which unit tests running meanwhile load."""
from __future__ import annotations

from typing import Any

import pytest

from controller.actions.budget import tasks_in_transition
from controller.ruleconfigs import RuleConfigs
from labkit import controller_api as api
from labkit import labinfo
from labkit.rebalance_lab import RULES_DIR, Settings, format_table, lab_rule_set, ok, run
from sgcommon.engine.swarm import SwarmAdapter

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def test_after_a_worker_comes_back_the_service_is_rebalanced_within_a_minute_without_a_failed_request_after(
        lab: labinfo.Lab, client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(runs=1, watch=75.0, watch_last=75.0)
    store = RuleConfigs(SwarmAdapter(client))
    before = store.active()
    said: list[str] = []
    rows = run(lab, settings, log=said.append)
    after = store.active()
    assert (after.name if after else None) == (before.name if before else None), said  # the lab set is gone ...
    assert lab_rule_set(RULES_DIR).name not in {c.name for c in store.stored()}, said  # ... and removed
    with capsys.disabled():
        print("\n" + format_table(rows, settings.goal))
    [row] = rows
    assert row["skew_before"] >= 2  # the outage made the skew the rule is for
    assert ok(row, settings.goal), row
    assert row["moves"] >= 1 and all(a["action"] == "rebalance" for a in row["actions"]), row["actions"]


def _spread(client: Any, service: str, workers: list[str]) -> dict[str, int]:
    names = api.node_names(client)
    counts = dict.fromkeys(workers, 0)
    for task in api.running_tasks(client, service):
        counts[names[task["NodeID"]]] += 1
    return counts


def test_swarm_puts_an_extra_replica_on_the_emptiest_worker_and_scales_down_the_fullest_but_an_exclusion_moves_all(
        lab: labinfo.Lab, client: Any, app_service: Any) -> None:
    """The Swarm mechanics rebalance relies on, on the real engine: from 2-2-0, excluding a full
    worker moves both of its tasks (0-2-2: no better); one replica more lands on the empty worker and
    one fewer leaves a full one (skew 1)."""
    swarm = SwarmAdapter(client)
    workers = sorted(name for name in lab.node_sockets if name.startswith("worker-"))[:3]
    name = app_service(4)
    swarm.update_placement(name, update_order="start-first")

    def settled(replicas: int) -> dict[str, int] | None:
        tasks = swarm.list_tasks(service=name)
        counts = _spread(client, name, workers)
        done = sum(counts.values()) == replicas and tasks_in_transition(tasks) == 0
        return counts if done else None

    counts = api.eventually(lambda: settled(4), timeout=120, what="4 running tasks")
    empty = min(counts, key=lambda w: (counts[w], w))
    swarm.update_placement(name, add=(f"node.hostname!={empty}",))  # make it 2-2-0 ...
    api.eventually(lambda: (settled(4) or {}).get(empty) == 0, timeout=120, what=f"{empty} emptied")
    swarm.update_placement(name, remove=(f"node.hostname!={empty}",))  # ... relaxing moves nothing
    counts = api.eventually(lambda: settled(4), timeout=60, what="4 running tasks")
    assert counts[empty] == 0 and sorted(counts.values()) == [0, 2, 2]

    full = next(w for w in workers if counts[w] == 2)
    swarm.update_placement(name, add=(f"node.hostname!={full}",))
    counts = api.eventually(lambda: (lambda c: c if c and c[full] == 0 else None)(settled(4)), timeout=120,
                            what=f"the tasks of {full} replaced")
    assert counts[empty] == 2 and sorted(counts.values()) == [0, 2, 2]  # both moved: still skewed
    swarm.update_placement(name, remove=(f"node.hostname!={full}",))
    counts = api.eventually(lambda: settled(4), timeout=60, what="4 running tasks")
    assert counts[full] == 0

    swarm.scale(name, 5)
    counts = api.eventually(lambda: settled(5), timeout=120, what="5 running tasks")
    assert counts[full] == 1  # the spread chose the empty worker
    swarm.scale(name, 4)
    counts = api.eventually(lambda: settled(4), timeout=120, what="4 running tasks")
    assert counts[full] == 1 and sorted(counts.values()) == [1, 1, 2]  # a task left a worker with 2
