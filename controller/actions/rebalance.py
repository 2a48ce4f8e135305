"""Rebalancing: move one task of a service onto a node that runs far fewer of its tasks, start-first.

Why it exists: Swarm never moves running tasks back to a node that recovers or joins
(https://github.com/moby/moby/issues/24103: its maintainers do not want healthy tasks killed), so
after a node outage the service stays crowded on the nodes that stayed up. The plugin `REBALANCE`
moves one task per action without stopping anything first; its rule (rules/default.yml) says when.

How the task is steered, without pinning it: one replica more, then one fewer.
1. One update sets the replica count to N+1 and the in-flight marker. Swarm's scheduler puts the
   new task on the eligible node with the fewest tasks of the service (its spread), i.e. on the
   node that came back.
2. Wait until the new task is running (healthy, when the service has a HEALTHCHECK). T5.
3. One update sets the count back to N and records the new task in `swarmguard.moved`. Swarm's
   orchestrator removes a task of a node with the most tasks of the service ("preferentially
   remove tasks on the nodes that have the most copies of this service", `reconcile` in
   https://github.com/moby/swarmkit/blob/master/manager/orchestrator/replicated/services.go),
   SIGTERM after it left the load balancer (docs/actions.md). T6 when it has stopped.
So at most one task is in transition at a time (the disruption budget's share is 1) and the service
never runs fewer than N tasks. What was rejected:
- `node.hostname!=FULLEST` (migrate's exclusion): Swarm replaces every task of the service on that
  node, not one (a constraint change goes through the updater for each task that no longer fits:
  https://github.com/moby/swarmkit/pull/2496), so 2-2-0 became 0-2-2 and the skew stayed.
- `node.hostname==TARGET`: would move every replica of the service onto TARGET.
- a forced update: replaces every task of the service.
Nothing is left to lift afterwards: the action adds no constraint.

No ping-pong: the rule's cooldown spaces moves on one service, and the action refuses (before
writing anything) when a task that a rebalance placed less than `moved_hold` seconds ago (600 s by
default) runs on a node Swarm could take the task from: such a task would move a second time.

Before writing, the action re-reads the service and refuses when it has tasks in transition (a
rollout), when its eligible nodes are no longer skewed by 2 or more (the rule saw a 5-second-old
view), or when it is global or runs fewer than 2 replicas. If the new task does not run in time,
the count goes back to N all the same (Swarm then removes the extra task if it was not placed) and
the record is `timeout`. A count someone else changed in between is left as it is. A restart in
the middle is resolved by `interrupted`: a count still at N+1 is set back to N (undoing the surge,
never repeating the move).
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from controller.actions.budget import tasks_in_transition
from controller.actions.ownership import ACTION_LABEL, MOVED_LABEL, LabelError, read_moved, write_action, write_moved
from controller.actions.plugin import ActionPlugin, Param, ParamKind, Params, ParamValue, Rejected, ServiceShape, TimedOut
from controller.actions.scale import SCALE_TIMEOUT
from controller.model import ActionRecord, Decision, Result, Timeline, task_skew, task_spread
from sgcommon.jsonlog import event, get_logger

if TYPE_CHECKING:
    from controller.actions.context import ActionContext, Swarm
    from controller.actions.settings import ActionSettings
    from sgcommon.engine.swarm import ServiceView, TaskView

log = get_logger("swarmguard.controller.actions")

MOVED_HOLD = Param("moved_hold", ParamKind.DURATION, default=600.0, minimum=0.0,
                   help="seconds during which a task a rebalance moved is not moved again")


def feasible(service: ServiceShape, params: Params) -> str | None:
    if service.replicas is None:
        return f"{service.name} is a global service: one task per node, nothing to rebalance"
    if service.replicas < 2:
        return f"{service.name} runs {service.replicas} replica(s): nothing to spread"
    return None


def plan(service: ServiceShape, params: Params) -> Mapping[str, ParamValue]:
    assert service.replicas is not None  # feasible() refused global services
    return {"replicas": service.replicas}


def describe(decision: Decision) -> str:
    n = int(decision.params.get("replicas", 0)) or "N"
    more = n + 1 if isinstance(n, int) else "N+1"
    return (f"move one task of {decision.service}, start-first: scale {n} -> {more} (Swarm's spread starts the "
            f"new task on the eligible node with the fewest of its tasks), wait until it runs, then {more} -> {n} "
            "(Swarm removes a task of the node with the most); no task placed by a rebalance in the last "
            f"{decision.params.get(MOVED_HOLD.name, MOVED_HOLD.default):g} s is moved again")


def _timeout(settings: ActionSettings) -> float:
    return 2 * settings.value(SCALE_TIMEOUT)  # two waits, each as long as a scale action's


def rebalance(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = ctx.swarm.get_service(decision.service)
    reason = feasible(service, decision.params)
    if reason is not None:
        raise Rejected(reason)
    assert service.replicas is not None
    replicas = service.replicas
    tasks = ctx.swarm.list_tasks(service=service.id)
    live = [t for t in tasks if t.desired_state == "running" and not t.stopped]
    # A task left on a node that is down still reads "running" until the node reports again: it is
    # not a rollout, and counting it would hold the move back right when the node returns.
    reporting = {node.id for node in ctx.swarm.list_nodes() if node.state == "ready"}
    moving = tasks_in_transition([t for t in tasks if t.node_id is None or t.node_id in reporting])
    if moving:
        raise Rejected(f"{service.name} has {moving} task(s) in transition: no move during a rollout")
    spread = _spread(ctx, service, live)
    if task_skew(spread) < 2:
        raise Rejected(f"nothing to move: tasks per eligible node {_show(spread)}")
    fullest = _fullest(live)
    _refuse_second_move(ctx, service, live, fullest, hold=float(decision.params[MOVED_HOLD.name]))
    if not service.has_healthcheck:
        event(log, "service has no HEALTHCHECK: zero downtime is not guaranteed", level=logging.WARNING,
              service=service.name, action_id=ctx.action_id)
        ctx.notes.append("no HEALTHCHECK: zero downtime not guaranteed")
    ctx.notes.append(f"tasks per eligible node before: {_show(spread)}")
    marker = write_action(id=ctx.action_id, action=REBALANCE.name, replicas=replicas, node=",".join(fullest),
                          started=ctx.clock())
    ctx.wrote = True
    ctx.swarm.scale(service.id, replicas + 1, labels={ACTION_LABEL: marker})
    step = float(ctx.settings.value(SCALE_TIMEOUT))
    before = {t.id for t in tasks}
    try:
        new = ctx.wait_for("the extra task running", lambda: _new_running(ctx, service.id, before),
                           deadline=timeline.t4 + step)
    except TimedOut:
        _restore(ctx, service.id, replicas, labels={}, deadline=ctx.clock() + step)
        ctx.notes.append(f"scaled back to {replicas}: Swarm removes the extra task if it was not placed")
        raise
    timeline.t5 = ctx.clock()
    moved = _current_moved(service, ctx.clock())
    moved[new.id] = ctx.clock() + float(decision.params[MOVED_HOLD.name])
    _restore(ctx, service.id, replicas, labels={MOVED_LABEL: write_moved(moved)}, deadline=ctx.clock() + step)
    removed = ctx.wait_for("a task removed and stopped", lambda: _removed(ctx, service.id, {*(t.id for t in live), new.id}),
                           deadline=timeline.t5 + step)
    timeline.t6 = ctx.clock()
    after = _spread(ctx, service, ctx.swarm.list_tasks(service=service.id, desired_state="running"))
    ctx.notes.append(f"after: {_show(after)}")
    if removed.id == new.id:
        return ctx.record(decision, timeline, Result.FAILED, node_to=new.node_hostname, replicas_before=replicas,
                          replicas_after=replicas, error="Swarm removed the new task again: nothing moved")
    return ctx.record(decision, timeline, Result.SUCCESS, node_from=removed.node_hostname, node_to=new.node_hostname,
                      replicas_before=replicas, replicas_after=replicas)


def _spread(ctx: ActionContext, service: ServiceView, tasks: Iterable[TaskView]) -> dict[str, int]:
    """Tasks per eligible node, as the service refresher computes `task_skew` (controller/services.py)."""
    return task_spread([node.hostname for node in ctx.eligible_nodes(service.constraints)],
                       [task.node_hostname for task in tasks if not task.stopped])


def _fullest(live: Iterable[TaskView]) -> list[str]:
    """The nodes Swarm's scale-down may take a task from: those with the most tasks of the service
    (every node counts here, eligible or not: Swarm's choice counts them all)."""
    per_node = Counter(t.node_hostname for t in live if t.node_hostname)
    most = max(per_node.values(), default=0)
    return sorted(node for node, count in per_node.items() if count == most)


def _current_moved(service: ServiceView, now: float) -> dict[str, float]:
    """The unexpired entries of `swarmguard.moved` (an unreadable label refuses the action)."""
    try:
        return {task: until for task, until in read_moved(service.labels).items() if until > now}
    except LabelError as exc:
        raise Rejected(f"{exc}: left alone, no rebalance until it is fixed") from None


def _refuse_second_move(ctx: ActionContext, service: ServiceView, live: Iterable[TaskView], fullest: list[str], *,
                        hold: float) -> None:
    now = ctx.clock()
    moved = _current_moved(service, now)
    for task in live:
        if task.node_hostname in fullest and task.id in moved:
            placed = moved[task.id] - hold
            raise Rejected(f"task {task.id[:12]} on {task.node_hostname} was moved there by a rebalance "
                           f"{max(0.0, now - placed):.0f} s ago; it could be the one Swarm takes, so no move "
                           f"before {moved[task.id] - now:.0f} s from now")


def _new_running(ctx: ActionContext, service_id: str, before: set[str]) -> TaskView | None:
    for task in ctx.swarm.list_tasks(service=service_id, desired_state="running"):
        if task.id not in before and task.state == "running":
            return task
    return None


def _restore(ctx: ActionContext, service_id: str, replicas: int, *, labels: Mapping[str, str | None],
             deadline: float) -> None:
    """Sets the count back to `replicas` if it is still one more (retried on engine errors until `deadline`)."""
    def write() -> bool:
        current = ctx.swarm.get_service(service_id)
        if current.replicas != replicas + 1:
            ctx.notes.append(f"the replica count was changed to {current.replicas} meanwhile: left as it is")
            return True
        ctx.swarm.scale(service_id, replicas, labels=labels)
        return True

    ctx.wait_for(f"the replica count back to {replicas}", write, deadline=deadline)


def _removed(ctx: ActionContext, service_id: str, candidates: set[str]) -> TaskView | None:
    """The task Swarm took away for the scale-down, once it has stopped."""
    for task in ctx.swarm.list_tasks(service=service_id):
        if task.id in candidates and task.desired_state != "running":
            return task if task.stopped else None
    return None


def _show(spread: Mapping[str, int]) -> str:
    return " ".join(f"{node}={count}" for node, count in sorted(spread.items())) or "none"


def interrupted(swarm: Swarm, service: ServiceView, marker: Mapping[str, object]) -> tuple[bool, str]:
    """A restart in the middle of a rebalance: the count still one above the marker's goes back to
    it (that undoes the surge; the move itself is not repeated)."""
    goal = marker.get("replicas")
    if not isinstance(goal, int) or isinstance(goal, bool):
        return False, f"the marker holds no replica count ({goal!r}); replicas left at {service.replicas}"
    if service.replicas == goal + 1:
        swarm.scale(service.id, goal)
        return True, f"replica count set back from {goal + 1} to {goal}"
    if service.replicas == goal:
        return True, f"replica count already back to {goal}"
    return False, f"replica count is {service.replicas}, not {goal} or {goal + 1}: changed by someone else, left"


REBALANCE = ActionPlugin(
    name="rebalance", help="move one task onto the node with the fewest tasks of the service, start-first",
    scopes=("service",), params=(MOVED_HOLD,), feasible=feasible, plan=plan, describe=describe, run=rebalance,
    timeout=_timeout, settings=(SCALE_TIMEOUT,), interrupted=interrupted,
)
