"""Runs the rule engine's decisions against Swarm, safely: the one place for the safety rules.

Like descheduler's evictor, the limits live here and the actions stay small:
- one action per service at a time (a second decision for a busy service answers "busy");
- at most `max_actions_per_minute` actions started per minute, all services together;
- no scale-down within `scale_down_cooldown` of a scale-up of the same service;
- dry-run: the decision is logged and recorded as "dry_run" with what would be done, and no
  API call is made (not even a read);
- `submit` never blocks: actions run on a small thread pool.
Every action ends in exactly one ActionRecord passed to `on_record` and logged as one JSON line,
whether it succeeded, failed, timed out or was rejected.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from controller.actions.context import ActionContext, Rejected, Swarm, TimedOut
from controller.actions.migrate import migrate
from controller.actions.ownership import ACTION_LABEL
from controller.actions.reconcile import lift_expired, owned_services, resolve_interrupted
from controller.actions.scale import scale_down, scale_up
from controller.actions.settings import ActionSettings
from controller.model import ActionRecord, Decision, Timeline
from sgcommon.engine import EngineError
from sgcommon.engine.swarm import ServiceView
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.actions")
Action = Callable[[ActionContext, Decision, Timeline], ActionRecord]
ACTIONS: Mapping[str, Action] = {"migrate": migrate, "scale_up": scale_up, "scale_down": scale_down}
WOULD = {
    "migrate": "exclude node {node} (node.hostname!={node}, owned), start-first, wait for the replacement",
    "scale_up": "add one replica (up to max_replicas)",
    "scale_down": "remove one replica (down to min_replicas)",
}


class Executor:
    def __init__(
        self,
        swarm: Swarm,
        settings: ActionSettings,
        *,
        on_record: Callable[[ActionRecord], None],
        node_load: Callable[[], Mapping[str, float]],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._swarm = swarm
        self._settings = settings
        self._on_record = on_record
        self._node_load = node_load
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._started: deque[float] = deque()
        self._last_scale_up: dict[str, float] = {}
        self._reconcile_pending = False
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="swarmguard-action")

    # ---- the interface F calls -------------------------------------------------------------
    def submit(self, decision: Decision, timeline: Timeline) -> str:
        """Starts the action for `decision` in the background; answers at once what happened to it."""
        verdict = self._admit(decision)
        if verdict in ("busy", "rate_limited"):
            event(log, "action not started", level=logging.WARNING, verdict=verdict, service=decision.service,
                  action=decision.action, rule=decision.rule)
            return verdict
        action_id = uuid.uuid4().hex[:12]
        if verdict.startswith("refused"):
            self._finish(ActionRecord(id=action_id, action=decision.action, service=decision.service, rule=decision.rule,
                                      result="rejected", timeline=timeline, container_id=decision.container_id,
                                      reason=decision.reason, error=verdict.removeprefix("refused: ")))
            return verdict
        if verdict == "dry_run":
            what = WOULD[decision.action].format(node=decision.node)
            self._finish(ActionRecord(id=action_id, action=decision.action, service=decision.service, rule=decision.rule,
                                      result="dry_run", timeline=timeline, container_id=decision.container_id,
                                      node_from=decision.node, reason=f"{decision.reason}; would {what}", dry_run=True))
            return verdict
        try:
            self._pool.submit(self._run, decision, timeline, action_id)
        except RuntimeError:  # the pool is shut down: the controller is stopping
            self._release(decision.service)
            return "refused: the executor is shutting down"
        return "accepted"

    def busy_services(self) -> set[str]:
        with self._lock:
            return set(self._busy)

    def lift_expired_exclusions(self) -> int:
        """Lifts owned node exclusions past their expiry (skips services with an action running).
        Also finishes a start-up reconcile that could not reach the engine."""
        if self._settings.dry_run:
            return 0
        if self._reconcile_pending:
            self.reconcile()
            return 0  # reconcile lifted what it could
        return sum(self._each_owned("lifting an exclusion", lambda view: lift_expired(self._swarm, view, self._clock())) or [])

    def reconcile(self) -> bool:
        """On start: resolves actions a restart interrupted (never repeats them), lifts expired
        exclusions. False when the engine cannot be reached: then it is retried by
        `lift_expired_exclusions`."""
        if self._settings.dry_run:
            return True
        self._reconcile_pending = True

        def resolve(view: ServiceView) -> int:
            resolve_interrupted(self._swarm, view, now=self._clock(), on_record=self._finish)
            return 0

        if self._each_owned("reconciling a service", resolve) is None:
            return False
        self._reconcile_pending = False
        self.lift_expired_exclusions()
        return True

    def _each_owned(self, what: str, work: Callable[[ServiceView], int]) -> list[int] | None:
        """Runs `work` on a fresh read of each service with SwarmGuard labels, holding its lock;
        None when the services cannot be listed."""
        try:
            names = [view.name for view in owned_services(self._swarm)]
        except EngineError as exc:
            event(log, f"{what} postponed: engine unreachable", level=logging.WARNING, error=str(exc))
            return None
        results = []
        for name in names:
            if not self._claim(name):
                continue
            try:
                results.append(work(self._swarm.get_service(name)))  # fresh: an action may just have ended
            except EngineError as exc:
                event(log, f"{what} failed, will retry", level=logging.WARNING, service=name, error=str(exc))
            finally:
                self._release(name)
        return results

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    # ---- safety rules ----------------------------------------------------------------------
    def _admit(self, decision: Decision) -> str:
        if decision.action not in ACTIONS:
            return f"refused: unknown action {decision.action!r}"
        now = self._clock()
        with self._lock:
            if decision.service in self._busy:
                return "busy"
            if decision.action == "scale_down":
                since = now - self._last_scale_up.get(decision.service, float("-inf"))
                if since < self._settings.scale_down_cooldown:
                    return (f"refused: scale-down {since:.0f} s after a scale-up "
                            f"(cooldown {self._settings.scale_down_cooldown:.0f} s)")
            while self._started and self._started[0] <= now - 60.0:
                self._started.popleft()
            if len(self._started) >= self._settings.max_actions_per_minute:
                return "rate_limited"
            self._started.append(now)
            if self._settings.dry_run:
                return "dry_run"
            self._busy.add(decision.service)
        return "accepted"

    def _claim(self, service: str) -> bool:
        with self._lock:
            if service in self._busy:
                return False
            self._busy.add(service)
            return True

    def _release(self, service: str) -> None:
        with self._lock:
            self._busy.discard(service)

    # ---- running an action -----------------------------------------------------------------
    def _run(self, decision: Decision, timeline: Timeline, action_id: str) -> None:
        ctx = ActionContext(swarm=self._swarm, settings=self._settings, action_id=action_id, clock=self._clock,
                            node_load=self._node_load, sleep=self._sleep)
        try:
            record = ACTIONS[decision.action](ctx, decision, timeline)
        except Rejected as exc:
            record = ctx.record(decision, timeline, "rejected", node_from=decision.node, error=str(exc))
        except TimedOut as exc:
            record = ctx.record(decision, timeline, "timeout", node_from=decision.node, error=str(exc))
        except (EngineError, ValueError) as exc:
            record = ctx.record(decision, timeline, "failed", node_from=decision.node, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - an action must always end in a record
            log.exception("action crashed")
            record = ctx.record(decision, timeline, "failed", node_from=decision.node, error=f"internal error: {exc!r}")
        finally:
            if ctx.wrote:
                self._clear_marker(decision.service)
            if decision.action == "scale_up" and ctx.wrote:
                with self._lock:
                    self._last_scale_up[decision.service] = timeline.t4
            self._release(decision.service)
        self._finish(record)

    def _clear_marker(self, service: str) -> None:
        try:
            view = self._swarm.get_service(service)
            if ACTION_LABEL in view.labels:
                self._swarm.update_placement(view.id, labels={ACTION_LABEL: None})
        except EngineError as exc:
            event(log, "in-flight marker not cleared; reconcile will resolve it", level=logging.WARNING,
                  service=service, error=str(exc))

    def _finish(self, record: ActionRecord) -> None:
        level = logging.INFO if record.result in ("success", "dry_run") else logging.WARNING
        event(log, "action finished", level=level, **record.as_dict())
        try:
            self._on_record(record)
        except Exception:  # noqa: BLE001 - a broken sink must not kill the action thread
            log.exception("on_record failed")
