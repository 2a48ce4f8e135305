"""Runs the rule engine's decisions against Swarm under the global limits: the one place for them.

Like descheduler's evictor, the limits live here and the actions stay small plugins; what an action
may do to a given service (bounds, global services, spacing after another action) is the plugin's
own check, asked by the rule engine before it decides. The global limits:
- one action per service at a time (a second decision for a busy service answers BUSY);
- the disruption budget (budget.py): at most `max_moving` tasks of a service and
  `max_moving_total` tasks in all in transition (OVER_BUDGET, with the reason);
- at most `max_actions_per_minute` actions started per minute, all services together (RATE_LIMITED);
- dry-run: the decision is recorded as "dry_run" with what would be done and what the budget would
  allow, and no API call is made (not even a read);
- `submit` never blocks: actions run on a small thread pool.
BUSY, RATE_LIMITED and OVER_BUDGET start nothing and are not recorded (the caller gives the rule its
cooldown back). Every action started ends in exactly one ActionRecord passed to `on_record` and
logged as one JSON line, whether it succeeded, failed, timed out or was rejected.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from controller.actions.budget import DisruptionBudget, Hold, tasks_in_transition
from controller.actions.context import Abandoned, ActionContext, Swarm
from controller.actions.ownership import ACTION_LABEL
from controller.actions.plugin import ActionPlugin, Rejected, TimedOut
from controller.actions.reconcile import lift_expired, may_have_expired, owned_services, resolve_interrupted
from controller.actions.registry import PLUGINS
from controller.actions.settings import ActionSettings
from controller.model import ActionRecord, Decision, Result, Submission, Timeline, Verdict
from sgcommon.engine import EngineError, NotFound
from sgcommon.engine.swarm import ServiceView
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.actions")


# Seconds a service is left alone after an operator's change (the service removed, or updated so that
# it no longer holds SwarmGuard's change) ended the action waiting on it (docs/actions.md).
OPERATOR_YIELD = 60.0

class Executor:
    def __init__(
        self,
        swarm: Swarm,
        settings: ActionSettings,
        *,
        on_record: Callable[[ActionRecord], None],
        node_load: Callable[[], Mapping[str, float]],
        plugins: Mapping[str, ActionPlugin] = PLUGINS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._swarm = swarm
        self._settings = settings
        self._on_record = on_record
        self._node_load = node_load
        self._plugins = plugins
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._started: deque[float] = deque()
        self._budget = DisruptionBudget(per_service=settings.max_moving, total=settings.max_moving_total, clock=clock)
        self._unsettled: dict[str, Hold] = {}  # timed-out actions whose change Swarm is still carrying out
        self._yield_until: dict[str, float] = {}  # services whose action an operator's change ended: left alone
        self._refused: dict[str, Verdict] = {}  # the verdict last logged for a service's decision not taken
        self._reconcile_pending = False
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="swarmguard-action")

    # ---- what the runtime calls --------------------------------------------------------------
    def submit(self, decision: Decision, timeline: Timeline) -> Submission:
        """Starts the action for `decision` in the background; answers at once what happened to it."""
        action_id = uuid.uuid4().hex[:12]
        problem = self._invalid(decision)
        if problem is not None:
            self._finish(self._rejected(decision, timeline, action_id, problem))
            return Submission(Verdict.REFUSED, problem)
        submission, hold = self._admit(decision)
        verdict = submission.verdict
        if not verdict.taken:
            # A rule that keeps firing meets the same wait at every evaluation round (an action still
            # running, the 60 s yield to an operator): logged when the service's verdict changes only.
            with self._lock:
                repeated = self._refused.get(decision.service) is verdict
                self._refused[decision.service] = verdict
            if not repeated:
                event(log, "action not started", level=logging.WARNING, verdict=verdict.value,
                      reason=submission.reason, service=decision.service, action=decision.action.name,
                      rule=decision.rule)
            return replace(submission, repeated=repeated)
        with self._lock:
            self._refused.pop(decision.service, None)
        if verdict is Verdict.DRY_RUN:
            what = decision.action.describe(decision)
            self._finish(ActionRecord(id=action_id, action=decision.action.name, service=decision.service,
                                      rule=decision.rule, result=Result.DRY_RUN, timeline=timeline,
                                      container_id=decision.container_id, node_from=decision.node,
                                      reason=f"{decision.reason}; would {what}; budget: {submission.reason}",
                                      dry_run=True))
            return submission
        assert hold is not None
        try:
            self._pool.submit(self._run, decision, timeline, action_id, hold)
        except RuntimeError:  # the pool is shut down: the controller is stopping
            self._release(decision.service, hold)
            return Submission(Verdict.REFUSED, "the executor is shutting down")
        return submission

    def busy_services(self) -> set[str]:
        with self._lock:
            return set(self._busy)

    def moving(self) -> int:
        """Tasks the disruption budget counts in transition now (for /healthz)."""
        with self._lock:
            return self._budget.moving()

    def lift_expired_exclusions(self) -> int:
        """Lifts owned node exclusions past their expiry (skips services with an action running).
        Also finishes a start-up reconcile that could not reach the engine."""
        if self._settings.dry_run:
            return 0
        if self._reconcile_pending:
            self.reconcile()
            return 0  # reconcile lifted what it could
        now = self._clock()
        return sum(self._each_owned("lifting an exclusion", lambda view: lift_expired(self._swarm, view, self._clock()),
                                    only=lambda listed: may_have_expired(listed, now)) or [])

    def release_settled(self) -> int:
        """Gives back the budget of timed-out actions whose change Swarm has finished since; returns how many."""
        with self._lock:
            pending = dict(self._unsettled)
        released = 0
        for service, hold in pending.items():
            try:
                moving = tasks_in_transition(self._swarm.list_tasks(service=service))
            except NotFound:  # the service was removed: nothing of it is in transition any more
                moving = 0
            except EngineError as exc:
                event(log, "cannot check a timed-out action's service; its budget stays held", level=logging.WARNING,
                      service=service, error=str(exc))
                continue
            if moving == 0:
                with self._lock:
                    if self._unsettled.get(service) is hold:
                        del self._unsettled[service]
                        self._budget.give_back(hold)
                        released += 1
                event(log, "timed-out action settled, budget given back", service=service)
        return released

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

    def _each_owned(self, what: str, work: Callable[[ServiceView], int], *,
                    only: Callable[[ServiceView], bool] = lambda listed: True) -> list[int] | None:
        """Runs `work` on a fresh read of each service with SwarmGuard labels (those whose listing
        passes `only`), holding its lock; None when the services cannot be listed."""
        try:
            names = [view.name for view in owned_services(self._swarm) if only(view)]
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

    # ---- the global limits ------------------------------------------------------------------
    def _invalid(self, decision: Decision) -> str | None:
        """Why this decision can never run (a programming or wiring error), or None."""
        plugin = self._plugins.get(decision.action.name)
        if plugin is not decision.action:
            return f"unknown action {decision.action.name!r}"
        missing = plugin.missing(decision.params)
        if missing:
            return f"the decision lacks the parameters {', '.join(missing)}"
        return None

    def _admit(self, decision: Decision) -> tuple[Submission, Hold | None]:
        now = self._clock()
        plugin = decision.action
        tasks = plugin.moving(decision)
        with self._lock:
            if decision.service in self._busy:
                return Submission(Verdict.BUSY, f"an action on {decision.service} is running"), None
            until = self._yield_until.get(decision.service)
            if until is not None and now < until:
                return Submission(Verdict.BUSY, f"an operator's change ended SwarmGuard's last action on "
                                                f"{decision.service}: left alone for {until - now:.0f} s more"), None
            over = self._budget.refusal(decision.service, tasks)
            if over is not None:
                return Submission(Verdict.OVER_BUDGET, over), None
            while self._started and self._started[0] <= now - 60.0:
                self._started.popleft()
            if len(self._started) >= self._settings.max_actions_per_minute:
                return Submission(Verdict.RATE_LIMITED,
                                  f"{self._settings.max_actions_per_minute} actions started in the last 60 s"), None
            self._started.append(now)
            if self._settings.dry_run:
                hold = self._budget.take(decision.service, tasks, until=now + plugin.timeout(self._settings))
                return Submission(Verdict.DRY_RUN, f"would start it: {self._budget.describe(decision.service)}"), hold
            self._busy.add(decision.service)
            return Submission(Verdict.ACCEPTED), self._budget.take(decision.service, tasks)

    def _claim(self, service: str) -> bool:
        with self._lock:
            if service in self._busy:
                return False
            self._busy.add(service)
            return True

    def _release(self, service: str, hold: Hold | None = None) -> None:
        with self._lock:
            self._busy.discard(service)
            if hold is not None:
                self._budget.give_back(hold)

    # ---- running an action ------------------------------------------------------------------
    def _run(self, decision: Decision, timeline: Timeline, action_id: str, hold: Hold) -> None:
        ctx = ActionContext(swarm=self._swarm, settings=self._settings, action_id=action_id, clock=self._clock,
                            node_load=self._node_load, sleep=self._sleep)
        timed_out = False
        try:
            try:
                record = decision.action.run(ctx, decision, timeline)
            except Rejected as exc:
                record = ctx.record(decision, timeline, Result.REJECTED, node_from=decision.node, error=str(exc))
            except TimedOut as exc:
                record = ctx.record(decision, timeline, Result.TIMEOUT, node_from=decision.node, error=str(exc))
            except Abandoned as exc:
                record = ctx.record(decision, timeline, Result.FAILED, node_from=decision.node, error=str(exc))
                # The operator's change wins: acting again at once (another rule on the same breach)
                # would undo what they just did. The service is left alone for OPERATOR_YIELD.
                with self._lock:
                    self._yield_until[decision.service] = self._clock() + OPERATOR_YIELD
                    self._refused.pop(decision.service, None)  # the yield is news: its first BUSY is logged
            except (EngineError, ValueError) as exc:
                record = ctx.record(decision, timeline, Result.FAILED, node_from=decision.node, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - an action must always end in a record
                log.exception("action crashed")
                record = ctx.record(decision, timeline, Result.FAILED, node_from=decision.node,
                                    error=f"internal error: {exc!r}")
            timed_out = record.result is Result.TIMEOUT and ctx.wrote
        finally:
            if ctx.wrote:
                self._clear_marker(decision.service)
            if timed_out:  # Swarm goes on with the change: its tasks stay in transition until it is done
                with self._lock:
                    self._unsettled[decision.service] = hold
                self._release(decision.service)
            else:
                self._release(decision.service, hold)
        self._finish(record)

    def _rejected(self, decision: Decision, timeline: Timeline, action_id: str, error: str) -> ActionRecord:
        return ActionRecord(id=action_id, action=decision.action.name, service=decision.service, rule=decision.rule,
                            result=Result.REJECTED, timeline=timeline, container_id=decision.container_id,
                            reason=decision.reason, error=error)

    def _clear_marker(self, service: str) -> None:
        try:
            view = self._swarm.get_service(service)
            if ACTION_LABEL in view.labels:
                self._swarm.update_placement(view.id, labels={ACTION_LABEL: None})
        except NotFound:
            pass  # the service was removed, and its marker with it
        except EngineError as exc:
            event(log, "in-flight marker not cleared; reconcile will resolve it", level=logging.WARNING,
                  service=service, error=str(exc))

    def _finish(self, record: ActionRecord) -> None:
        level = logging.INFO if record.result in (Result.SUCCESS, Result.DRY_RUN) else logging.WARNING
        event(log, "action finished", level=level, **record.as_dict())
        try:
            self._on_record(record)
        except Exception:  # noqa: BLE001 - a broken sink must not kill the action thread
            log.exception("on_record failed")
