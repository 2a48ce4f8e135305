"""Wires the controller together: inputs (alerts, scrapes, service list) -> cache -> rules -> executor.

The rule engine is pure and keeps its memory in one `RuleState`, so every evaluation (an alert
on a Flask thread, a scrape round or the service-rule job on scheduler threads) and every release of
a cooldown runs under the runtime's one lock. An evaluation is short (milliseconds); the actions it
decides run on the executor's own threads. Every background job, the rule files' hot reload
included, is a job of one scheduler.
Timeline stamps: T1 comes from the alert, T2 is when it (or the scrape round) arrived, T3 when the
decision was made; the executor fills T4-T6.

An alert's evaluation reads only its own container (`MetricsCache.container_snapshot`), so its cost
does not grow with the cluster. A full evaluation of a big cluster (30 000 containers: a few hundred
ms) is split into parts of about PART_SIZE containers, whole services each, evaluated one after the
other with the lock let go in between; an alert waiting for the lock goes before the next part, so it
waits for one part at most. The decisions are those of one evaluation over the whole snapshot, handed
to the executor in the same order at the end (docs/scale.md).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry

from controller.app import AppConfig
from controller.cache import MetricsCache
from controller.decide import RuleState, forget_gone
from controller.events import ControllerMetrics, EventLog
from controller.model import ContainerMetrics, Decision, Outcome, ServiceInfo, Snapshot, Submission, Timeline
from controller.rules import RuleSet
from controller.scrape import Scraper, StaticTargets, SwarmTargets
from controller.services import ServiceRefresher
from controller.settings import ControllerSettings
from sgcommon.alert import Alert, Prediction
from sgcommon.influx import open_writer, parse_target
from sgcommon.jsonlog import OnceLogger, event, get_logger
from sgcommon.version import register_build_info

if TYPE_CHECKING:
    from controller.actions.context import Swarm

log = get_logger("swarmguard.controller.runtime")


class Evaluate(Protocol):
    """The rule engine's entry point (controller.decide.evaluate)."""

    def __call__(self, rules: RuleSet, snapshot: Snapshot, now: float, state: RuleState, *,
                 container_id: str | None = None, scope: str | None = None,
                 forget: bool = True) -> list[Decision]: ...


class RuleSource(Protocol):
    """The rules in effect, and a look at their files (controller.reload.RuleWatcher)."""

    def current(self) -> RuleSet: ...
    def check_now(self) -> bool: ...


class ExecutorLike(Protocol):
    """What the runtime asks of controller.actions.executor.Executor."""

    def submit(self, decision: Decision, timeline: Timeline) -> Submission: ...
    def lift_expired_exclusions(self) -> int: ...
    def release_settled(self) -> int: ...
    def reconcile(self) -> bool | None: ...  # False: postponed, the engine was not reachable
    def busy_services(self) -> set[str]: ...
    def moving(self) -> int: ...
    def shutdown(self, wait: bool = True) -> None: ...


class Scheduler(Protocol):
    """The part of APScheduler's BackgroundScheduler the runtime uses."""

    def add_job(self, func: Callable[[], None], trigger: str, *, seconds: float, id: str, name: str) -> Any: ...
    def start(self) -> None: ...
    def shutdown(self, wait: bool = True) -> None: ...
    def get_jobs(self) -> list[Any]: ...


PART_SIZE = 500  # containers per part of a split evaluation: a few ms of the lock (docs/scale.md)
ALERTS_FIRST_MAX_WAIT = 0.05  # a part waits at most this long for alerts queued before it


@dataclass(frozen=True)
class Schedule:
    """How often each background job runs, in seconds."""

    scrape: float = 1.0
    services: float = 5.0
    service_rules: float = 15.0
    exclusions: float = 10.0
    rules: float = 0.5


def alert_sample(alert: Alert) -> ContainerMetrics:
    """An alert as a cache sample: its figures at the breach time T0."""
    m = alert.metrics
    return ContainerMetrics(node=alert.node, service=alert.service, container_id=alert.container_id,
                            task_id=alert.task_id, ts=alert.t0, cpu=m["cpu"], mem=m["mem"], mem_mb=m["mem_mb"],
                            net=m["net"], net_rx=m["net_rx"], net_tx=m["net_tx"])


class Runtime:
    """The running controller; `create_app` serves it, `start`/`stop` run its background jobs."""

    def __init__(
        self,
        *,
        cache: MetricsCache,
        rules: RuleSource,
        evaluate: Evaluate,
        state: RuleState,
        executor: ExecutorLike,
        metrics: ControllerMetrics,
        events: EventLog,
        scraper: Scraper | None = None,
        services: ServiceRefresher | None = None,
        closers: tuple[Callable[[], None], ...] = (),
        schedule: Schedule = Schedule(),
        clock: Callable[[], float] = time.time,
        part_size: int = PART_SIZE,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.events = events
        self._rules = rules
        self._evaluate = evaluate
        self._state = state
        self._executor = executor
        self._scraper = scraper
        self._services = services
        self._closers = closers
        self._schedule = schedule
        self._clock = clock
        self._part_size = part_size
        self._lock = threading.Lock()  # serialises every use of the rule engine's state
        self._queued = threading.Condition()  # guards _alerts_queued: alerts waiting for or holding _lock
        self._alerts_queued = 0
        self._scheduler: Scheduler | None = None
        self._started_at: float | None = None
        self._last_round: float | None = None
        self._reconciled = False
        self._once = OnceLogger(log)

    # --- the alert path (Flask threads) -------------------------------------------------------

    def handle_alert(self, alert: Alert, *, received: float) -> list[Outcome]:
        """Caches the alert's sample and evaluates that container's rules now; returns what was submitted."""
        self.metrics.alert_latency.observe(max(0.0, received - alert.t1))
        self.cache.add_container(alert_sample(alert))
        outcomes = self._decide(received, kind="alert", t1=alert.t1, container_id=alert.container_id,
                                predicted=alert.predicted)
        self.metrics.alerts.labels(outcome="action" if outcomes else "no_action").inc()
        return outcomes

    def refused_alert(self, outcome: str) -> None:
        """Counts an alert the HTTP side refused ("unauthorized", "invalid")."""
        self.metrics.alerts.labels(outcome=outcome).inc()

    def _decide(self, received: float, *, kind: str, t1: float | None = None, container_id: str | None = None,
                scope: str | None = None, predicted: Prediction | None = None) -> list[Outcome]:
        """Evaluates under the lock; `kind` (alert, cycle, service) labels the evaluation time metric;
        `predicted`: a predictive alert's figure and crossing time, logged with its decisions."""
        if container_id is not None:
            return self._decide_container(received, container_id, t1=t1, predicted=predicted)
        began = time.perf_counter()
        rules = self._rules.current()
        snapshot = self.cache.snapshot(received)
        if len(snapshot.containers) <= self._part_size:
            with self._lock:
                decisions = self._evaluate(rules, snapshot, received, self._state, scope=scope)
                decided = self._clock()
                self.metrics.evaluation.labels(kind=kind).observe(time.perf_counter() - began)
                return [self._submit(d, Timeline(t0=d.t0, t2=received, t3=decided)) for d in decisions]
        made: list[tuple[Decision, float]] = []
        for part in split_by_service(snapshot, self._part_size):
            self._after_queued_alerts()
            with self._lock:
                decisions = self._evaluate(rules, part, received, self._state, scope=scope, forget=False)
                decided = self._clock()
            made.extend((d, decided) for d in decisions)
        self._after_queued_alerts()
        with self._lock:
            if scope is None:
                forget_gone(self._state, snapshot, received)
            self.metrics.evaluation.labels(kind=kind).observe(time.perf_counter() - began)
            return [self._submit(d, Timeline(t0=d.t0, t2=received, t3=decided))
                    for d, decided in in_evaluation_order(made, rules, snapshot)]

    def _decide_container(self, received: float, container_id: str, *, t1: float | None,
                          predicted: Prediction | None = None) -> list[Outcome]:
        """The alert path: one container's rules, on a snapshot of that container only."""
        with self._queued:
            self._alerts_queued += 1
        try:
            with self._lock:
                began = time.perf_counter()
                snapshot = self.cache.container_snapshot(container_id, received)
                decisions = self._evaluate(self._rules.current(), snapshot, received, self._state,
                                           container_id=container_id)
                decided = self._clock()
                self.metrics.evaluation.labels(kind="alert").observe(time.perf_counter() - began)
                self.metrics.decision_latency.observe(max(0.0, decided - received))
                return [self._submit(d, Timeline(t0=d.t0, t1=t1, t2=received, t3=decided), predicted=predicted)
                        for d in decisions]
        finally:
            with self._queued:
                self._alerts_queued -= 1
                if not self._alerts_queued:
                    self._queued.notify_all()

    def _after_queued_alerts(self) -> None:
        """Lets the alerts already waiting for the lock go first (for at most ALERTS_FIRST_MAX_WAIT)."""
        with self._queued:
            self._queued.wait_for(lambda: not self._alerts_queued, timeout=ALERTS_FIRST_MAX_WAIT)

    def _submit(self, decision: Decision, timeline: Timeline, *, predicted: Prediction | None = None) -> Outcome:
        """Hands one decision to the executor; called under the lock."""
        submission = self._executor.submit(decision, timeline)
        self.metrics.decisions.labels(verdict=submission.verdict.value).inc()
        if not submission.verdict.taken:
            self._state.release(decision)  # nothing was done: the breach may fire again
        if submission.repeated:  # the same wait as this service's last decision: counted above, logged then
            return Outcome(decision, submission)
        event(log, "decision", rule=decision.rule, action=decision.action.name, service=decision.service,
              container_id=decision.container_id, node=decision.node, reason=decision.reason,
              submit=submission.verdict.value, submit_reason=submission.reason or None,
              t0=timeline.t0, t1=timeline.t1, t2=timeline.t2, t3=timeline.t3,
              **_prediction_fields(predicted))
        return Outcome(decision, submission)

    # --- background jobs ------------------------------------------------------------------------

    def scrape_and_evaluate(self) -> None:
        """One scrape round, then every rule over the fresh cache."""
        if self._scraper is not None:
            result = self._scraper.scrape_round()
            self.metrics.scrape_round.observe(result.seconds)
            self.metrics.exporters_up.set(sum(result.up.values()))
            self.metrics.exporters_known.set(len(result.up))
        now = self._clock()
        self._last_round = now
        self.cache.prune(now)
        self._decide(now, kind="cycle")

    def evaluate_service_rules(self) -> None:
        self._decide(self._clock(), kind="service", scope="service")

    def refresh_services(self) -> None:
        if self._services is not None:
            self._services.refresh()

    def check_rules(self) -> None:
        """Hot reload: takes changed rule files into effect (the watcher keeps the last good ones)."""
        self._rules.check_now()

    def lift_exclusions(self) -> None:
        if not self._reconciled:
            self._reconcile()
            return
        lifted = self._executor.lift_expired_exclusions()
        if lifted:
            event(log, "expired node exclusions lifted", count=lifted)
        self._executor.release_settled()

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, *, scheduler: bool = True) -> None:
        """Reconciles interrupted actions, loads the service list, starts the jobs (hot reload is one).

        Docker being unreachable at start is not fatal: reconciling is retried by the exclusions job
        before any exclusion is lifted, and the service list by its own job.
        """
        self._reconcile()
        self.refresh_services()
        if scheduler:
            self._scheduler = self._make_scheduler()
            self._scheduler.start()
        self._started_at = self._clock()
        event(log, "controller started", jobs=[j.id for j in self._scheduler.get_jobs()] if self._scheduler else [])

    def _reconcile(self) -> None:
        try:
            done = self._executor.reconcile()
        except Exception as exc:  # EngineError: Docker not reachable yet
            self._once.warn("reconcile", "cannot reconcile interrupted actions yet; will retry", error=str(exc))
            return
        if done is False:  # the executor could not list the services and logged why
            self._once.warn("reconcile", "cannot reconcile interrupted actions yet; will retry")
            return
        self._once.clear("reconcile", "interrupted actions reconciled")
        self._reconciled = True

    def _make_scheduler(self) -> Scheduler:
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler: Scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        jobs: Mapping[str, tuple[Callable[[], None], float]] = {
            "scrape": (self.scrape_and_evaluate, self._schedule.scrape),
            "services": (self.refresh_services, self._schedule.services),
            "service_rules": (self.evaluate_service_rules, self._schedule.service_rules),
            "exclusions": (self.lift_exclusions, self._schedule.exclusions),
            "rules": (self.check_rules, self._schedule.rules),
        }
        for name, (func, seconds) in jobs.items():
            scheduler.add_job(_guarded(name, func), "interval", seconds=seconds, id=name, name=name)
        return scheduler

    def stop(self) -> None:
        """Stops the jobs, lets running actions finish, then flushes and closes the writers."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self._executor.shutdown(wait=True)
        if self._scraper is not None:
            self._scraper.close()
        for close in self._closers:
            close()
        event(log, "controller stopped")

    def health(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "status": "ok",
            "started": self._started_at is not None,
            "reconciled": self._reconciled,
            "last_scrape_age": None if self._last_round is None else round(now - self._last_round, 3),
            "services_ok": None if self._services is None else self._services.ok,
            "busy_services": sorted(self._executor.busy_services()),
            "moving": self._executor.moving(),
            "cache": self.cache.stats(),
        }


def _prediction_fields(predicted: Prediction | None) -> dict[str, Any]:
    """A predictive alert's figure and crossing time for the decision log line (nothing without one)."""
    return {} if predicted is None else {"predicted_metric": predicted.metric, "predicted_crossing": predicted.at}


def split_by_service(snapshot: Snapshot, size: int) -> list[Snapshot]:
    """The snapshot as parts of about `size` containers, each holding whole services (every container
    of a service, and the service) and the whole history and node maps. A service's part is chosen by
    its name's hash, so one pass over the containers does it."""
    count = max(1, -(-len(snapshot.containers) // size))
    containers: list[dict[str, ContainerMetrics]] = [{} for _ in range(count)]
    for cid, sample in snapshot.containers.items():
        containers[hash(sample.service) % count][cid] = sample
    services: list[dict[str, ServiceInfo]] = [{} for _ in range(count)]
    for name, info in snapshot.services.items():
        services[hash(name) % count][name] = info
    return [Snapshot(containers=c, history=snapshot.history, services=s, nodes=snapshot.nodes)
            for c, s in zip(containers, services, strict=True) if c]


def in_evaluation_order(made: list[tuple[Decision, float]], rules: RuleSet,
                        snapshot: Snapshot) -> list[tuple[Decision, float]]:
    """Decisions of the parts of one evaluation in the order one call over `snapshot` makes them:
    rule by rule in the rule set's order, then by container (container rules) or service (service
    rules) in the snapshot's order. That order matters when the executor's global limits (rate,
    disruption budget) cannot take them all."""
    if len(made) < 2:
        return made
    rank = {rule.name: i for i, rule in enumerate(rules.rules)}
    containers = {cid: i for i, cid in enumerate(snapshot.containers)}
    services = {name: i for i, name in enumerate(snapshot.services)}

    def key(item: tuple[Decision, float]) -> tuple[int, int]:
        d = item[0]
        at = containers.get(d.container_id, -1) if d.container_id is not None else services.get(d.service, -1)
        return rank.get(d.rule, len(rank)), at

    return sorted(made, key=key)


def _guarded(name: str, func: Callable[[], None]) -> Callable[[], None]:
    """A job that logs its failure as one JSON line and runs again next time."""

    def run() -> None:
        try:
            func()
        except Exception as exc:
            log.exception("background job failed", extra={"fields": {"job": name, "error": str(exc)}})

    return run


def build(settings: ControllerSettings, *, alert_token: str | None, thresholds: Mapping[str, float],
          influx_token: str | None = None, swarm: Swarm | None = None) -> tuple[Runtime, AppConfig]:
    """The real controller from its settings: Docker, rule files with hot reload (or the rule set
    applied to the cluster), executor, InfluxDB.

    Raises controller.rules.RuleError when the rule files are broken at start (nothing to keep).
    """
    from controller.actions.executor import Executor
    from controller.actions.registry import param_defaults
    from controller.decide import evaluate
    from controller.reload import RuleWatcher
    from controller.ruleconfigs import RuleConfigs
    from sgcommon.engine import connect
    from sgcommon.engine.swarm import SwarmAdapter

    registry = CollectorRegistry()
    register_build_info(registry, "controller")
    metrics = ControllerMetrics(registry)
    closers: list[Callable[[], None]] = []
    sink = None
    if settings.influx_url:
        writer = open_writer(parse_target(settings.influx_url, org=settings.influx_org, bucket=settings.influx_bucket),
                             token=influx_token, precision="ms", name="recovery_events")
        sink = writer
        closers.append(writer.close)
    events = EventLog(metrics, keep=settings.events_keep, sink=sink)
    swarm = swarm or SwarmAdapter(lambda: connect(settings.docker_url))  # negotiates at its first call
    # The rule files, or the set applied with `rules apply` while there is one (docs/rules.md).
    configs = (RuleConfigs(swarm) if isinstance(swarm, SwarmAdapter) and settings.rules_configs_interval > 0
               else None)
    watcher = RuleWatcher(settings.rules, overrides=thresholds, registry=registry,
                          defaults=param_defaults(settings.actions), configs=configs,
                          configs_interval=settings.rules_configs_interval)
    cache = MetricsCache(window=settings.cache_window, max_samples=settings.cache_max_samples,
                         max_containers=settings.cache_max_containers, stale_after=settings.stale_after,
                         forget_after=settings.forget_after)
    executor = Executor(swarm, settings.actions, on_record=events.record, node_load=cache.node_load)
    source = (StaticTargets(settings.exporters, port=settings.exporter_port) if settings.exporters
              else SwarmTargets(swarm, settings.exporter_service, port=settings.exporter_port))
    scraper = Scraper(source, cache, timeout=settings.scrape_timeout, workers=settings.scrape_workers,
                      budget=min(settings.scrape_timeout, 0.8 * settings.scrape_interval),
                      observe=lambda url, seconds, ok: metrics.scrape_duration.observe(seconds))
    runtime = Runtime(cache=cache, rules=watcher, evaluate=evaluate, state=RuleState(), executor=executor,
                      metrics=metrics, events=events, scraper=scraper, services=ServiceRefresher(swarm, cache),
                      closers=tuple(closers),
                      schedule=Schedule(scrape=settings.scrape_interval, services=settings.services_interval,
                                        service_rules=settings.service_rules_interval,
                                        exclusions=settings.exclusions_interval, rules=settings.rules_interval))
    config = AppConfig(alert_token=alert_token, registry=registry, recent_events=events.recent,
                       events_max=settings.events_keep)
    return runtime, config
