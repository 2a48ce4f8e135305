"""The disruption budget: how many tasks SwarmGuard may have in transition at once.

Why it exists: a rule may fire on many containers at the same moment (a node under pressure, a
traffic burst on ten services). Like a Kubernetes PodDisruptionBudget or Karpenter's disruption
budgets, the executor then starts only as many actions as leave the cluster, and each service, with
enough settled tasks: at most `max_moving` tasks of one service and `max_moving_total` tasks in all
in transition because of SwarmGuard. A task is in transition from the moment an action asks Swarm
for the change until Swarm has finished it: a replacement starting beside the task it replaces, a new
replica starting, a surplus replica stopping.

Each action declares how many tasks it puts in transition at once (`ActionPlugin.moving`): migrate,
scale_up and scale_down one; a future `rebalance` moving a service's tasks one at a time, start-first,
declares one and holds it for its whole run. A hold is taken when the executor starts the action and
given back when the action ends; an action that timed out keeps its hold until Swarm has finished
(`tasks_in_transition` of the service is 0), since Swarm goes on with the change after SwarmGuard
stopped waiting. In dry-run nothing moves, so a would-be action holds its share for its time-out
(the longest it could hold it live): the records then show what the budget would have let through.

Not thread-safe on its own: the executor calls it under its lock. The clock is passed in.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Protocol


class TaskState(Protocol):
    @property
    def slot(self) -> int | None: ...
    @property
    def node_id(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def desired_state(self) -> str: ...
    @property
    def stopped(self) -> bool: ...


def tasks_in_transition(tasks: Iterable[TaskState]) -> int:
    """Tasks of one service that are not settled: per slot (per node for a global service), every task
    not yet stopped except the one running as desired (a slot with no such task counts all of them)."""
    slots: dict[Hashable, list[TaskState]] = {}
    for task in tasks:
        if not task.stopped:
            slots.setdefault(task.slot if task.slot is not None else task.node_id, []).append(task)
    moving = 0
    for group in slots.values():
        settled = any(t.state == "running" and t.desired_state == "running" for t in group)
        moving += len(group) - (1 if settled else 0)
    return moving


@dataclass(eq=False)
class Hold:
    """One action's share of the budget."""

    service: str
    tasks: int
    until: float | None = None  # None: until given back (a live action); else a dry-run's expiry


class DisruptionBudget:
    def __init__(self, *, per_service: int, total: int, clock: Callable[[], float]) -> None:
        self.per_service = per_service
        self.total = total
        self._clock = clock
        self._holds: list[Hold] = []

    def moving(self, service: str | None = None) -> int:
        """Tasks held in transition, of `service` or of all services."""
        self._expire()
        return sum(h.tasks for h in self._holds if service is None or h.service == service)

    def refusal(self, service: str, tasks: int) -> str | None:
        """Why `tasks` more tasks of `service` in transition would exceed the budget, or None."""
        if tasks > self.per_service:
            return f"the action moves {tasks} tasks of {service} at once, max_moving is {self.per_service}"
        mine, everyone = self.moving(service), self.moving()
        if mine + tasks > self.per_service:
            return f"{service} already has {mine} of max_moving {self.per_service} tasks in transition"
        if everyone + tasks > self.total:
            return f"{everyone} of max_moving_total {self.total} tasks already in transition"
        return None

    def take(self, service: str, tasks: int, *, until: float | None = None) -> Hold:
        hold = Hold(service, tasks, until)
        self._holds.append(hold)
        return hold

    def give_back(self, hold: Hold) -> None:
        if hold in self._holds:
            self._holds.remove(hold)

    def describe(self, service: str) -> str:
        return (f"{self.moving(service)} of max_moving {self.per_service} tasks of {service} and "
                f"{self.moving()} of max_moving_total {self.total} in all in transition")

    def _expire(self) -> None:
        now = self._clock()
        self._holds = [h for h in self._holds if h.until is None or h.until > now]
