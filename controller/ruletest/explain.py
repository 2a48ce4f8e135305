"""Why a rule did not fire where a test expected it: the engine's own view at that evaluation.

A failing rule test is only useful if it says why. This reads what the engine read and kept
(the snapshot it evaluated and its RuleState right after) and answers in the engine's terms: the
condition with every figure it used (`Condition.explain`, the same text a decision's reason
carries), the breaching run so far against `for`, a cooldown, the action's feasibility and
spacing, another decision on the service, a stale or missing container. It decides nothing: the
environment it builds mirrors controller/decide.py's (the latest sample, its window of history,
its node and the service's replicas; for a service, the latest sample of each of its containers).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from controller.decide import IDLE, RuleState
from controller.model import ContainerMetrics, Decision, ServiceInfo, Snapshot
from controller.rules import ContainerEnv, Rule, ServiceEnv

Clock = Callable[[float], str]  # a Unix time as the test's relative time ("12s")


def why_not(rule: Rule, *, snapshot: Snapshot, state: RuleState, now: float, service: str, container: str | None,
            decided: Sequence[Decision], clock: Clock) -> list[str]:
    """Lines that say why `rule` made no decision on `service` (and `container`) at `now`."""
    if not rule.enabled:
        return ["the rule is disabled (enabled: false)"]
    info = snapshot.services.get(service)
    if info is None:
        return [f"service {service} is not in the snapshot"]
    if not rule.covers(info):
        labels = ", ".join(f"{k}={v}" for k, v in rule.labels) or "none"
        return [f"the rule does not apply to {service} (services: {', '.join(rule.services)}; labels: {labels})"]
    found: tuple[ContainerEnv | ServiceEnv, str] | str
    if rule.scope == "container":
        found = _container_env(rule, snapshot, container, info)
    else:
        found = _service_env(snapshot, info)
    if isinstance(found, str):
        return [found]
    env, key = found
    lines = [f"condition {'true' if rule.condition.holds(env) else 'false'}: {rule.condition.text} "
             f"({rule.condition.explain(env)})"]
    lines.append(_run_text(rule, state, key, clock))
    until = state.cooldown_until.get((rule.name, service))
    if until is not None and until > now:
        lines.append(f"cooling down until {clock(until)} (cooldown {rule.cooldown:g}s)")
    reason = rule.action.feasible(info, rule.params)
    if reason is not None:
        lines.append(f"{rule.action.name} cannot apply: {reason}")
    for spacing in rule.action.not_after:
        last = state.fired_at(spacing.after, service)
        if last is not None and now < last + rule.params[spacing.param]:
            lines.append(f"held back: a {spacing.after} decision at {clock(last)} is less than "
                         f"{spacing.param} {rule.params[spacing.param]:g}s ago")
    for other in decided:
        if other.service == service and other.rule != rule.name:
            lines.append(f"{service} already got a decision at this evaluation: {other.rule} (one per service)")
    return lines


def _container_env(rule: Rule, snapshot: Snapshot, container: str | None,
                   info: ServiceInfo) -> tuple[ContainerEnv, str] | str:
    sample = snapshot.containers.get(container or "")
    if container is None or sample is None:
        return f"{container} has no sample in the controller's cache (none yet, or forgotten)"
    if sample.stale:
        return (f"{container} is stale (its newest sample is too old, or its node's exporter does not answer): "
                "never counted or acted on")
    window = rule.condition.window
    history: tuple[ContainerMetrics, ...] = (sample,)
    if window > 1:
        kept = tuple(s for s in tuple(snapshot.history.get(container, ()))[-window:] if s.ts < sample.ts)
        history = (kept + (sample,))[-window:]
    return ContainerEnv(sample, history, snapshot.nodes.get(sample.node), info.replicas), container


def _service_env(snapshot: Snapshot, info: ServiceInfo) -> tuple[ServiceEnv, str] | str:
    samples = [s for s in snapshot.containers.values() if s.service == info.name]
    stale = sorted(s.container_id for s in samples if s.stale)
    if stale:
        return f"waits: {', '.join(stale)} of {info.name} stale (a service rule waits while any container is)"
    if not samples:
        return f"no container of {info.name} has a sample"
    return ServiceEnv(samples, info.replicas), info.name


def _run_text(rule: Rule, state: RuleState, key: str, clock: Clock) -> str:
    count, start, _ = state.runs.get(rule.name, {}).get(key, IDLE)
    if start is None:
        return f"breaching run: none (for: {rule.hold_text()})"
    if rule.hold_seconds is not None:
        last = state.counted.get(rule.name, {}).get(key, start)
        return (f"breaching run: {count} samples since {clock(start)}, spanning {last - start:g}s "
                f"of {rule.hold_text()}")
    return f"breaching run: {count} of {rule.hold_samples} samples since {clock(start)}"
