"""Replays a rule test's series through the controller's own cache and rule engine, on a fake clock.

Why a replay and not a model of the rules: a rule test must see what the running controller
would see. So each step does what the runtime does (controller/runtime.py) with the same parts:
- alert path: a sample of a container with `alerts: true` goes into the MetricsCache and that
  container's rules are evaluated at once (`evaluate(container_id=...)`), as an alert would;
- scrape round: every other sample of the step goes into the cache (the alerted ones again, which
  the cache and the engine count once), node figures too (a node's `stale` marks its exporter
  down since that time, its next value up again), then `prune(now)`, `snapshot(now)` and every
  rule (`evaluate(...)`, which also runs the service rules).
The clock is the sample time: step i happens at BASE + i x interval, and `now` of the scrape
round is the sample time (a scrape brings the sample the exporter just took).

Executor-side facts: every decision is taken (verdict `accepted`), so the engine's own state
carries the cooldowns and the spacing. With `apply_decisions: true`, a decision whose plan sets
`target_replicas` (scale_up, scale_down) changes the service's replicas from the next evaluation
on; no decision changes the series (a migrated container's replacement is another container of
the test, with `_` until it starts).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from dataclasses import dataclass, replace

from controller.cache import MetricsCache
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, Decision, NodeMetrics, ServiceInfo, Snapshot
from controller.ruletest.notation import Point, Series, Stale
from controller.ruletest.spec import NODE_KEYS, ContainerSpec, NodeSpec, RuleTest
from controller.settings import ControllerSettings
from sgcommon.metricset import CONTAINER_KEYS

BASE = 1_800_000_000.0  # the test's time 0s as a Unix time (a realistic size, so float rounding is the real one)


@dataclass(frozen=True)
class Fired:
    """One decision of the replay: at which step, through which path."""

    step: int
    via: str  # "alert" or "scrape"
    decision: Decision


@dataclass(frozen=True)
class Step:
    """What a watcher sees after each step's scrape round: the engine's input and state, and its decisions."""

    index: int
    now: float
    snapshot: Snapshot
    state: RuleState
    fired: tuple[Fired, ...]


Watch = Callable[[Step], None]


def cache_for(settings: ControllerSettings | None = None) -> MetricsCache:
    """A MetricsCache sized as the controller's (its default settings unless given)."""
    settings = settings or ControllerSettings()
    return MetricsCache(window=settings.cache_window, max_samples=settings.cache_max_samples,
                        max_containers=settings.cache_max_containers, stale_after=settings.stale_after,
                        forget_after=settings.forget_after)


def replay(test: RuleTest, *, watch: Watch | None = None, cache: MetricsCache | None = None) -> list[Fired]:
    """Every decision the rules of `test` make on its series, in order; `watch` sees each step."""
    cache = cache or cache_for()
    services = dict(test.services)
    cache.set_services(services)
    state = RuleState()
    containers = [(spec, _samples(spec, test.interval)) for spec in test.containers]
    alerted = [(spec, feed) for spec, feed in containers if spec.alerts]
    scraped = [feed for spec, feed in containers if not spec.alerts]
    nodes = [(spec.name, _node_points(spec, test.interval)) for spec in test.nodes]
    fired: list[Fired] = []
    for index in range(test.steps):
        now = BASE + index * test.interval
        step: list[Fired] = []
        batch: list[ContainerMetrics] = []
        for spec, feed in alerted:
            sample = next(feed, None)
            if sample is None:
                continue
            batch.append(sample)
            cache.add_container(sample)
            decisions = evaluate(test.rules, cache.snapshot(now), now, state, container_id=spec.id)
            step.extend(Fired(index, "alert", d) for d in decisions)
            if test.apply_decisions and _apply(decisions, services):
                cache.set_services(services)
        for feed in scraped:
            sample = next(feed, None)
            if sample is not None:
                batch.append(sample)
        for name, points in nodes:
            point = next(points, None)
            if isinstance(point, NodeMetrics):
                cache.add_nodes((point,))
                cache.set_node_down(name, False)
            elif isinstance(point, Stale):
                cache.set_node_down(name, True, since=now)
        cache.add_containers(batch)
        if _observe(services, now):
            cache.set_services(services)
        cache.prune(now)
        snapshot = cache.snapshot(now)
        decisions = evaluate(test.rules, snapshot, now, state)
        step.extend(Fired(index, "scrape", d) for d in decisions)
        if test.apply_decisions and _apply(decisions, services):
            cache.set_services(services)
        fired.extend(step)
        if watch is not None:
            watch(Step(index, now, snapshot, state, tuple(step)))
    return fired


def _observe(services: dict[str, ServiceInfo], now: float) -> bool:
    """Marks Swarm's figures of each service that has them (tasks_per_node) as read at `now`, as
    the controller's read of the service list does; True when there was any."""
    observed = {name: replace(info, observed=now) for name, info in services.items() if info.tasks_per_node is not None}
    services.update(observed)
    return bool(observed)


def _samples(spec: ContainerSpec, interval: float) -> Iterator[ContainerMetrics | None]:
    """The container's sample (or None) at each step, built as its series are walked."""
    for index, row in enumerate(_rows(spec.series, spec.length, CONTAINER_KEYS)):
        if not isinstance(row, list):  # the reader checked that every series has its gaps at the same places
            yield None
            continue
        cpu, mem, mem_mb, net, net_rx, net_tx = row
        yield ContainerMetrics(node=spec.node, service=spec.service, container_id=spec.id, task_id=f"task-{spec.id}",
                               ts=BASE + index * interval, cpu=cpu, mem=mem, mem_mb=mem_mb, net=net, net_rx=net_rx,
                               net_tx=net_tx)


def _node_points(spec: NodeSpec, interval: float) -> Iterator[NodeMetrics | Stale | None]:
    for index, row in enumerate(_rows(spec.series, spec.length, NODE_KEYS)):
        if isinstance(row, list):
            cpu, mem, net = row
            yield NodeMetrics(spec.name, BASE + index * interval, cpu=cpu, mem=mem, net=net)
        else:
            yield row


def _rows(series: Mapping[str, Series], length: int, keys: tuple[str, ...]) -> Iterator[list[float] | Stale | None]:
    """At each of `length` steps, the figures in the order of `keys`, or the gap (None, or the stale marker).

    A one-value series holds its value in every sample; a key without a series is 0.
    """
    fixed = [0.0] * len(keys)
    walked: list[Iterator[Point]] = []
    places: list[int] = []
    for key, one in series.items():
        value = one.constant
        if value is not None and length > 1:
            fixed[keys.index(key)] = value
        else:
            walked.append(iter(one))
            places.append(keys.index(key))
    if not walked:
        for _ in range(length):
            yield list(fixed)
        return
    for points in islice(zip(*walked, strict=True), length):  # spec.py makes them equally long
        row = fixed.copy()
        gap: Point = 0.0
        for place, point in zip(places, points, strict=True):
            if not isinstance(point, float):
                gap = point
                break
            row[place] = point
        yield row if isinstance(gap, float) else gap


def _apply(decisions: list[Decision], services: dict[str, ServiceInfo]) -> bool:
    """What the executor's scale actions would do to the service list; True if it changed."""
    changed = False
    for decision in decisions:
        target = decision.params.get("target_replicas")
        info = services.get(decision.service)
        if target is not None and info is not None:
            services[decision.service] = replace(info, replicas=int(target))
            changed = True
    return changed
