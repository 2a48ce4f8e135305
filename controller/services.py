"""Keeps the cache's view of Swarm services (replicas, labels, healthcheck) fresh, off the alert path.

The rule engine needs each service's replica count (None for global services, never scaled), its
labels (rules can opt in by label) and whether it has a HEALTHCHECK. Asking Swarm on every alert
would put a Docker round trip on the alert path, so a scheduler job calls `refresh()` every few
seconds and the last good list is kept when Swarm cannot be asked.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from controller.cache import MetricsCache
from controller.model import ServiceInfo
from sgcommon.jsonlog import OnceLogger, get_logger

log = get_logger("swarmguard.controller.services")


class ServiceLike(Protocol):
    """What is read of a service (sgcommon.engine.swarm.ServiceView)."""

    @property
    def name(self) -> str: ...
    @property
    def replicas(self) -> int | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def has_healthcheck(self) -> bool: ...


class ServiceLister(Protocol):
    """The part of sgcommon.engine.swarm.SwarmAdapter this needs."""

    def list_services(self) -> Sequence[ServiceLike]: ...


def to_service_info(view: ServiceLike) -> ServiceInfo:
    """A ServiceView (name, replicas or None, labels, has_healthcheck) as the rule engine's ServiceInfo."""
    return ServiceInfo(
        name=view.name,
        replicas=view.replicas,
        labels=dict(view.labels or {}),
        has_healthcheck=bool(view.has_healthcheck),
    )


class ServiceRefresher:
    """Copies the Swarm service list into the cache; logs a failure once and its end once."""

    def __init__(self, swarm: ServiceLister, cache: MetricsCache) -> None:
        self._swarm = swarm
        self._cache = cache
        self._once = OnceLogger(log)
        self.ok = False

    def refresh(self) -> bool:
        try:
            views = self._swarm.list_services()
            services = {info.name: info for info in map(to_service_info, views)}
        except Exception as exc:  # EngineError or a malformed answer: keep the last good list
            self._once.warn("services", "cannot refresh the service list; keeping the last one", error=str(exc))
            self.ok = False
            return False
        self._cache.set_services(services)
        self._once.clear("services", "service list refreshed again", services=len(services))
        self.ok = True
        return True
