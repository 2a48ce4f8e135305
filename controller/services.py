"""Keeps the cache's view of Swarm services (replicas, labels, healthcheck) fresh, off the alert path.

The rule engine needs each service's replica count (None for global services, never scaled), its
labels (rules can opt in by label) and whether it has a HEALTHCHECK. Asking Swarm on every alert
would put a Docker round trip on the alert path, so a scheduler job calls `refresh()` every few
seconds and the last good list is kept when Swarm cannot be asked.
"""
from __future__ import annotations

from typing import Any, Protocol

from controller.cache import MetricsCache
from controller.model import ServiceInfo
from sgcommon.jsonlog import OnceLogger, get_logger

log = get_logger("swarmguard.controller.services")


class ServiceLister(Protocol):
    def list_services(self) -> Any: ...


def to_service_info(view: Any) -> ServiceInfo:
    """A SwarmAdapter ServiceView (name, replicas or None, labels, has_healthcheck) as a ServiceInfo."""
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
