"""The results report of the end-to-end suite (docs/report.md).

Every script of the suite saves its runs as JSON under results/; this module reads them back,
validates them into small dataclasses, and makes one report: a Markdown table (median/min/max of
MTTR, downtime and failed requests per scenario, p50/p99 of the alert and decision latencies, the
proactive/reactive ratios and a pass/fail/not-run line per success criterion), the same as JSON, PNG charts
(labkit/report_charts.py) and `test_results` line protocol for InfluxDB or the lab's sink.

Input documents (one per file), see docs/report.md:
- the reactive baseline's own output (labkit/baseline.py: `mode` and `iterations`);
- `{"records": [...]}` or one record, each with a `kind`: `reactive`, `proactive` or `check`.
Everything here but `write_results` and `main` is pure, so the tests feed it synthetic runs.
`tests/scripts/report` is `main()`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from controller.events import mttr_seconds
from controller.actions.registry import PLUGINS
from controller.model import ActionRecord, Result, Timeline
from sgcommon.influx import InfluxWriter, open_writer, parse_target
from sgcommon.lineproto import FieldValue, line
from sgcommon.secretfile import SecretError, read_secret
from sgcommon.version import add_version_argument

REACTIVE_MODES = ("crash", "node-loss")
# 1: migrate on CPU/memory; 2: scale on traffic; 3: a slow leak with the threshold rule alone and with
# the predictive rules (labkit/scenario3.py); the fast leak of a user's service (labkit/fastleak.py)
SCENARIOS = ("scenario1", "scenario2", "scenario3-threshold", "scenario3-predictive", "fastleak")
LEAK_SCENARIOS = ("scenario3-threshold", "scenario3-predictive", "fastleak")
CHECKS = ("concurrent", "node_failure")
PRIMARY_ACTION = {"scenario1": "migrate", "scenario2": "scale_up", "scenario3-threshold": "migrate",
                  "scenario3-predictive": "migrate", "fastleak": "migrate"}
LABELS = {"reactive-crash": "Reactive: crash", "reactive-node-loss": "Reactive: node loss",
          "scenario1": "Scenario 1: migrate", "scenario2": "Scenario 2: scale up",
          "scenario3-threshold": "Scenario 3: slow leak, threshold rule",
          "scenario3-predictive": "Scenario 3: slow leak, predictive rules",
          "fastleak": "Fast leak (30 MiB/s): shipped rules"}
LEAD_SHARE_TARGET = 0.8  # scenario 3: lead time >= 0 in at least 4 of 5 predictive runs
MEASUREMENT = "test_results"
MTTR_TARGET_S = 10.0  # the target median MTTR of a proactive action
MTTR_RATIO_TARGET = 0.5  # ... and at least 50% below the reactive baseline's
DOWNTIME_TARGET_S = 3.0  # zero or < 2-3 s downtime in at least 90% of the runs
LATENCY_TARGET_S = 1.0  # alert and decision latency p99
LOAD_SPLIT_TOLERANCE = 0.25  # scenario 2: each replica's CPU within this share of the replicas' mean


class RecordError(ValueError):
    """A result document does not have the expected shape; the message names the place."""


# ---------------------------------------------------------------- validation helpers

def _number(doc: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> float | None:
    value = doc.get(key)
    if value is None:
        if optional:
            return None
        raise RecordError(f"{where}: {key} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{where}: {key}: expected a number, got {value!r}")
    if value < 0:
        raise RecordError(f"{where}: {key}: expected >= 0, got {value!r}")
    return float(value)


def _count(doc: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> int | None:
    value = doc.get(key)
    if value is None:
        if optional:
            return None
        raise RecordError(f"{where}: {key} is missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{where}: {key}: expected a whole number >= 0, got {value!r}")
    return value


def _text(doc: Mapping[str, Any], key: str, where: str, *, choices: Sequence[str] = (),
          optional: bool = False) -> str | None:
    value = doc.get(key)
    if value is None:
        if optional:
            return None
        raise RecordError(f"{where}: {key} is missing")
    if not isinstance(value, str):
        raise RecordError(f"{where}: {key}: expected text, got {value!r}")
    if choices and value not in choices:
        raise RecordError(f"{where}: {key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise RecordError(f"{where}: {key}: expected a list, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------- input records

@dataclasses.dataclass(frozen=True)
class ReactiveRun:
    """One break of the reactive baseline (labkit/baseline.py's iteration); seconds after the break."""

    mode: str  # crash | node-loss
    first_ok_s: float | None  # MTTR: break -> first successful probe request after the outage
    downtime_s: float
    failed_requests: int
    requests: int = 0
    node: str = ""
    new_node: str = ""
    broke_at: float | None = None  # Unix seconds
    task_healthy_s: float | None = None

    @property
    def scenario(self) -> str:
        return f"reactive-{self.mode}"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "reactive run") -> ReactiveRun:
        doc = _mapping(doc, where)
        return cls(
            mode=_text(doc, "mode", where, choices=REACTIVE_MODES) or "",
            first_ok_s=_number(doc, "first_ok_s", where, optional=True),
            downtime_s=_number(doc, "downtime_s", where) or 0.0,
            failed_requests=_count(doc, "failed_requests", where) or 0,
            requests=_count(doc, "requests", where, optional=True) or 0,
            node=_text(doc, "node", where, optional=True) or "",
            new_node=_text(doc, "new_node", where, optional=True) or "",
            broke_at=_number(doc, "broke_at", where, optional=True),
            task_healthy_s=_number(doc, "task_healthy_s", where, optional=True),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "reactive", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class ProbeSummary:
    """The availability probe's summary over one run (labkit/probe.py summarize)."""

    requests: int
    failures: int
    longest_gap: float  # seconds between two successful requests
    total_downtime: float  # seconds

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "probe") -> ProbeSummary:
        doc = _mapping(doc, where)
        summary = cls(requests=_count(doc, "requests", where) or 0, failures=_count(doc, "failures", where) or 0,
                      longest_gap=_number(doc, "longest_gap", where) or 0.0,
                      total_downtime=_number(doc, "total_downtime", where) or 0.0)
        if summary.failures > summary.requests:
            raise RecordError(f"{where}: failures ({summary.failures}) > requests ({summary.requests})")
        return summary


@dataclasses.dataclass(frozen=True)
class ScaleStep:
    """Scenario 2: the replicas after one scale step and each replica's CPU percent then."""

    action: str  # scale_up | scale_down
    replicas: int
    cpu_per_replica: tuple[float, ...]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "step") -> ScaleStep:
        doc = _mapping(doc, where)
        cpus = _list(doc, "cpu_per_replica", where)
        for i, cpu in enumerate(cpus):
            if isinstance(cpu, bool) or not isinstance(cpu, (int, float)) or not math.isfinite(cpu) or cpu < 0:
                raise RecordError(f"{where}: cpu_per_replica[{i}]: expected a number >= 0, got {cpu!r}")
        return cls(action=_text(doc, "action", where, choices=("scale_up", "scale_down")) or "",
                   replicas=_count(doc, "replicas", where) or 0, cpu_per_replica=tuple(float(c) for c in cpus))

    @property
    def mean_cpu(self) -> float | None:
        return statistics.fmean(self.cpu_per_replica) if self.cpu_per_replica else None

    @property
    def max_deviation(self) -> float | None:
        """Largest distance of a replica's CPU from the mean: small when Swarm splits the load."""
        mean = self.mean_cpu
        return None if mean is None else max(abs(c - mean) for c in self.cpu_per_replica)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "replicas": self.replicas, "cpu_per_replica": list(self.cpu_per_replica)}


def action_from_dict(doc: Mapping[str, Any], where: str = "action") -> ActionRecord:
    """An ActionRecord from its `as_dict()` form (the controller's /events and its JSON log line)."""
    doc = _mapping(doc, where)
    timeline = Timeline(**{f"t{i}": _number(doc, f"t{i}", where, optional=True) for i in range(7)})
    return ActionRecord(
        id=_text(doc, "id", where) or "", action=_text(doc, "action", where, choices=tuple(PLUGINS)) or "",
        service=_text(doc, "service", where) or "", rule=_text(doc, "rule", where, optional=True) or "",
        result=Result(_text(doc, "result", where, choices=tuple(Result))), timeline=timeline,
        node_from=_text(doc, "node_from", where, optional=True), node_to=_text(doc, "node_to", where, optional=True),
        container_id=_text(doc, "container_id", where, optional=True),
        replicas_before=_count(doc, "replicas_before", where, optional=True),
        replicas_after=_count(doc, "replicas_after", where, optional=True),
        reason=_text(doc, "reason", where, optional=True) or "", error=_text(doc, "error", where, optional=True),
        dry_run=bool(doc.get("dry_run", False)),
    )


def _signed(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    """An optional finite number of either sign (a lead time)."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{where}: {key}: expected a number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class LeakTimeline:
    """A leak's timeline (labkit/leak.py): Unix seconds, the crossing observed or extrapolated."""

    metric: str  # mem | cpu
    level: float  # the threshold (or the limit, 100) T_cross is taken at
    started: float  # the climb's start
    t_cross: float | None
    t_cross_observed: bool
    predicted_crossing: float | None  # where the rule's line reached the level when it decided
    t0: float | None
    t3: float | None
    t5: float | None
    t6: float | None
    lead_time: float | None  # t_cross - t5
    peak: float | None
    limit_reached: bool
    oom: bool
    oom_at: float | None

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "leak") -> LeakTimeline:
        doc = _mapping(doc, where)
        flags = {}
        for key in ("t_cross_observed", "limit_reached", "oom"):
            if not isinstance(doc.get(key, False), bool):
                raise RecordError(f"{where}: {key}: expected true or false, got {doc.get(key)!r}")
            flags[key] = bool(doc.get(key, False))
        return cls(metric=_text(doc, "metric", where, choices=("mem", "cpu")) or "",
                   level=_number(doc, "level", where) or 0.0, started=_number(doc, "started", where) or 0.0,
                   t_cross=_number(doc, "t_cross", where, optional=True),
                   predicted_crossing=_number(doc, "predicted_crossing", where, optional=True),
                   t0=_number(doc, "t0", where, optional=True), t3=_number(doc, "t3", where, optional=True),
                   t5=_number(doc, "t5", where, optional=True), t6=_number(doc, "t6", where, optional=True),
                   lead_time=_signed(doc, "lead_time", where), peak=_number(doc, "peak", where, optional=True),
                   oom_at=_number(doc, "oom_at", where, optional=True), **flags)

    def after_start(self, value: float | None) -> float | None:
        return None if value is None else value - self.started


@dataclasses.dataclass(frozen=True)
class ProactiveRun:
    """One run of scenario 1 or 2 with the controller running: its actions and what the probe saw."""

    scenario: str  # scenario1 | scenario2
    actions: tuple[ActionRecord, ...]
    probe: ProbeSummary
    node_before: str | None = None
    node_after: str | None = None
    replicas_before: int | None = None
    replicas_after: int | None = None  # after the whole run (scenario 2: after the load stopped)
    steps: tuple[ScaleStep, ...] = ()
    leak: LeakTimeline | None = None  # scenario 3 and the fast leak

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "proactive run") -> ProactiveRun:
        doc = _mapping(doc, where)
        actions = tuple(action_from_dict(a, f"{where}: actions[{i}]") for i, a in enumerate(_list(doc, "actions", where)))
        steps = tuple(ScaleStep.from_dict(s, f"{where}: steps[{i}]") for i, s in enumerate(_list(doc, "steps", where)))
        if "probe" not in doc:
            raise RecordError(f"{where}: probe is missing")
        return cls(
            scenario=_text(doc, "scenario", where, choices=SCENARIOS) or "", actions=actions,
            probe=ProbeSummary.from_dict(doc["probe"], f"{where}: probe"),
            node_before=_text(doc, "node_before", where, optional=True),
            node_after=_text(doc, "node_after", where, optional=True),
            replicas_before=_count(doc, "replicas_before", where, optional=True),
            replicas_after=_count(doc, "replicas_after", where, optional=True), steps=steps,
            leak=LeakTimeline.from_dict(doc["leak"], f"{where}: leak") if doc.get("leak") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        doc = {"kind": "proactive", "scenario": self.scenario, "actions": [a.as_dict() for a in self.actions],
               "probe": dataclasses.asdict(self.probe), "node_before": self.node_before, "node_after": self.node_after,
               "replicas_before": self.replicas_before, "replicas_after": self.replicas_after,
               "steps": [s.to_dict() for s in self.steps]}
        if self.leak is not None:
            doc["leak"] = dataclasses.asdict(self.leak)
        return doc

    @property
    def primary(self) -> ActionRecord | None:
        """The action the scenario is about: its first migrate (1) or scale_up (2)."""
        return next((a for a in self.actions if a.action == PRIMARY_ACTION[self.scenario]), None)

    @property
    def at(self) -> float | None:
        primary = self.primary
        return primary.timeline.t0 if primary else None


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """The concurrent or the node-failure test: passed or not, and why."""

    test: str  # concurrent | node_failure
    passed: bool
    details: str = ""

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "check") -> CheckOutcome:
        doc = _mapping(doc, where)
        passed = doc.get("passed")
        if not isinstance(passed, bool):
            raise RecordError(f"{where}: passed: expected true or false, got {passed!r}")
        return cls(test=_text(doc, "test", where, choices=CHECKS) or "", passed=passed,
                   details=_text(doc, "details", where, optional=True) or "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "check", **dataclasses.asdict(self)}


Run = ReactiveRun | ProactiveRun | CheckOutcome
_KINDS: dict[str, Callable[[Mapping[str, Any], str], Run]] = {
    "reactive": ReactiveRun.from_dict, "proactive": ProactiveRun.from_dict, "check": CheckOutcome.from_dict,
}


def record_from_dict(doc: Any, where: str) -> Run:
    doc = _mapping(doc, where)
    kind = _text(doc, "kind", where, choices=tuple(_KINDS)) or ""
    return _KINDS[kind](doc, where)


def load_document(doc: Any, where: str = "document") -> list[Run]:
    """The runs of one saved document: baseline.py's output, `{"records": [...]}` or one record."""
    doc = _mapping(doc, where)
    if "iterations" in doc and "mode" in doc:
        return [ReactiveRun.from_dict(it, f"{where}: iterations[{i}]") for i, it in enumerate(_list(doc, "iterations", where))]
    if "records" in doc:
        return [record_from_dict(r, f"{where}: records[{i}]") for i, r in enumerate(_list(doc, "records", where))]
    if "kind" in doc:
        return [record_from_dict(doc, where)]
    raise RecordError(f"{where}: not a result document (expected baseline iterations, records or a kind)")


def load_files(paths: Iterable[Path]) -> list[Run]:
    """Every run of every file; all the problems reported at once, nothing half-loaded."""
    runs: list[Run] = []
    errors: list[str] = []
    for path in paths:
        try:
            runs.extend(load_document(json.loads(path.read_text()), str(path)))
        except (OSError, json.JSONDecodeError, RecordError) as exc:
            errors.append(f"{path}: {exc}" if not isinstance(exc, RecordError) else str(exc))
    if errors:
        raise RecordError("\n".join(errors))
    return runs


# ---------------------------------------------------------------- statistics

@dataclasses.dataclass(frozen=True)
class Spread:
    n: int
    median: float | None
    min: float | None
    max: float | None


@dataclasses.dataclass(frozen=True)
class Percentiles:
    n: int
    p50: float | None
    p99: float | None


def spread(values: Iterable[float | None]) -> Spread:
    seen = [float(v) for v in values if v is not None]
    if not seen:
        return Spread(0, None, None, None)
    return Spread(len(seen), statistics.median(seen), min(seen), max(seen))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default): with a few samples the
    p99 lies just under the largest one rather than being it or beyond it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def percentiles(values: Iterable[float | None]) -> Percentiles:
    seen = [float(v) for v in values if v is not None]
    if not seen:
        return Percentiles(0, None, None)
    return Percentiles(len(seen), percentile(seen, 50), percentile(seen, 99))


def ratio(proactive: float | None, reactive: float | None) -> float | None:
    """proactive / reactive; None when either is unknown or the reactive figure is 0."""
    if proactive is None or reactive is None or reactive == 0:
        return None
    return proactive / reactive


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


# ---------------------------------------------------------------- the report

@dataclasses.dataclass(frozen=True)
class ScenarioSummary:
    scenario: str
    kind: Literal["reactive", "proactive"]
    runs: int
    mttr: Spread  # reactive: break -> first success; proactive: the controller's mttr_seconds
    mttr_t5: Spread  # T0 -> T5
    mttr_t6: Spread  # T0 -> T6 (migrate)
    downtime: Spread
    failed_requests: Spread
    alert_latency: Percentiles  # T2 - T1
    decision_latency: Percentiles  # T3 - T2

    @property
    def label(self) -> str:
        return LABELS.get(self.scenario, self.scenario)


@dataclasses.dataclass(frozen=True)
class Ratio:
    proactive: str
    reactive: str
    mttr: float | None
    downtime: float | None


@dataclasses.dataclass(frozen=True)
class Criterion:
    name: str
    status: Literal["pass", "fail", "no data", "not run"]  # not run: its test was left out on purpose (--short)
    detail: str


@dataclasses.dataclass(frozen=True)
class Report:
    scenarios: tuple[ScenarioSummary, ...]
    ratios: tuple[Ratio, ...]
    alert_latency: Percentiles  # T2 - T1 over every proactive action
    decision_latency: Percentiles  # T3 - T2 over every proactive action
    criteria: tuple[Criterion, ...]  # the success criteria: they decide `passed`
    targets: tuple[Criterion, ...]  # the target figures: shown, not deciding
    runs: tuple[Run, ...]

    @property
    def passed(self) -> bool:
        """Every criterion that ran passed (one not run does not fail; one without data does)."""
        return all(c.status in ("pass", "not run") for c in self.criteria) and any(c.status == "pass" for c in self.criteria)

    @property
    def not_run(self) -> int:
        return sum(c.status == "not run" for c in self.criteria)

    @property
    def headline(self) -> str:
        if not self.passed:
            return "NOT all pass"
        return f"all that ran pass ({self.not_run} not run)" if self.not_run else "all pass"


def summarize_reactive(mode: str, runs: Sequence[ReactiveRun]) -> ScenarioSummary:
    none = spread(())
    return ScenarioSummary(
        scenario=f"reactive-{mode}", kind="reactive", runs=len(runs), mttr=spread(r.first_ok_s for r in runs),
        mttr_t5=none, mttr_t6=none, downtime=spread(r.downtime_s for r in runs),
        failed_requests=spread(r.failed_requests for r in runs), alert_latency=percentiles(()),
        decision_latency=percentiles(()),
    )


def summarize_proactive(scenario: str, runs: Sequence[ProactiveRun]) -> ScenarioSummary:
    primaries = [r.primary for r in runs]
    timelines = [p.timeline for p in primaries if p is not None]
    all_actions = [a.timeline for r in runs for a in r.actions]
    return ScenarioSummary(
        scenario=scenario, kind="proactive", runs=len(runs),
        mttr=spread(mttr_seconds(p) if p else None for p in primaries),
        mttr_t5=spread(_span(t.t0, t.t5) for t in timelines), mttr_t6=spread(_span(t.t0, t.t6) for t in timelines),
        downtime=spread(r.probe.total_downtime for r in runs), failed_requests=spread(r.probe.failures for r in runs),
        alert_latency=percentiles(_span(t.t1, t.t2) for t in all_actions),
        decision_latency=percentiles(_span(t.t2, t.t3) for t in all_actions),
    )


def _every(runs: Sequence[Any], ok: Callable[[Any], bool], what: str) -> Criterion:
    """`what` holds in every run: pass; else the runs (1-based) where it does not."""
    if not runs:
        return Criterion(what, "no data", "no runs")
    bad = [str(i) for i, run in enumerate(runs, 1) if not ok(run)]
    if bad:
        return Criterion(what, "fail", f"not in run {', '.join(bad)} of {len(runs)}")
    return Criterion(what, "pass", f"{len(runs)} of {len(runs)} runs")


def _migrated_healthy(run: ProactiveRun) -> bool:
    action = run.primary
    if action is None or action.result != "success" or action.timeline.t5 is None:
        return False
    before, after = run.node_before or action.node_from, run.node_after or action.node_to
    return bool(before and after and before != after)


def _scaled_up(run: ProactiveRun) -> bool:
    return any(a.action == "scale_up" and a.result == "success" and a.timeline.t5 is not None for a in run.actions)


def _scaled_down_to_one(run: ProactiveRun) -> bool:
    return run.replicas_after == 1 and any(a.action == "scale_down" and a.result == "success" for a in run.actions)


def _limit(name: str, value: float | None, limit: float, *, unit: str = " s", inclusive: bool = False) -> Criterion:
    """Pass when `value` is under `limit` (or at it with `inclusive`); no data without a value."""
    if value is None:
        return Criterion(name, "no data", "not measured")
    ok = value <= limit if inclusive else value < limit
    return Criterion(name, "pass" if ok else "fail", f"{value:.3f}{unit} (limit {limit:g}{unit})")


def _check(test: str, outcomes: Sequence[CheckOutcome], name: str, *, not_run: Sequence[str] = ()) -> Criterion:
    mine = [o for o in outcomes if o.test == test]
    if not mine and test in not_run:
        return Criterion(name, "not run", "left out of this run (the short suite)")
    if not mine:
        return Criterion(name, "no data", "no result")
    failed = [o for o in mine if not o.passed]
    shown = failed[0] if failed else mine[-1]
    status: Literal["pass", "fail"] = "fail" if failed else "pass"
    return Criterion(name, status, f"{len(mine) - len(failed)} of {len(mine)} passed" + (f": {shown.details}" if shown.details else ""))


def _proactive(runs: Sequence[Run], scenario: str) -> list[ProactiveRun]:
    return [r for r in runs if isinstance(r, ProactiveRun) and r.scenario == scenario]


def criteria(runs: Sequence[Run], ratios: Sequence[Ratio], *, alert: Percentiles, decision: Percentiles,
             not_run: Sequence[str] = ()) -> list[Criterion]:
    """One line per success criterion: these decide `passed`. A check in `not_run` without a result
    is shown as not run (and does not fail); any other criterion without data fails."""
    s1, s2 = _proactive(runs, "scenario1"), _proactive(runs, "scenario2")
    reactive = [r for r in runs if isinstance(r, ReactiveRun)]
    checks = [r for r in runs if isinstance(r, CheckOutcome)]
    measured = [r for r in ratios if r.mttr is not None and r.downtime is not None]
    baseline = "Reactive baseline measured in the same run, with the proactive/reactive ratios"
    latencies = "Alert latency T2-T1 and decision latency T3-T2 measured (p50, p99)"
    return [
        _every(s1, lambda r: r.probe.failures == 0, "Scenario 1: 0 failed probe requests in every run"),
        _every(s1, _migrated_healthy, "Scenario 1: the replacement healthy on another node in every run"),
        _every(s1, lambda r: r.probe.total_downtime == 0, "Scenario 1: downtime 0 in every run"),
        _every(s2, lambda r: r.probe.failures == 0, "Scenario 2: 0 failed requests in every run"),
        _every(s2, _scaled_up, "Scenario 2: scaled up (new replica healthy) in every run"),
        _every(s2, _scaled_down_to_one, "Scenario 2: scaled down back to 1 after the load stopped in every run"),
        Criterion(baseline, "pass", f"{len(reactive)} reactive runs, {len(measured)} ratios") if reactive and measured
        else Criterion(baseline, "no data", f"{len(reactive)} reactive runs, {len(measured)} ratios"),
        Criterion(latencies, "pass", f"alert {alert.n}, decision {decision.n} samples") if alert.n and decision.n
        else Criterion(latencies, "no data", f"alert {alert.n}, decision {decision.n} samples"),
        _check("concurrent", checks, "Concurrent test: three services stressed at once, two migrated and one "
               "scaled up", not_run=not_run),
        _check("node_failure", checks, "Node-failure test: a worker's engine stopped, the controller sees its "
               "exporter gone and keeps answering, Swarm reschedules web-stress", not_run=not_run),
    ] + leak_criteria(runs)


def _lead_ok(run: ProactiveRun) -> bool:
    return run.leak is not None and run.leak.lead_time is not None and run.leak.lead_time >= 0


def leak_criteria(runs: Sequence[Run]) -> list[Criterion]:
    """Scenario 3 and the fast leak, judged only when they ran (older inputs have neither)."""
    found: list[Criterion] = []
    predictive = _proactive(runs, "scenario3-predictive")
    if predictive:
        good = sum(_lead_ok(r) for r in predictive)
        name = (f"Scenario 3, predictive rules: the replacement serves before the threshold is crossed "
                f"(lead time >= 0) in at least {LEAD_SHARE_TARGET:.0%} of the runs")
        found.append(Criterion(name, "pass" if good >= LEAD_SHARE_TARGET * len(predictive) else "fail",
                               f"{good} of {len(predictive)} runs"))
        found.append(_every(predictive, lambda r: r.probe.failures == 0,
                            "Scenario 3, predictive rules: 0 failed probe requests in every run"))
    fast = _proactive(runs, "fastleak")
    if fast:
        found.append(_every(fast, lambda r: r.probe.failures == 0 and r.leak is not None and not r.leak.oom
                            and r.primary is not None and r.primary.result == "success",
                            "Fast leak: moved with 0 failed requests and no OOM kill in every run"))
    return found


def _even_split(step: ScaleStep) -> bool:
    mean, deviation = step.mean_cpu, step.max_deviation
    return not mean or deviation is None or deviation <= LOAD_SPLIT_TOLERANCE * mean


def targets(runs: Sequence[Run], scenarios: Mapping[str, ScenarioSummary], ratios: Sequence[Ratio], *,
            alert: Percentiles, decision: Percentiles) -> list[Criterion]:
    """The target figures: shown beside the criteria, they do not decide `passed`."""
    found = [_limit(f"{s.label}: median MTTR < {MTTR_TARGET_S:g} s", s.mttr.median, MTTR_TARGET_S)
             for s in scenarios.values() if s.kind == "proactive"]
    found += [_limit(f"{LABELS[r.proactive]}: MTTR at most half the reactive crash baseline's", r.mttr,
                     MTTR_RATIO_TARGET, unit="", inclusive=True) for r in ratios if r.reactive == "reactive-crash"]
    proactive = _proactive(runs, "scenario1") + _proactive(runs, "scenario2")
    if proactive:
        share = sum(r.probe.total_downtime < DOWNTIME_TARGET_S for r in proactive) / len(proactive)
        found.append(Criterion(f"Downtime < {DOWNTIME_TARGET_S:g} s in at least 90% of proactive runs",
                               "pass" if share >= 0.9 else "fail", f"{share:.0%} of {len(proactive)} runs"))
    found.append(_limit(f"Alert latency T2-T1 p99 < {LATENCY_TARGET_S:g} s", alert.p99, LATENCY_TARGET_S))
    found.append(_limit(f"Decision latency T3-T2 p99 < {LATENCY_TARGET_S:g} s", decision.p99, LATENCY_TARGET_S))
    ups = [step for run in _proactive(runs, "scenario2") for step in run.steps if step.action == "scale_up"]
    name = f"Scenario 2: per-replica CPU within {LOAD_SPLIT_TOLERANCE:.0%} of the mean after every scale-up"
    if ups:
        uneven = [step for step in ups if not _even_split(step)]
        found.append(Criterion(name, "fail" if uneven else "pass",
                               f"{len(ups) - len(uneven)} of {len(ups)} steps even"
                               + (f"; uneven: {', '.join(f'{c:.1f}' for c in uneven[0].cpu_per_replica)}" if uneven else "")))
    else:
        found.append(Criterion(name, "no data", "no scale-up steps"))
    return found


def build_report(runs: Sequence[Run], *, not_run: Sequence[str] = ()) -> Report:
    """The report of `runs`; `not_run` names the checks (CHECKS) left out on purpose."""
    scenarios: dict[str, ScenarioSummary] = {}
    for mode in REACTIVE_MODES:
        mine = [r for r in runs if isinstance(r, ReactiveRun) and r.mode == mode]
        if mine:
            scenarios[f"reactive-{mode}"] = summarize_reactive(mode, mine)
    for scenario in SCENARIOS:
        theirs = [r for r in runs if isinstance(r, ProactiveRun) and r.scenario == scenario]
        if theirs:
            scenarios[scenario] = summarize_proactive(scenario, theirs)
    ratios = [Ratio(p.scenario, r.scenario, ratio(p.mttr.median, r.mttr.median), ratio(p.downtime.median, r.downtime.median))
              for p in scenarios.values() if p.kind == "proactive" for r in scenarios.values() if r.kind == "reactive"]
    timelines = [a.timeline for r in runs if isinstance(r, ProactiveRun) for a in r.actions]
    alert = percentiles(_span(t.t1, t.t2) for t in timelines)
    decision = percentiles(_span(t.t2, t.t3) for t in timelines)
    return Report(scenarios=tuple(scenarios.values()), ratios=tuple(ratios), alert_latency=alert,
                  decision_latency=decision, criteria=tuple(criteria(runs, ratios, alert=alert, decision=decision, not_run=not_run)),
                  targets=tuple(targets(runs, scenarios, ratios, alert=alert, decision=decision)), runs=tuple(runs))


# ---------------------------------------------------------------- Markdown and JSON

def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _spread_cell(sp: Spread, digits: int = 2) -> str:
    if sp.n == 0:
        return "-"
    return f"{_s(sp.median, digits)} ({_s(sp.min, digits)}-{_s(sp.max, digits)})"


def _pct_cell(p: Percentiles) -> str:
    return "-" if p.n == 0 else f"{_s(p.p50, 3)} / {_s(p.p99, 3)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _run_rows(runs: Sequence[ProactiveRun]) -> Iterable[list[str]]:
    for i, run in enumerate(runs, 1):
        action = run.primary
        t = action.timeline if action else Timeline()
        yield [str(i), action.result if action else "no action",
               f"{run.node_before or '-'} -> {run.node_after or '-'}",
               replica_steps(run),
               _s(_span(t.t0, t.t5)), _s(_span(t.t0, t.t6)), f"{run.probe.failures}/{run.probe.requests}",
               _s(run.probe.longest_gap, 3), _s(run.probe.total_downtime, 3)]


def replica_steps(run: ProactiveRun) -> str:
    """Replicas before, after each scale step, and after the run, repeats folded: `1 -> 2 -> 1`.

    The steps are the controller's own counts (its successful scale actions' replicas_after, in
    order); a run without them falls back on the scenario's step records."""
    steps = [a.replicas_after for a in sorted(run.actions, key=lambda a: a.timeline.t0 or 0.0)
             if a.action in ("scale_up", "scale_down") and a.result == "success" and a.replicas_after is not None]
    if not steps:
        steps = [s.replicas for s in run.steps]
    seen = [run.replicas_before, *steps, run.replicas_after]
    shown: list[str] = []
    for value in seen:
        text = "-" if value is None else str(value)
        if not shown or shown[-1] != text:
            shown.append(text)
    return " -> ".join(shown) if len(shown) > 1 else f"{shown[0]} -> {shown[0]}"


def _step_rows(runs: Sequence[ProactiveRun]) -> Iterable[list[str]]:
    for i, run in enumerate(runs, 1):
        for step in run.steps:
            yield [str(i), step.action, str(step.replicas), ", ".join(f"{c:.1f}" for c in step.cpu_per_replica) or "-",
                   _s(step.mean_cpu, 1), _s(step.max_deviation, 1)]


def to_markdown(report: Report) -> str:
    """The report as Markdown: summary table, ratios, criteria, then the runs in detail."""
    out = ["# SwarmGuard test results", "",
           "Seconds; median (min-max) over the runs; latencies p50 / p99. Reactive MTTR: break -> first",
           "successful request; proactive MTTR: T0 -> max(T5, T6), the controller's `mttr_seconds`.", ""]
    out += _table(
        ["Scenario", "Runs", "MTTR", "T0->T5", "T0->T6", "Downtime", "Failed requests", "Alert T2-T1", "Decision T3-T2"],
        ([s.label, str(s.runs), _spread_cell(s.mttr), _spread_cell(s.mttr_t5), _spread_cell(s.mttr_t6),
          _spread_cell(s.downtime, 3), _spread_cell(s.failed_requests, 0), _pct_cell(s.alert_latency),
          _pct_cell(s.decision_latency)] for s in report.scenarios))
    if report.ratios:
        out += ["", "## Proactive / reactive (ratio of the medians)", ""]
        out += _table(["Proactive", "Reactive", "MTTR ratio", "Downtime ratio"],
                      ([LABELS[r.proactive], LABELS[r.reactive], _s(r.mttr, 3), _s(r.downtime, 3)] for r in report.ratios))
    out += ["", f"Alert latency T2-T1 over every proactive action: p50 / p99 {_pct_cell(report.alert_latency)} s "
            f"(n={report.alert_latency.n}); decision latency T3-T2: {_pct_cell(report.decision_latency)} s "
            f"(n={report.decision_latency.n})."]
    out += ["", f"## Success criteria: {report.headline}", ""]
    out += [f"- **{c.status.upper()}** {c.name}: {c.detail}" for c in report.criteria]
    out += ["", "## Targets (shown, not deciding)", ""]
    out += [f"- **{c.status.upper()}** {c.name}: {c.detail}" for c in report.targets]
    for scenario in SCENARIOS:
        runs = [r for r in report.runs if isinstance(r, ProactiveRun) and r.scenario == scenario]
        if runs:
            out += ["", f"## {LABELS[scenario]}: runs", ""]
            out += _table(["Run", "Result", "Node", "Replicas", "T0->T5", "T0->T6", "Failed/requests",
                           "Longest gap", "Downtime"], _run_rows(runs))
        if scenario == "scenario2" and any(r.steps for r in runs):
            out += ["", "## Scenario 2: load split after each step (CPU %)", ""]
            out += _table(["Run", "Step", "Replicas", "Per replica", "Mean", "Max deviation"], _step_rows(runs))
    out += _leak_tables(report)
    checks = [r for r in report.runs if isinstance(r, CheckOutcome)]
    if checks:
        out += ["", "## Concurrent and node-failure tests", ""]
        out += _table(["Test", "Result", "Details"],
                      ([c.test, "pass" if c.passed else "FAIL", c.details.replace("|", "/") or "-"] for c in checks))
    return "\n".join(out) + "\n"


def _leak_tables(report: Report) -> list[str]:
    """Scenario 3 and the fast leak: each run's timeline in seconds after the climb's start."""
    out: list[str] = []
    for scenario in LEAK_SCENARIOS:
        runs = [r for r in report.runs if isinstance(r, ProactiveRun) and r.scenario == scenario and r.leak]
        if not runs:
            continue
        out += ["", f"## {LABELS[scenario]}: timeline (s after the climb's start)", ""]
        out += ["T_cross: the figure reaches the level (ext.: extrapolated from the climb, the old container was",
                "stopped first); predicted: where the rule's line reached it at the decision; lead = T_cross - T5.", ""]
        rows = []
        for i, run in enumerate(runs, 1):
            t = run.leak
            assert t is not None
            cross = _s(t.after_start(t.t_cross)) + ("" if t.t_cross_observed or t.t_cross is None else " (ext.)")
            rows.append([str(i), run.primary.rule if run.primary else "no migration", f"{t.metric} {t.level:g} %", cross,
                         _s(t.after_start(t.predicted_crossing)), _s(t.after_start(t.t0)), _s(t.after_start(t.t3)),
                         _s(t.after_start(t.t5)), _s(t.after_start(t.t6)),
                         "-" if t.lead_time is None else f"{t.lead_time:+.2f}", _s(t.peak, 1),
                         f"yes, {_s(t.after_start(t.oom_at))}" if t.oom else "no",
                         f"{run.probe.failures}/{run.probe.requests}", _s(run.probe.total_downtime, 3)])
        out += _table(["Run", "Rule", "Level", "T_cross", "Predicted", "T0", "T3", "T5", "T6", "Lead", "Peak %",
                       "OOM kill", "Failed/requests", "Downtime"], rows)
    return out


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON; its `records` make it a valid input document again (`load_document`)."""
    return {
        "passed": report.passed,
        "headline": report.headline,
        "scenarios": [dict(dataclasses.asdict(s), label=s.label) for s in report.scenarios],
        "ratios": [dataclasses.asdict(r) for r in report.ratios],
        "alert_latency": dataclasses.asdict(report.alert_latency),
        "decision_latency": dataclasses.asdict(report.decision_latency),
        "criteria": [dataclasses.asdict(c) for c in report.criteria],
        "targets": [dataclasses.asdict(c) for c in report.targets],
        "records": [r.to_dict() for r in report.runs],
    }


# ---------------------------------------------------------------- test_results line protocol

def _result_point(run: ReactiveRun | ProactiveRun) -> tuple[str, str, float | None, float, int, float | None]:
    if isinstance(run, ReactiveRun):
        return "reactive", run.scenario, run.first_ok_s, run.downtime_s, run.failed_requests, run.broke_at
    primary = run.primary
    return ("proactive", run.scenario, mttr_seconds(primary) if primary else None, run.probe.total_downtime,
            run.probe.failures, run.at)


def test_results_lines(runs: Iterable[Run], *, precision: str = "ms") -> list[str]:
    """One `test_results` point per reactive or proactive run that has a time (checks have no figures).

    Tags: test_case (reactive | proactive), scenario (reactive-crash, reactive-node-loss, scenario1,
    scenario2). Fields: mttr_seconds (absent when not measured), downtime_seconds, failed_requests (integer).
    """
    lines: list[str] = []
    for run in runs:
        if isinstance(run, CheckOutcome):
            continue
        test_case, scenario, mttr, downtime, failed, at = _result_point(run)
        if at is None:
            continue
        fields: list[tuple[str, FieldValue]] = [("mttr_seconds", float(mttr))] if mttr is not None else []
        fields += [("downtime_seconds", float(downtime)), ("failed_requests", int(failed))]
        lines.append(line(MEASUREMENT, [("scenario", scenario), ("test_case", test_case)], fields, at, precision))
    return lines


test_results_lines.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test


class WriteError(RuntimeError):
    """Not every test_results line reached the server."""


def write_results(url: str, runs: Sequence[Run], *, token: str | None = None, org: str = "swarmguard",
                  bucket: str = "metrics", timeout: float = 10.0,
                  opener: Callable[..., InfluxWriter] = open_writer) -> int:
    """Posts the runs' `test_results` lines to an InfluxDB-compatible /api/v2/write through the project's
    writer; the number of lines written. Raises WriteError when the server did not take them all."""
    target = parse_target(url, org=org, bucket=bucket)
    writer = opener(target, token=token, flush_interval=60)
    lines = test_results_lines(runs, precision=writer.precision)
    writer.write(lines)
    writer.close(timeout=timeout)
    if writer.stats.written != len(lines):
        raise WriteError(f"{url}: {writer.stats.written} of {len(lines)} test_results lines written "
                         f"({writer.stats.failed_batches} failed batches)")
    return len(lines)


# ---------------------------------------------------------------- command line

def write_report(report: Report, out: Path) -> list[Path]:
    """report.md, report.json and the charts into `out`; the files written."""
    from labkit.report_charts import draw_charts  # matplotlib only when charts are wanted

    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    md.write_text(to_markdown(report))
    js.write_text(json.dumps(to_json(report), indent=2) + "\n")
    return [md, js, *draw_charts(report, out)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="report", description="Make the test report from saved result JSON.")
    add_version_argument(parser)
    parser.add_argument("--input", nargs="+", type=Path, required=True, metavar="JSON",
                        help="result files (baseline.py output, records; see docs/report.md)")
    parser.add_argument("--out", type=Path, default=Path("results/report"), help="output folder (default %(default)s)")
    parser.add_argument("--influx-url", help="also write test_results there (/api/v2/write); token from "
                        "INFLUXDB_TOKEN or INFLUXDB_TOKEN_FILE")
    parser.add_argument("--org", default="swarmguard", help="default %(default)s")
    parser.add_argument("--bucket", default="metrics", help="default %(default)s")
    parser.add_argument("--check", action="store_true", help="exit 1 when a success criterion does not pass")
    parser.add_argument("--not-run", nargs="*", default=[], choices=CHECKS, metavar="CHECK",
                        help=f"checks left out on purpose, shown as not run instead of failing ({', '.join(CHECKS)})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = load_files(args.input)
    except RecordError as exc:
        print(f"report: nothing written, bad input:\n{exc}", file=sys.stderr)
        return 2
    if not runs:
        print("report: the input holds no runs", file=sys.stderr)
        return 2
    report = build_report(runs, not_run=args.not_run)
    try:
        files = write_report(report, args.out)
    except ImportError as exc:
        print(f"report: the charts need matplotlib (pip install -e '.[report]'): {exc}", file=sys.stderr)
        return 2
    print(to_markdown(report))
    print("==> " + ", ".join(str(f) for f in files))
    if args.influx_url:
        try:
            written = write_results(args.influx_url, runs, token=read_secret("INFLUXDB_TOKEN"),
                                    org=args.org, bucket=args.bucket)
        except (ValueError, SecretError, WriteError) as exc:
            print(f"report: {exc}", file=sys.stderr)
            return 1
        print(f"==> {written} test_results points written to {args.influx_url}")
    return 1 if args.check and not report.passed else 0


if __name__ == "__main__":
    # through the imported module, so its classes are the ones report_charts sees (not __main__'s)
    from labkit import report as _report

    sys.exit(_report.main())
