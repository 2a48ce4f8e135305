"""Scenario 1 (docs/scenarios.md): move a service's task off a troubled node with zero downtime.

The plugin `MIGRATE`. One service update does it all: it adds the owned placement constraint
`node.hostname!=NODE`, records the exclusion and the in-flight action in service labels, and sets
`UpdateConfig.Order: start-first` if the service did not have it (noted in the record; it is left
so, since it only affects future updates and is the safer order; stop-first is Swarm's default:
https://github.com/moby/swarmkit/blob/master/api/defaults/service.go). Changing only a constraint
replaces only the tasks whose node no longer satisfies it, through the updater, so the update order
applies (https://github.com/moby/swarmkit/pull/2496): Swarm starts a replacement on another node and
stops the old task only once the new one is running, i.e. healthy when the service has a
HEALTHCHECK (https://github.com/moby/moby/pull/24545).

Target node: SwarmGuard does not pin the replacement. A `node.hostname==TARGET` constraint would
move every other replica of the service onto TARGET as well, and would need to be owned and
lifted too. Swarm's spread already puts the new task on the eligible node with the fewest tasks
of the service; the `node_load` figures are logged with the choice Swarm made so a poor choice is
visible. The action refuses to run when the exclusion would leave no eligible node.

Waits: T5 when a task that did not exist before the update is running on another node; T6 when
the old task has stopped. On a time-out nothing is undone: the exclusion stays owned and recorded
(lifted after its TTL like any other), Swarm keeps the old task serving until a replacement is
healthy, and the in-flight label is cleared; the record says "timeout" and what was missing.
A wait ends at once, `failed`, when the service is removed or its exclusion constraint is gone
(someone else's update, e.g. a stack redeploy, superseded it: controller/actions/context.py).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from controller.actions.ownership import (
    ACTION_LABEL,
    EXCLUSIONS_LABEL,
    exclusion_constraint,
    read_exclusions,
    write_action,
    write_exclusions,
)
from controller.actions.plugin import ActionPlugin, Param, ParamKind, Params, Rejected, ServiceShape
from controller.model import ActionRecord, Decision, Result, Timeline
from sgcommon.jsonlog import event, get_logger

if TYPE_CHECKING:
    from controller.actions.context import ActionContext, Swarm
    from controller.actions.settings import ActionSettings
    from sgcommon.engine.swarm import ServiceView, TaskView

log = get_logger("swarmguard.controller.actions")

EXCLUSION_TTL = Param("exclusion_ttl", ParamKind.DURATION, default=300.0, minimum=1.0,
                      help="seconds the node stays excluded from the service")
MIGRATE_TIMEOUT = Param("migrate_timeout", ParamKind.DURATION, default=60.0, minimum=0.0, exclusive=True,
                        help="seconds a migration may take before it is recorded as timed out")


def feasible(service: ServiceShape, params: Params) -> str | None:
    if service.replicas is None:
        return "a global service runs one task per node: excluding a node would only remove its task"
    return None


def describe(decision: Decision) -> str:
    return (f"exclude node {decision.node} (node.hostname!={decision.node}, owned), start-first, "
            "wait for the replacement")


def _timeout(settings: ActionSettings) -> float:
    return settings.value(MIGRATE_TIMEOUT)


def migrate(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = ctx.swarm.get_service(decision.service)
    reason = feasible(service, decision.params)
    if reason is not None:
        raise Rejected(reason)
    tasks = ctx.swarm.list_tasks(service=service.id, desired_state="running")
    old = _problem_task(tasks, decision)
    node = old.node_hostname if old else None
    if old is None or node is None:
        raise Rejected(f"no running task of {service.name} for container {decision.container_id} "
                       f"on node {decision.node}: already replaced or moved")
    if decision.node and decision.node != node:
        ctx.notes.append(f"the task runs on {node}, not on {decision.node} as the alert said")
    constraint = exclusion_constraint(node)
    targets = [n.hostname for n in ctx.eligible_nodes((*service.constraints, constraint))]
    if not targets:
        raise Rejected(f"excluding {node} would leave {service.name} no eligible node "
                       f"(constraints: {', '.join(service.constraints) or 'none'})")
    if not service.has_healthcheck:
        event(log, "service has no HEALTHCHECK: zero downtime is not guaranteed", level=logging.WARNING,
              service=service.name, action_id=ctx.action_id)
        ctx.notes.append("no HEALTHCHECK: zero downtime not guaranteed")
    _exclude(ctx, service, node=node, old=old, ttl=float(decision.params[EXCLUSION_TTL.name]))
    load = dict(ctx.node_load())
    deadline = timeline.t4 + _timeout(ctx.settings)
    before = {t.id for t in tasks}
    new = ctx.wait_for("replacement task running on another node",
                       lambda: _replacement(ctx, service.id, before, node), deadline=deadline)
    timeline.t5 = ctx.clock()
    ctx.notes.append(f"swarm placed the replacement on {new.node_hostname} "
                     f"(load there {load.get(new.node_hostname or '', 'unknown')}, "
                     f"least loaded candidate {_least_loaded(targets, load)})")
    ctx.wait_for("old task stopped", lambda: _stopped(ctx, service.id, old.id), deadline=deadline)
    timeline.t6 = ctx.clock()
    return ctx.record(decision, timeline, Result.SUCCESS, node_from=node, node_to=new.node_hostname,
                      replicas_before=service.replicas, replicas_after=service.replicas)


def _problem_task(tasks: Sequence[TaskView], decision: Decision) -> TaskView | None:
    """The running task of the breaching container; without a container id, the task on the node.
    A container id that no running task has means Swarm already replaced it: nothing to move."""
    cid = decision.container_id
    if cid:
        return next((t for t in tasks if t.container_id and (t.container_id.startswith(cid) or cid.startswith(t.container_id))), None)
    return next((t for t in tasks if decision.node and t.node_hostname == decision.node and t.state == "running"), None)


def _exclude(ctx: ActionContext, service: ServiceView, *, node: str, old: TaskView, ttl: float) -> None:
    """The one write of a migration: constraint, owned-exclusion record, in-flight marker, order."""
    constraint = exclusion_constraint(node)
    owned = read_exclusions(service.labels)
    if constraint not in service.constraints or node in owned:
        owned[node] = ctx.clock() + ttl
    order = None
    if service.update_order != "start-first":
        order = "start-first"
        ctx.notes.append(f"update order changed from {service.update_order} to start-first")
    marker = write_action(id=ctx.action_id, action=MIGRATE.name, node=node, task=old.id, started=ctx.clock())
    ctx.wrote = True
    written = ctx.swarm.update_placement(service.id, add=(constraint,), update_order=order,
                                         labels={EXCLUSIONS_LABEL: write_exclusions(owned), ACTION_LABEL: marker})
    ctx.watch(written, lambda now: None if constraint in now.constraints else f"the constraint {constraint} is gone")


def _replacement(ctx: ActionContext, service_id: str, before: set[str], node: str) -> TaskView | None:
    for task in ctx.swarm.list_tasks(service=service_id, desired_state="running"):
        if task.id not in before and task.state == "running" and task.node_hostname != node:
            return task
    return None


def _stopped(ctx: ActionContext, service_id: str, task_id: str) -> bool | None:
    for task in ctx.swarm.list_tasks(service=service_id):
        if task.id == task_id:
            return True if task.stopped else None
    return True  # already removed from the task list


def _least_loaded(targets: Sequence[str], load: dict[str, float]) -> str:
    known = [t for t in targets if t in load]
    return min(known, key=lambda t: load[t]) if known else "unknown"


def interrupted(swarm: Swarm, service: ServiceView, marker: Mapping[str, object]) -> tuple[bool, str]:
    """A migration a restart interrupted: converged when its task left the node and another runs.
    Nothing is written: the exclusion stays owned and is lifted after its TTL like any other."""
    tasks = swarm.list_tasks(service=service.id)
    old = next((t for t in tasks if t.id == marker.get("task")), None)
    elsewhere = [t for t in tasks if t.state == "running" and t.desired_state == "running"
                 and t.node_hostname != marker.get("node")]
    old_gone = old is None or old.stopped
    if old_gone and elsewhere:
        return True, f"the task left {marker.get('node')}; now on {elsewhere[0].node_hostname}"
    return False, f"old task gone: {old_gone}, running elsewhere: {len(elsewhere)}; Swarm continues the rollout"


MIGRATE = ActionPlugin(
    name="migrate", help="move the breaching container's task off its node, start-first",
    scopes=("container",), params=(EXCLUSION_TTL,), feasible=feasible, describe=describe, run=migrate,
    timeout=_timeout, settings=(MIGRATE_TIMEOUT,), interrupted=interrupted,
)
