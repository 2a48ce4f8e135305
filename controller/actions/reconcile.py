"""Start-up and periodic housekeeping of what SwarmGuard owns on services (see ownership.py).

Interrupted actions: every action writes its change and its `swarmguard.action` marker in one
service update, so a marker found on start means the change is already in Swarm and Swarm is
carrying it out on its own. Repeating it would exclude a second node or add a second replica, so
it is never repeated: the marker is cleared and one record says what was found (result
"success" when the service already converged - e.g. the migrated task runs off the excluded
node - else "failed" with what is still pending; the owned exclusion stays and is lifted after its
TTL like any other). Owned exclusions whose constraint an operator removed are forgotten.

Expired exclusions: the owned constraint and its entry go in one update. Relaxing a constraint
moves no task (https://github.com/moby/swarmkit/pull/2496), so this is safe at any time; busy
services are skipped until next time.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from controller.actions.context import Swarm
from controller.actions.ownership import (
    ACTION_LABEL,
    EXCLUSIONS_LABEL,
    LabelError,
    exclusion_constraint,
    read_action,
    read_exclusions,
    write_exclusions,
)
from controller.actions.registry import PLUGINS
from controller.model import ActionRecord, Result, Timeline
from sgcommon.engine import EngineError
from sgcommon.engine.swarm import ServiceView
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.actions")


def owned_services(swarm: Swarm) -> list[ServiceView]:
    return [s for s in swarm.list_services() if EXCLUSIONS_LABEL in s.labels or ACTION_LABEL in s.labels]


def may_have_expired(service: ServiceView, now: float) -> bool:
    """Whether `lift_expired` has work on this service (an unreadable label counts, so it is reported):
    the job reads and holds only those, so a decision never finds a service busy with nothing to lift."""
    try:
        return any(expiry <= now for expiry in read_exclusions(service.labels).values())
    except LabelError:
        return True


def lift_expired(swarm: Swarm, service: ServiceView, now: float) -> int:
    """Lifts this service's expired owned exclusions; returns how many."""
    try:
        owned = read_exclusions(service.labels)
    except LabelError as exc:
        event(log, "ownership label unreadable, left alone", level=logging.WARNING, service=service.name, error=str(exc))
        return 0
    expired = [node for node, expiry in owned.items() if expiry <= now]
    if not expired:
        return 0
    keep = {n: e for n, e in owned.items() if n not in expired}
    swarm.update_placement(service.id, remove=tuple(exclusion_constraint(n) for n in expired),
                           labels={EXCLUSIONS_LABEL: write_exclusions(keep)})
    event(log, "node exclusion lifted", service=service.name, nodes=expired)
    return len(expired)


def resolve_interrupted(
    swarm: Swarm,
    service: ServiceView,
    *,
    now: float,
    on_record: Callable[[ActionRecord], None],
) -> None:
    """Clears an in-flight marker left by a restart and records what state the service is in."""
    try:
        marker = read_action(service.labels)
        owned = read_exclusions(service.labels)
    except LabelError as exc:
        event(log, "ownership label unreadable, left alone", level=logging.WARNING, service=service.name, error=str(exc))
        return
    forgotten = [n for n in owned if exclusion_constraint(n) not in service.constraints]
    labels: dict[str, str | None] = {}
    if forgotten:
        labels[EXCLUSIONS_LABEL] = write_exclusions({n: e for n, e in owned.items() if n not in forgotten})
        event(log, "owned exclusion removed by someone else, forgotten", service=service.name, nodes=forgotten)
    if marker is not None:
        labels[ACTION_LABEL] = None
    if not labels:
        return
    swarm.update_placement(service.id, labels=labels)
    if marker is not None:
        on_record(_interrupted_record(swarm, service, marker, now))


def _interrupted_record(swarm: Swarm, service: ServiceView, marker: dict[str, Any], now: float) -> ActionRecord:
    action = str(marker.get("action", "?"))
    converged, detail = _converged(swarm, service, marker)
    record = ActionRecord(
        id=str(marker.get("id", "?")), action=action, service=service.name, rule="(interrupted)",
        result=Result.SUCCESS if converged else Result.FAILED,
        timeline=Timeline(t4=_float(marker.get("started"))), node_from=marker.get("node"),
        replicas_after=marker.get("replicas") if isinstance(marker.get("replicas"), int) else None,
        reason=f"action interrupted by a controller restart, not repeated: {detail}",
        error=None if converged else "interrupted by a controller restart",
    )
    event(log, "interrupted action resolved", level=logging.WARNING, **record.as_dict(), found_at=now)
    return record


def _converged(swarm: Swarm, service: ServiceView, marker: dict[str, Any]) -> tuple[bool, str]:
    """Asks the action's plugin (`ActionPlugin.interrupted`); without one, converged when the
    replica count runs."""
    plugin = PLUGINS.get(str(marker.get("action")))
    try:
        if plugin is not None and plugin.interrupted is not None:
            return plugin.interrupted(swarm, service, marker)
        tasks = swarm.list_tasks(service=service.id)
    except EngineError as exc:
        return False, f"the engine could not be asked or told ({exc})"
    running = sum(1 for t in tasks if t.state == "running" and t.desired_state == "running")
    if running == service.replicas:
        return True, f"{running} replicas running as requested"
    return False, f"{running} of {service.replicas} replicas running; Swarm continues"


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
