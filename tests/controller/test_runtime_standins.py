"""Stand-ins for the rule engine and the executor, shared by the runtime, app and fuzz tests.

The real engine (controller.decide) and executor (controller.actions) are tested by their owners;
these record what the runtime hands them, so the tests can check the wiring and the timeline.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from controller.app import AppConfig
from controller.cache import MetricsCache
from controller.events import ControllerMetrics, EventLog
from controller.model import ActionRecord, Decision, Snapshot, Timeline
from controller.runtime import Runtime, Schedule
from controller.services import ServiceRefresher

TOKEN = "s3cret-token"


@dataclass
class FixedRules:
    rules: Any = "rules-v1"

    def current(self) -> Any:
        return self.rules


@dataclass
class CpuRule:
    """Migrate a container whose latest fresh sample has cpu > limit; remembers what it was asked."""

    limit: float = 75.0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, rules: Any, snapshot: Snapshot, now: float, state: Any, *,
                 container_id: str | None = None, scope: str | None = None) -> list[Decision]:
        self.calls.append({"rules": rules, "now": now, "container_id": container_id, "scope": scope,
                           "containers": len(snapshot.containers)})
        if scope == "service":
            return []
        ids = [container_id] if container_id is not None else list(snapshot.containers)
        decisions = []
        for cid in ids:
            c = snapshot.containers.get(cid)
            if c is not None and not c.stale and c.cpu > self.limit:
                decisions.append(Decision(rule="cpu-high", action="migrate", service=c.service, container_id=cid,
                                          node=c.node, t0=c.ts, reason=f"cpu {c.cpu} > {self.limit}"))
        return decisions


class RecordingExecutor:
    """Records submissions; finishes each at once with a record, like a dry-run executor would."""

    def __init__(self, on_record: Any = None, *, answer: str = "accepted") -> None:
        self.submitted: list[tuple[Decision, Timeline]] = []
        self.on_record = on_record
        self.answer = answer
        self.reconciled = self.shut_down = False
        self.lifted = 0
        self._lock = threading.Lock()

    def submit(self, decision: Decision, timeline: Timeline) -> str:
        with self._lock:
            self.submitted.append((decision, timeline))
        if self.on_record is not None:
            self.on_record(ActionRecord(id=f"a{len(self.submitted)}", action=decision.action, service=decision.service,
                                        rule=decision.rule, result="dry_run", timeline=timeline,
                                        node_from=decision.node, container_id=decision.container_id, dry_run=True))
        return self.answer

    def lift_expired_exclusions(self) -> int:
        self.lifted += 1
        return 0

    def reconcile(self) -> None:
        self.reconciled = True

    def busy_services(self) -> set[str]:
        return set()

    def shutdown(self, wait: bool = True) -> None:
        self.shut_down = True


@dataclass
class Rig:
    runtime: Runtime
    executor: RecordingExecutor
    evaluate: Any  # a CpuRule unless the test passed the real engine
    registry: CollectorRegistry
    config: AppConfig


def make_rig(*, token: str | None = TOKEN, clock: Any = None, swarm: Any = None, **runtime_args: Any) -> Rig:
    """A Runtime with the stand-ins, unless `runtime_args` names real parts; `swarm` feeds the service list."""
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    events = EventLog(metrics, keep=100)
    cache = MetricsCache()
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    args: dict[str, Any] = {
        "cache": cache, "rules": FixedRules(), "evaluate": CpuRule(), "state": object(),
        "executor": RecordingExecutor(events.record), "metrics": metrics, "events": events, "schedule": Schedule(),
        "services": ServiceRefresher(swarm, cache) if swarm is not None else None, **extra,
    }
    args.update(runtime_args)
    runtime = Runtime(**args)
    config = AppConfig(alert_token=token, registry=registry, recent_events=events.recent, **extra)
    return Rig(runtime=runtime, executor=args["executor"], evaluate=args["evaluate"], registry=registry, config=config)
