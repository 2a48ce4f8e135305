"""Keeps the cache's view of Swarm services (replicas, labels, healthcheck, task spread) fresh, off the alert path.

The rule engine needs each service's replica count (None for global services, never scaled), its
labels (rules can opt in by label), whether it has a HEALTHCHECK, and how its running tasks are
spread over the nodes it may run on (the `task_skew` and `nodes_ready` figures of service rules,
docs/rules.md). Asking Swarm on every alert would put a Docker round trip on the alert path, so a
scheduler job calls `refresh()` every few seconds and the last good list is kept when Swarm cannot
be asked.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from controller.cache import MetricsCache
from controller.model import ServiceInfo, task_spread
from sgcommon.engine.placement import SchedulableNode, eligible_nodes
from sgcommon.jsonlog import OnceLogger, get_logger

log = get_logger("swarmguard.controller.services")


class ServiceLike(Protocol):
    """What is read of a service (sgcommon.engine.swarm.ServiceView)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def replicas(self) -> int | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def has_healthcheck(self) -> bool: ...
    @property
    def constraints(self) -> tuple[str, ...]: ...


class NodeLike(SchedulableNode, Protocol):
    """What is read of a node (sgcommon.engine.swarm.NodeView)."""


class TaskLike(Protocol):
    """What is read of a task (sgcommon.engine.swarm.TaskView)."""

    @property
    def service_id(self) -> str: ...
    @property
    def node_hostname(self) -> str | None: ...
    @property
    def stopped(self) -> bool: ...


class ServiceLister(Protocol):
    """The part of sgcommon.engine.swarm.SwarmAdapter this needs."""

    def list_services(self) -> Sequence[ServiceLike]: ...
    def list_nodes(self) -> Sequence[NodeLike]: ...
    def list_tasks(self, *, desired_state: str | None = None) -> Sequence[TaskLike]: ...


def to_service_info(view: ServiceLike, *, tasks_per_node: Mapping[str, int] | None = None,
                    observed: float | None = None) -> ServiceInfo:
    """A ServiceView (name, replicas or None, labels, has_healthcheck) as the rule engine's ServiceInfo."""
    return ServiceInfo(
        name=view.name,
        replicas=view.replicas,
        labels=dict(view.labels or {}),
        has_healthcheck=bool(view.has_healthcheck),
        tasks_per_node=tasks_per_node,
        observed=observed,
    )


class ServiceRefresher:
    """Copies the Swarm service list into the cache; logs a failure once and its end once."""

    def __init__(self, swarm: ServiceLister, cache: MetricsCache, *, clock: Callable[[], float] = time.time) -> None:
        self._swarm = swarm
        self._cache = cache
        self._clock = clock
        self._once = OnceLogger(log)
        self.ok = False

    def refresh(self) -> bool:
        try:
            services = self._read()
        except Exception as exc:  # EngineError or a malformed answer: keep the last good list
            self._once.warn("services", "cannot refresh the service list; keeping the last one", error=str(exc))
            self.ok = False
            return False
        self._cache.set_services(services)
        self._once.clear("services", "service list refreshed again", services=len(services))
        self.ok = True
        return True

    def _read(self) -> dict[str, ServiceInfo]:
        """Three reads (services, nodes, running tasks), whatever the number of services."""
        views = self._swarm.list_services()
        nodes = self._swarm.list_nodes()
        by_service: dict[str, list[TaskLike]] = {}
        for task in self._swarm.list_tasks(desired_state="running"):
            by_service.setdefault(task.service_id, []).append(task)
        observed = self._clock()
        return {view.name: to_service_info(
                    view, observed=observed,
                    tasks_per_node=None if view.replicas is None else task_spread(
                        [node.hostname for node in eligible_nodes(nodes, view.constraints)],
                        [task.node_hostname for task in by_service.get(view.id, ()) if not task.stopped]))
                for view in views}

