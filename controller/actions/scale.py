"""Scenario 2 (docs/scenarios.md): add one replica under traffic; remove one when the service is idle.

The plugins `SCALE_UP` and `SCALE_DOWN`. Each run is one service update that sets the replica count
and the in-flight marker together. scale_up is done (T5) when a task that did not exist before is
running (healthy, when the service has a HEALTHCHECK: Swarm reports such a task "starting" until
then). scale_down is done (T5) when the engine accepted the count and (T6) when only the new count
of tasks is still running. Bounds are the rule's `max_replicas` / `min_replicas`; a global-mode
service is never scaled. The rule engine asks `feasible` before it decides, and the run asks the
same function again on the service it reads right before writing. A scale-down is spaced
`after_scale_up` seconds from a scale-up of the same service by the rule engine. On a time-out the
new count stays (Swarm keeps converging to it). A wait ends at once, `failed`, when the service is
removed or someone else sets another replica count (controller/actions/context.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from controller.actions.ownership import ACTION_LABEL, write_action
from controller.actions.plugin import (
    ActionPlugin,
    Describe,
    Param,
    ParamKind,
    Params,
    ParamValue,
    Plan,
    Rejected,
    ServiceShape,
    Spacing,
)
from controller.model import ActionRecord, Decision, Result, Timeline

if TYPE_CHECKING:
    from controller.actions.context import ActionContext
    from controller.actions.settings import ActionSettings
    from sgcommon.engine.swarm import ServiceView

MAX_REPLICAS = Param("max_replicas", ParamKind.COUNT, default=10, minimum=1,
                     help="scale_up stops at this many replicas")
MIN_REPLICAS = Param("min_replicas", ParamKind.COUNT, default=1, minimum=1,
                     help="scale_down stops at this many replicas")
AFTER_SCALE_UP = Param("after_scale_up", ParamKind.DURATION, default=180.0, minimum=0.0,
                       help="seconds after a scale-up of the service during which scale_down does not fire")
SCALE_TIMEOUT = Param("scale_timeout", ParamKind.DURATION, default=60.0, minimum=0.0, exclusive=True,
                      help="seconds a scale action may take before it is recorded as timed out (rebalance: each of its two waits)")


def _global(service: ServiceShape) -> str | None:
    return f"{service.name} is a global service: it is never scaled" if service.replicas is None else None


def up_feasible(service: ServiceShape, params: Params) -> str | None:
    ceiling = params["max_replicas"]
    if service.replicas is not None and service.replicas >= ceiling:
        return f"{service.name} already runs {service.replicas} replicas (max {ceiling})"
    return _global(service)


def down_feasible(service: ServiceShape, params: Params) -> str | None:
    floor = params["min_replicas"]
    if service.replicas is not None and service.replicas <= floor:
        return f"{service.name} already runs {service.replicas} replicas (min {floor})"
    return _global(service)


def _plan(step: int) -> Plan:
    def plan(service: ServiceShape, params: Params) -> Mapping[str, ParamValue]:
        assert service.replicas is not None  # feasible() refused global services
        return {"replicas": service.replicas, "target_replicas": service.replicas + step}
    return plan


def _describe(step: int, bound: str) -> Describe:
    def describe(decision: Decision) -> str:
        limit = f"{bound.split('_')[0]} {decision.params.get(bound, '?')}"
        if "replicas" in decision.params and "target_replicas" in decision.params:
            return (f"scale {decision.service} from {decision.params['replicas']:g} to "
                    f"{decision.params['target_replicas']:g} replicas ({limit})")
        return f"{'add' if step > 0 else 'remove'} one replica ({limit})"
    return describe


def _timeout(settings: ActionSettings) -> float:
    return settings.value(SCALE_TIMEOUT)


def _bounds_agree(values: Mapping[str, ParamValue]) -> list[str]:
    """The settings' default floor may not be above their default ceiling."""
    if values["max_replicas"] < values["min_replicas"]:
        return ["max_replicas: must be >= min_replicas"]
    return []


def scale_up(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = _fresh(ctx, decision, SCALE_UP)
    assert service.replicas is not None
    before = {t.id for t in ctx.swarm.list_tasks(service=service.id)}
    _write(ctx, service, service.replicas + 1, action=SCALE_UP.name)
    deadline = timeline.t4 + _timeout(ctx.settings)

    def new_task_running() -> str | None:
        for task in ctx.swarm.list_tasks(service=service.id, desired_state="running"):
            if task.id not in before and task.state == "running":
                return task.node_hostname or "?"
        return None

    node = ctx.wait_for("new replica running", new_task_running, deadline=deadline)
    timeline.t5 = ctx.clock()
    return ctx.record(decision, timeline, Result.SUCCESS, node_to=node,
                      replicas_before=service.replicas, replicas_after=service.replicas + 1)


def scale_down(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    timeline.t4 = ctx.clock()
    service = _fresh(ctx, decision, SCALE_DOWN)
    assert service.replicas is not None
    target = service.replicas - 1
    _write(ctx, service, target, action=SCALE_DOWN.name)
    timeline.t5 = ctx.clock()

    def settled() -> bool | None:
        running = [t for t in ctx.swarm.list_tasks(service=service.id) if t.state in ("running", "starting")]
        return True if len(running) <= target else None

    ctx.wait_for("surplus replica stopped", settled, deadline=timeline.t4 + _timeout(ctx.settings))
    timeline.t6 = ctx.clock()
    return ctx.record(decision, timeline, Result.SUCCESS, replicas_before=service.replicas, replicas_after=target)


def _fresh(ctx: ActionContext, decision: Decision, plugin: ActionPlugin) -> ServiceView:
    """The service as it is now; Rejected when the same check the rule engine made fails on it."""
    service = ctx.swarm.get_service(decision.service)
    reason = plugin.feasible(service, decision.params)
    if reason is not None:
        raise Rejected(reason)
    return service


def _write(ctx: ActionContext, service: ServiceView, replicas: int, *, action: str) -> None:
    marker = write_action(id=ctx.action_id, action=action, replicas=replicas, started=ctx.clock())
    ctx.wrote = True
    written = ctx.swarm.scale(service.id, replicas, labels={ACTION_LABEL: marker})
    ctx.watch(written, lambda now: None if now.replicas == replicas
              else f"it is set to {now.replicas} replicas, not the {replicas} the action set")


SCALE_UP = ActionPlugin(
    name="scale_up", help="add one replica", scopes=("container", "service"), params=(MAX_REPLICAS,),
    feasible=up_feasible, plan=_plan(+1), describe=_describe(+1, "max_replicas"), run=scale_up, timeout=_timeout,
    settings=(SCALE_TIMEOUT,),
)
SCALE_DOWN = ActionPlugin(
    name="scale_down", help="remove one replica", scopes=("service",), params=(MIN_REPLICAS, AFTER_SCALE_UP),
    feasible=down_feasible, plan=_plan(-1), describe=_describe(-1, "min_replicas"), run=scale_down, timeout=_timeout,
    not_after=(Spacing(after="scale_up", param="after_scale_up"),), settings=(SCALE_TIMEOUT,),
    settings_check=_bounds_agree,
)
