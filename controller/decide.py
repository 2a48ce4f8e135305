"""The pure rule engine: `evaluate(rules, snapshot, now, state) -> [Decision]`.

It does no I/O and reads no clock: the snapshot and `now` come in, decisions go out, and
everything it must remember between calls (consecutive-breach runs, cooldowns) lives in
a RuleState the caller keeps. That makes every behaviour testable on a fake clock, and
lets the alert path (one container), the scrape round (everything) and the periodic
scale-down job (service scope) share one set of counters. Calls on one state must not overlap:
the runtime makes them under its one evaluation lock.

What an action may do to a service is its plugin's pure decision side (controller/actions/plugin.py):
`feasible` (bounds, global services), `not_after` (spacing from another action) and `plan` (the
details it adds, e.g. the target replica count). The engine imports no executor or Docker code.

Semantics (docs/rules.md has the operator's view):
- A rule counts a sample only if its timestamp is newer (by more than sgcommon.metricset.SAME_SAMPLE)
  than the last one it counted for that container (container scope) or service (service scope, the newest sample of its
  containers), so a sample seen through an alert and again through a scrape counts once.
- A breaching sample extends the run, a clear sample resets it (no firing on flapping).
  The rule fires when the run has `for` samples (or, for `for: 90s`, spans that long);
  Decision.t0 is the timestamp of the run's first sample.
- Firing starts the rule's cooldown for that service and restarts the run; samples seen
  during a cooldown are not counted. A decision the executor did not take (busy, rate limited,
  over budget: `RuleState.release`) gets its cooldown back and its run as it was, so the next
  fresh breaching sample fires again. An action with `not_after` spacing (scale_down: the rule's
  `after_scale_up` seconds after a scale_up of the same service) is held back meanwhile, keeping
  its run, so it fires on the first evaluation after the spacing if its condition still holds.
- Rules go in priority order and a service gets at most one decision per call; a rule
  whose decision is held back keeps its run and may fire on a later call.
- Stale containers are never counted or acted on, and a stale sample breaks the container's run
  (`for: N` means N samples in a row, not N samples around a gap); a service-scope rule waits while
  any of the service's containers is stale, and starts counting again once all report. A
  service-scope condition that reads no sample (only Swarm's figures: `replicas`, `task_skew`,
  `nodes_ready`) counts each read of the service list instead (ServiceInfo.observed) and does not
  wait for stale containers: a node that went down leaves its containers' samples stale for
  minutes, and those figures do not depend on them. Containers of services missing from the
  snapshot are ignored. A rule whose action is not feasible on the service (its plugin says why: a global
  service, scale_up at max_replicas, scale_down at min_replicas) is held back the same way.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter

from controller.model import ContainerMetrics, Decision, ServiceInfo, Snapshot
from controller.rules import ContainerEnv, Rule, RuleSet, ServiceEnv
from sgcommon.trend import Fit
from sgcommon.metricset import SAME_SAMPLE



_TS = attrgetter("ts")
_SKIP, _COOLING, _LIVE = 0, 1, 2  # what a container rule does with a service's samples this call


# A rule's run on one container or service: (count, start, fired), a plain tuple replaced as it changes.
# count: consecutive breaching samples; start: the timestamp of the run's first breaching sample (None
# exactly when count is 0); fired: (count, start) when it last fired, what `release` puts back. Only runs
# with something in them are kept (RuleState.runs); the timestamp of the last sample counted is kept
# for every container apart (RuleState.counted), a float in a map. At 1000 nodes there are 180 000 of
# those (containers x container rules) and almost no runs: as objects, the cycle collector walked all
# of them on every full pass (pauses of 100 ms that every thread waits for); floats it never tracks,
# and a new tuple per sample would sit in its young generation (docs/scale.md).
Run = tuple[int, float | None, tuple[int, float | None] | None]
IDLE: Run = (0, None, None)


def _reset(runs: dict[str, Run], key: str) -> None:
    """Ends the breaching run of runs[key] (which exists), keeping what it last fired with."""
    fired = runs[key][2]
    if fired is None:
        del runs[key]
    else:
        runs[key] = (0, None, fired)


@dataclass
class RuleState:
    """Everything the engine remembers between calls (see the module docstring on serialising them)."""

    runs: dict[str, dict[str, Run]] = field(default_factory=dict)  # rule -> container/service -> run (not IDLE)
    counted: dict[str, dict[str, float]] = field(default_factory=dict)  # rule -> container/service -> last ts counted
    fingerprints: dict[str, str] = field(default_factory=dict)  # rule -> fingerprint its runs belong to
    cooldown_until: dict[tuple[str, str], float] = field(default_factory=dict)  # (rule, service) -> until
    # (action, service) -> (time of its last decision, the one before it: what `release` restores)
    last_fired: dict[tuple[str, str], tuple[float, float | None]] = field(default_factory=dict)

    def release(self, decision: Decision) -> None:
        """Takes back what `decision` started, for a decision the executor did not take (its verdict is
        not `taken`, e.g. rate_limited): the rule may then fire again after `for` fresh samples."""
        self.cooldown_until.pop((decision.rule, decision.service), None)
        # The run goes on as if it had not fired: the next fresh breaching sample fires again. A
        # `for: 180s` rule refused for a moment (another action's claim on the service) would
        # otherwise wait another 180 s.
        runs = self.runs.get(decision.rule, {})
        key = decision.container_id or decision.service
        run = runs.get(key)
        if run is not None and run[2] is not None and run[1] is None:
            runs[key] = (*run[2], run[2])
        action = (decision.action.name, decision.service)
        fired = self.last_fired.pop(action, None)
        if fired is not None and fired[1] is not None:
            self.last_fired[action] = (fired[1], None)

    def fired_at(self, action: str, service: str) -> float | None:
        """When the last decision of `action` on `service` was made, if the engine remembers it."""
        fired = self.last_fired.get((action, service))
        return None if fired is None else fired[0]

    def in_cooldown(self, service: str, now: float) -> list[str]:
        """Names of the rules cooling down for `service` at `now` (for /events and tests)."""
        return sorted(rule for (rule, svc), until in self.cooldown_until.items() if svc == service and until > now)


def evaluate(
    rules: RuleSet,
    snapshot: Snapshot,
    now: float,
    state: RuleState,
    *,
    container_id: str | None = None,
    scope: str | None = None,
    forget: bool = True,
) -> list[Decision]:
    """The decisions `rules` make on `snapshot` at `now`, updating `state`.

    container_id: evaluate container-scope rules for that container only (alert path).
    scope: "container" or "service" to evaluate only rules of that scope.
    forget: a full evaluation (no container_id, no scope) ends by forgetting the runs of containers
    and services that are not in `snapshot`. False when `snapshot` holds only some services, each
    with all its containers: the runtime splits a big cycle into such parts so that an alert waits
    for one part, not for all of it; the decisions are those of one call over the whole snapshot,
    and `forget_gone(state, whole_snapshot, now)` ends the cycle.
    """
    if scope not in (None, "container", "service"):
        raise ValueError(f"scope must be None, 'container' or 'service', got {scope!r}")
    _sync(state, rules)
    longest = max((r.condition.window for r in rules.rules if r.enabled and r.scope == "container"), default=1)
    cycle = _Cycle(snapshot, now, state, longest_window=longest)
    for rule in rules.rules:
        if not rule.enabled or (scope is not None and rule.scope != scope):
            continue
        if rule.scope == "container":
            cycle.container_rule(rule, container_id)
        elif container_id is None:
            cycle.service_rule(rule)
    if container_id is None and scope is None and forget:
        _prune(state, snapshot, now)
    return cycle.decisions


def forget_gone(state: RuleState, snapshot: Snapshot, now: float) -> None:
    """The end of a full evaluation split into parts (see `evaluate`'s `forget`)."""
    _prune(state, snapshot, now)


def _sync(state: RuleState, rules: RuleSet) -> None:
    """Restarts the runs of rules whose meaning changed and forgets rules that are gone."""
    names = set()
    for rule in rules.rules:
        names.add(rule.name)
        if state.fingerprints.get(rule.name) != rule.fingerprint:
            state.fingerprints[rule.name] = rule.fingerprint
            state.runs[rule.name] = {}
            state.counted[rule.name] = {}
    for name in [n for n in state.fingerprints if n not in names]:
        del state.fingerprints[name]
        state.runs.pop(name, None)
        state.counted.pop(name, None)


def _prune(state: RuleState, snapshot: Snapshot, now: float) -> None:
    """Drops runs and action times of containers and services that left the snapshot, and ended cooldowns."""
    containers, services = snapshot.containers.keys(), snapshot.services.keys()
    for runs in state.runs.values():
        for name in runs.keys() - containers - services:
            del runs[name]
    for counted in state.counted.values():
        for name in counted.keys() - containers - services:  # set arithmetic: 30 000 keys a rule at 1000 nodes
            del counted[name]
    for ended in [k for k, until in state.cooldown_until.items() if until <= now]:
        del state.cooldown_until[ended]
    for left in [k for k in state.last_fired if k[1] not in snapshot.services]:
        del state.last_fired[left]


class _Cycle:
    """One call of evaluate: the per-call caches and the decisions made so far."""

    def __init__(self, snapshot: Snapshot, now: float, state: RuleState, *, longest_window: int = 1) -> None:
        self.snapshot = snapshot
        self.now = now
        self.state = state
        self.decisions: list[Decision] = []
        self.decided: set[str] = set()
        self._groups: tuple[dict[str, list[ContainerMetrics]], set[str]] | None = None
        self._histories: dict[str, tuple[ContainerMetrics, ...]] = {}  # container -> its longest history this call
        self._longest_window = longest_window  # the longest sample window of the container rules evaluated
        self._fits: dict[str, dict[tuple[str, float], Fit | None]] = {}  # container -> its trend fits this call

    # -- container scope ------------------------------------------------------------------

    def container_rule(self, rule: Rule, container_id: str | None) -> None:
        # The hot loop of a full cycle (every container x every container rule): per-service
        # answers are computed once per call and the common "no breach" path stays inline.
        runs = self.state.runs.setdefault(rule.name, {})
        counted = self.state.counted.setdefault(rule.name, {})
        services = self.snapshot.services
        nodes = self.snapshot.nodes
        condition = rule.condition
        guard = condition.guard  # the condition's sample-only leading parts: most samples stop there
        window = condition.window
        fits = self._fits
        modes: dict[str, int] = {}
        if container_id is None:
            samples: Iterable[ContainerMetrics] = self.snapshot.containers.values()
        else:
            one = self.snapshot.containers.get(container_id)
            samples = () if one is None else (one,)
        for sample in samples:
            if sample.stale:  # a gap in the data breaks a run: `for: N` means N samples in a row
                if sample.container_id in runs:
                    _reset(runs, sample.container_id)
                continue
            name = sample.service
            mode = modes.get(name)
            if mode is None:
                mode = modes[name] = self._mode(rule, services.get(name))
            if mode == _SKIP:
                continue
            cid, ts = sample.container_id, sample.ts
            last = counted.get(cid)
            if last is not None and ts <= last + SAME_SAMPLE:
                continue
            counted[cid] = ts
            if mode == _COOLING or (guard is not None and not guard(sample)):  # cooling, or false on the sample
                if cid in runs:
                    _reset(runs, cid)
                continue
            service = services[name]
            # Built only if the condition reads it (controller/rules/expr.py: a false guard first spares it),
            # and once per container, window and call; trend fits likewise, whichever rule reads them.
            history = (sample,) if window <= 1 else partial(self._history, sample, window)
            container_fits = fits.get(cid)
            if container_fits is None:
                container_fits = fits[cid] = {}
            env = ContainerEnv(sample, history, nodes.get(sample.node), service.replicas, container_fits)
            if not condition.holds(env):
                if cid in runs:
                    _reset(runs, cid)
                continue
            if self._breach(rule, runs, cid, ts, service, env, sample) and rule.cooldown > 0:
                modes[name] = _COOLING

    def _mode(self, rule: Rule, service: ServiceInfo | None) -> int:
        if service is None or not rule.covers(service):
            return _SKIP
        return _COOLING if self._cooling(rule, service.name) else _LIVE

    def _history(self, sample: ContainerMetrics, window: int) -> tuple[ContainerMetrics, ...]:
        """The container's last `window` samples ending with `sample`. Fetched once per container and
        call for the longest window any rule asks for (the cache builds each sample it hands out), and
        cut for shorter ones."""
        cid = sample.container_id
        longest = self._histories.get(cid)
        if longest is None:
            size = max(window, self._longest_window)
            kept = self.snapshot.history.get(cid, ())[-size:]
            cut = len(kept)
            while cut and kept[cut - 1].ts >= sample.ts:  # the sample itself (an alert's, or the newest scrape)
                cut -= 1
            longest = self._histories[cid] = (tuple(kept[:cut]) + (sample,))[-size:]
        return longest[-window:]

    # -- service scope --------------------------------------------------------------------

    def service_rule(self, rule: Rule) -> None:
        runs = self.state.runs.setdefault(rule.name, {})
        counted = self.state.counted.setdefault(rule.name, {})
        groups, has_stale = self._service_groups()
        for name, service in self.snapshot.services.items():
            if not rule.covers(service):
                continue
            samples = groups.get(name) or []
            if rule.condition.needs_samples:
                if name in has_stale and name in runs:  # a gap in the data breaks a run (as above)
                    _reset(runs, name)
                if not samples or name in has_stale:
                    continue
                ts = max(map(_TS, samples))
            elif service.observed is not None:
                ts = service.observed  # Swarm's figures only: each read of them is a sample
            else:
                continue
            last = counted.get(name)
            if last is not None and ts <= last + SAME_SAMPLE:
                continue
            counted[name] = ts
            env = ServiceEnv(samples, service.replicas, service.tasks_per_node)
            if self._cooling(rule, name) or not rule.condition.holds(env):
                if name in runs:
                    _reset(runs, name)
                continue
            self._breach(rule, runs, name, ts, service, env, None)

    def _service_groups(self) -> tuple[dict[str, list[ContainerMetrics]], set[str]]:
        if self._groups is None:
            groups: dict[str, list[ContainerMetrics]] = {}
            stale: set[str] = set()
            for sample in self.snapshot.containers.values():
                if sample.stale:
                    stale.add(sample.service)
                else:
                    groups.setdefault(sample.service, []).append(sample)
            self._groups = (groups, stale)
        return self._groups

    # -- the state machine ----------------------------------------------------------------

    def _breach(self, rule: Rule, runs: dict[str, Run], key: str, ts: float, service: ServiceInfo,
                env: ContainerEnv | ServiceEnv, sample: ContainerMetrics | None) -> bool:
        """Counts a breaching sample at `ts` into runs[key]; fires if the run is long enough. True if it fired."""
        count, start, fired = runs.get(key, IDLE)
        count += 1
        if start is None:
            start = ts
        runs[key] = (count, start, fired)
        if count < rule.hold_samples:
            return False
        if rule.hold_seconds is not None and ts - start < rule.hold_seconds:
            return False
        if service.name in self.decided or not self._may_fire(rule, service):
            return False
        self._fire(rule, service, env, sample, t0=start)
        runs[key] = (0, None, (count, start))  # a new run starts; `release` puts this one back
        return True

    def _may_fire(self, rule: Rule, service: ServiceInfo) -> bool:
        """The action's own checks: feasible on the service now, and spaced from the actions it must follow."""
        if rule.action.feasible(service, rule.params) is not None:
            return False
        for spacing in rule.action.not_after:
            last = self.state.fired_at(spacing.after, service.name)
            if last is not None and self.now < last + rule.params[spacing.param]:
                return False
        return True

    def _cooling(self, rule: Rule, service: str) -> bool:
        return self.state.cooldown_until.get((rule.name, service), 0.0) > self.now

    def _fire(self, rule: Rule, service: ServiceInfo, env: ContainerEnv | ServiceEnv,
              sample: ContainerMetrics | None, *, t0: float) -> None:
        params = {"cooldown": rule.cooldown, "priority": rule.priority, **rule.params,
                  **rule.action.plan(service, rule.params)}
        reason = f"{rule.condition.text} held for {rule.hold_text()} ({rule.condition.explain(env)})"
        self.decisions.append(Decision(
            rule=rule.name,
            action=rule.action,
            service=service.name,
            container_id=sample.container_id if sample else None,
            node=sample.node if sample else None,
            t0=t0,
            reason=reason,
            params=params,
        ))
        self.decided.add(service.name)
        self.state.cooldown_until[(rule.name, service.name)] = self.now + rule.cooldown
        key = (rule.action.name, service.name)
        self.state.last_fired[key] = (self.now, self.state.fired_at(*key))
