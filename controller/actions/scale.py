"""Scenario 2: add one replica under traffic; remove one when the service is idle (spec 3.2).

Each is one service update that sets the replica count and the in-flight marker together.
scale_up is done (T5) when a task that did not exist before is running (healthy, when the service
has a HEALTHCHECK: Swarm reports such a task "starting" until then). scale_down is done (T5) when
the engine accepted the count and (T6) when only the new count of tasks is still running.
Bounds come from the rule (max_replicas / min_replicas), else from the settings. A global-mode
service is never scaled. On a time-out the new count stays (Swarm keeps converging to it).
"""
from __future__ import annotations

from controller.actions.context import ActionContext, Rejected
from controller.actions.ownership import ACTION_LABEL, write_action
from controller.model import ActionRecord, Decision, Timeline
from sgcommon.engine.swarm import ServiceView


def scale_up(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = _replicated(ctx, decision)
    assert service.replicas is not None
    ceiling = int(decision.params.get("max_replicas") or ctx.settings.max_replicas)
    if service.replicas >= ceiling:
        raise Rejected(f"{service.name} already runs {service.replicas} replicas (max {ceiling})")
    before = {t.id for t in ctx.swarm.list_tasks(service=service.id)}
    _write(ctx, service, service.replicas + 1, action="scale_up")
    deadline = timeline.t4 + ctx.settings.scale_timeout

    def new_task_running() -> str | None:
        for task in ctx.swarm.list_tasks(service=service.id, desired_state="running"):
            if task.id not in before and task.state == "running":
                return task.node_hostname or "?"
        return None

    node = ctx.wait_for("new replica running", new_task_running, deadline=deadline)
    timeline.t5 = ctx.clock()
    return ctx.record(decision, timeline, "success", node_to=node,
                      replicas_before=service.replicas, replicas_after=service.replicas + 1)


def scale_down(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = _replicated(ctx, decision)
    assert service.replicas is not None
    floor = int(decision.params.get("min_replicas") or ctx.settings.min_replicas)
    if service.replicas <= floor:
        raise Rejected(f"{service.name} already runs {service.replicas} replicas (min {floor})")
    target = service.replicas - 1
    _write(ctx, service, target, action="scale_down")
    timeline.t5 = ctx.clock()

    def settled() -> bool | None:
        running = [t for t in ctx.swarm.list_tasks(service=service.id) if t.state in ("running", "starting")]
        return True if len(running) <= target else None

    ctx.wait_for("surplus replica stopped", settled, deadline=timeline.t4 + ctx.settings.scale_timeout)
    timeline.t6 = ctx.clock()
    return ctx.record(decision, timeline, "success", replicas_before=service.replicas, replicas_after=target)


def _replicated(ctx: ActionContext, decision: Decision) -> ServiceView:
    service = ctx.swarm.get_service(decision.service)
    if service.replicas is None:
        raise Rejected(f"{service.name} is a global service: it is never scaled")
    return service


def _write(ctx: ActionContext, service: ServiceView, replicas: int, *, action: str) -> None:
    marker = write_action(id=ctx.action_id, action=action, replicas=replicas, started=ctx.clock())
    ctx.wrote = True
    ctx.swarm.scale(service.id, replicas, labels={ACTION_LABEL: marker})
