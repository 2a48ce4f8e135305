"""What an action gets to do its work: the Swarm adapter, settings, the clock, and a waiter.

An action is a plugin's `run(ctx, decision, timeline) -> ActionRecord`; the global limits (locks,
rate, disruption budget, dry-run) live in the executor, never in an action.

Waiting is the longest part of an action, and the world may move under it: an operator removes the
service, or updates it so that the action's change is gone (a `docker stack deploy` puts the
file's constraints and replica count back). After its write an action tells the context what its
change is (`watch`); every poll that finds the result not there yet also reads the service, and a
service that is gone or no longer holds the change ends the wait at once (`Abandoned`, recorded as
`failed` with the reason) instead of polling until the time-out.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from controller.actions.plugin import TimedOut
from controller.actions.settings import ActionSettings
from controller.model import ActionRecord, Decision, Result, Timeline
from sgcommon.engine import EngineError, NotFound
from sgcommon.engine.placement import eligible_nodes
from sgcommon.engine.swarm import NodeView, ServiceView, TaskView
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.actions")
T = TypeVar("T")
Holds = Callable[[ServiceView], str | None]  # None while the service holds the change, else what is gone


class Abandoned(Exception):
    """Raised by `ActionContext.wait_for`: there is nothing left to wait for (the service was removed,
    or an update by someone else superseded the action's change); the message says which."""


@dataclass(frozen=True)
class Watch:
    """The action's own change in Swarm, checked while it waits (see the module docstring)."""

    service_id: str
    name: str
    version: int  # the service's version right after the action's write
    holds: Holds


class Swarm(Protocol):
    """The part of sgcommon.engine.swarm.SwarmAdapter the actions use."""

    def list_nodes(self) -> list[NodeView]: ...
    def list_services(self, *, label: str | None = None) -> list[ServiceView]: ...
    def get_service(self, name_or_id: str) -> ServiceView: ...
    def list_tasks(self, *, service: str | None = None, desired_state: str | None = None,
                   node: str | None = None) -> list[TaskView]: ...
    def scale(self, service: str, replicas: int, *, labels: Mapping[str, str | None] | None = None) -> ServiceView: ...
    def update_placement(self, service: str, *, add: tuple[str, ...] = (), remove: tuple[str, ...] = (),
                         update_order: str | None = None,
                         labels: Mapping[str, str | None] | None = None) -> ServiceView: ...


@dataclass
class ActionContext:
    swarm: Swarm
    settings: ActionSettings
    action_id: str
    clock: Callable[[], float] = time.time
    node_load: Callable[[], Mapping[str, float]] = dict
    sleep: Callable[[float], None] = time.sleep
    notes: list[str] = field(default_factory=list)  # facts worth adding to the record's reason
    wrote: bool = False  # the action's service update was sent (its in-flight marker may be set)
    watching: Watch | None = None  # the change the action wrote, checked while it waits

    def watch(self, written: ServiceView, holds: Holds) -> None:
        """After the action's write: `holds(service)` says whether the service still holds the change."""
        self.watching = Watch(written.id, written.name, written.version, holds)

    def eligible_nodes(self, constraints: Sequence[str]) -> list[NodeView]:
        """The nodes Swarm could place a task on under `constraints`, read now."""
        return eligible_nodes(self.swarm.list_nodes(), constraints)

    def wait_for(self, what: str, probe: Callable[[], T | None], *, deadline: float) -> T:
        """Polls `probe` until it returns something other than None; TimedOut at the deadline,
        Abandoned as soon as the watched service is gone or no longer holds the action's change.

        The change is already in Swarm while an action waits, so an engine error here is not the
        action's failure: it is logged once and polling goes on until the deadline."""
        last_error: EngineError | None = None
        while True:
            error: EngineError | None = None
            try:
                found = probe()
            except EngineError as exc:
                found, error = None, exc
            if found is not None:
                return found
            try:
                self._check_watched(what)  # Abandoned ends the wait here, whatever the probe said
            except EngineError as exc:
                error = error or exc
            if error is not None:
                if last_error is None:
                    event(log, "engine error while waiting, still polling", level=logging.WARNING,
                          action_id=self.action_id, waiting_for=what, error=str(error))
                last_error = error
            if self.clock() >= deadline:
                suffix = f" (last engine error: {last_error})" if last_error else ""
                raise TimedOut(f"{what}: not done after the time-out{suffix}")
            self.sleep(self.settings.poll_interval)

    def _check_watched(self, what: str) -> None:
        """Abandoned when the watched service is gone or no longer holds the action's change."""
        watch = self.watching
        if watch is None:
            return
        try:
            service = self.swarm.get_service(watch.service_id)
        except NotFound:
            raise Abandoned(f"service removed while the action waited: {watch.name} is gone ({what})") from None
        gone = watch.holds(service)
        if gone is not None:
            raise Abandoned(f"superseded while the action waited ({what}): {watch.name} was updated by someone "
                            f"else (version {watch.version} -> {service.version}) and {gone}")

    def record(self, decision: Decision, timeline: Timeline, result: Result, **fields: object) -> ActionRecord:
        reason = "; ".join([decision.reason, *self.notes]) if self.notes else decision.reason
        return ActionRecord(
            id=self.action_id, action=decision.action.name, service=decision.service, rule=decision.rule,
            result=result, timeline=timeline, container_id=decision.container_id, reason=reason,
            dry_run=result is Result.DRY_RUN, **fields,  # type: ignore[arg-type]
        )
