"""Predictive rules through the real rule engine: false triggers on noisy loads, lead time on leaks.

Series of one container's samples (1 s apart, a little jitter, random phase) are replayed through
the controller's own MetricsCache and `controller.decide.evaluate`, as the controller would see
them (docs/rules.md, "Choosing a window and a horizon"):

- scrape path: every sample reaches the cache at the controller's next 1 s scrape (a random phase);
- alert path: a sample whose trend the exporter flags (exporter/predict.py's `trend_prediction`
  with the exporter's default settings) or that breaches a threshold arrives at once, as an alert;
  the others come with the scrapes.

Loads (percent of the container's limit, the figure the rules read):
- noise: a level redrawn every `step` s from 60 +/- 15 (uniform) or normal with sd 15, for
  `--minutes`; memory is read as the level at the sample time, CPU as the mean over the last second.
  Every decision of a predictive rule here is a false trigger;
- slow leak (scenario 3): 40 % -> 100 % over 60 s: when the threshold (80 % memory, 75 % CPU) is
  crossed, and when each rule decides;
- fast leak: 30 MB/s from 20 MB toward a 256 MB limit (7.8 % -> 100 % in 7.9 s): how long before
  the limit (the OOM kill) the decision comes.

`--rules FILE` (default rules/default.yml) replays the shipped rules; `--grid` replays one-rule
candidates (window x horizon x standard errors x `for`) for the tuning table in docs/rules.md;
`--replay FILE` replays recorded series too (JSON: {"name": [[ts, value], ...]}, e.g. exported from
the lab's victoria-metrics by labkit/scenario3.py's `noise` command) as memory and as CPU.
Run from the repo root: `.venv/bin/python -m tests.bench.trend_rules [--minutes 10] [--seeds 5] [--grid]`.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from controller.cache import MetricsCache
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, ServiceInfo
from controller.rules import RuleSet, load_rules
from exporter.predict import TrendSettings, trend_prediction
from sgcommon.version import add_version_argument

Series = list[tuple[float, float]]  # (ts, percent)
SERVICE = ServiceInfo("svc", 1, {"swarmguard.enable": "true"})
EXPORTER = TrendSettings(horizon=10.0, window=5.0, limit=100.0, confidence=2.0, metrics=("mem", "cpu"))
BREACH = {"cpu": 75.0, "mem": 80.0}  # the exporter's alert thresholds
START = 1_800_000_000.0
LIMIT_MB = 256.0


# ---------------------------------------------------------------- loads

def noise(seed: int, *, minutes: float, metric: str, normal: bool = False, step: float = 1.0,
          mean: float = 60.0, spread: float = 15.0) -> Series:
    """A noisy steady load sampled every second (jitter 20 ms, random phase)."""
    rnd = random.Random(seed)
    count = int(minutes * 60 / step) + 3
    levels = [min(100.0, max(0.0, mean + (rnd.gauss(0, spread) if normal else rnd.uniform(-spread, spread))))
              for _ in range(count)]

    def level(t: float) -> float:
        return levels[min(count - 1, max(0, int(t / step)))]

    out: Series = []
    t = 1.0 + rnd.random()
    while t < minutes * 60:
        ts = t + rnd.uniform(-0.02, 0.02)
        value = statistics.fmean(level(ts - 1 + j / 20) for j in range(20)) if metric == "cpu" else level(ts)
        out.append((START + ts, value))
        t += 1.0
    return out


def slow_leak(seed: int, *, before: float = 40.0, start: float = 40.0, end: float = 100.0, ramp: float = 60.0) -> Series:
    """`before` s at `start` %, then a straight climb to `end` % over `ramp` s (a 0.5-point reading noise)."""
    rnd = random.Random(seed)
    out: Series = []
    t = rnd.random()
    while t < before + ramp:
        x = t - before
        value = start if x < 0 else start + (end - start) * x / ramp
        out.append((START + t + rnd.uniform(-0.02, 0.02), min(100.0, value + rnd.uniform(-0.5, 0.5))))
        t += 1.0
    return out


def fast_leak(seed: int, *, rate_mb: float = 30.0, base_mb: float = 20.0, before: float = 40.0) -> tuple[Series, float]:
    """A flat `base_mb`, then `rate_mb` MB/s toward LIMIT_MB; the series until the limit, and when it is reached."""
    rnd = random.Random(seed)
    out: Series = []
    t = rnd.random()
    oom = before + (LIMIT_MB - base_mb) / rate_mb
    while t < oom:
        mb = base_mb + max(0.0, t - before) * rate_mb
        out.append((START + t + rnd.uniform(-0.02, 0.02), 100.0 * mb / LIMIT_MB))
        t += 1.0
    return out, START + oom


# ---------------------------------------------------------------- replay

@dataclass
class Replay:
    decisions: list[tuple[float, str]] = field(default_factory=list)  # (time, rule)

    def first(self, rules: Iterable[str] | None = None) -> float | None:
        wanted = None if rules is None else set(rules)
        return next((t for t, r in self.decisions if wanted is None or r in wanted), None)


def _sample(metric: str, ts: float, value: float) -> ContainerMetrics:
    """One sample with `metric` at `value`, the other figures quiet (network low: the migrate rules' case)."""
    return ContainerMetrics(node="node-1", service=SERVICE.name, container_id="c1", task_id="t1", ts=ts,
                            cpu=value if metric == "cpu" else 10.0, mem=value if metric == "mem" else 30.0,
                            mem_mb=0.0, net=0.2, net_rx=0.0, net_tx=0.0)


def replay(rules: RuleSet, series: Series, *, metric: str, alerts: bool, seed: int = 0) -> Replay:
    """The decisions `rules` make on `series` (one container) through the real cache and engine."""
    rnd = random.Random(seed + 7919)
    cache = MetricsCache()
    cache.set_services({SERVICE.name: SERVICE})
    state = RuleState()
    out = Replay()
    phase = rnd.random()

    def run(now: float, cid: str | None) -> None:
        for decision in evaluate(rules, cache.snapshot(now), now, state, container_id=cid):
            out.decisions.append((now, decision.rule))

    # Each sample: (arrival time, whether it came as an alert).
    arrivals: list[tuple[float, int]] = []
    kept: list[tuple[float, float]] = []
    for i, (ts, value) in enumerate(series):
        alert = False
        if alerts:
            kept = [(t, v) for t, v in kept if t > ts - EXPORTER.window] + [(ts, value)]
            flagged = trend_prediction([t for t, _ in kept], {m: [v for _, v in kept] for m in EXPORTER.metrics},
                                       TrendSettings(EXPORTER.horizon, EXPORTER.window, EXPORTER.limit,
                                                     EXPORTER.confidence, (metric,)))
            alert = flagged is not None or value > BREACH[metric]
        arrivals.append((ts + 0.003 if alert else math.floor(ts - phase) + 1 + phase + 0.02, i))
    arrivals.sort()
    for arrived, i in arrivals:
        ts, value = series[i]
        if cache.add_container(_sample(metric, ts, value)):
            run(arrived, None)
    return out


# ---------------------------------------------------------------- measurements

def false_triggers(rules: RuleSet, names: Sequence[str], *, minutes: float, seeds: int,
                   alerts: bool) -> dict[str, int]:
    """Decisions of the rules `names` on each noisy load, summed over the seeds."""
    loads: dict[str, Callable[[int], Series]] = {}
    for metric in ("cpu", "mem"):
        loads[f"{metric} uniform, step 1 s"] = partial(noise, minutes=minutes, metric=metric)
        loads[f"{metric} uniform, step 0.5 s"] = partial(noise, minutes=minutes, metric=metric, step=0.5)
        loads[f"{metric} normal sd 15, step 1 s"] = partial(noise, minutes=minutes, metric=metric, normal=True)
    counts = {}
    for load, make in loads.items():
        metric = load.split()[0]
        counts[load] = sum(sum(1 for _, r in replay(rules, make(seed), metric=metric, alerts=alerts, seed=seed).decisions
                               if r in names) for seed in range(seeds))
    return counts


def slow_leak_leads(rules: RuleSet, names: Sequence[str], *, metric: str, seeds: int, alerts: bool) -> list[float | None]:
    """Seconds from each rule decision to the threshold crossing (positive: before it), per seed."""
    threshold = BREACH[metric]
    leads: list[float | None] = []
    for seed in range(seeds):
        series = slow_leak(seed)
        cross = START + 40.0 + (threshold - 40.0) / 60.0 * 60.0
        first = replay(rules, series, metric=metric, alerts=alerts, seed=seed).first(names)
        leads.append(None if first is None else cross - first)
    return leads


def fast_leak_leads(rules: RuleSet, names: Sequence[str], *, seeds: int, alerts: bool,
                    rate_mb: float = 30.0) -> list[float | None]:
    """Seconds from each decision to the limit (the OOM kill), per seed; None: no decision before it."""
    leads: list[float | None] = []
    for seed in range(seeds):
        series, oom = fast_leak(seed, rate_mb=rate_mb)
        first = replay(rules, series, metric="mem", alerts=alerts, seed=seed).first(names)
        leads.append(None if first is None else oom - first)
    return leads


def spread(values: Sequence[float | None]) -> str:
    seen = sorted(v for v in values if v is not None)
    missed = len(values) - len(seen)
    if not seen:
        return f"none of {len(values)}"
    text = f"{statistics.median(seen):.2f} ({seen[0]:.2f}..{seen[-1]:.2f})"
    return text + (f", {missed} missed" if missed else "")


def candidate(metric: str, window: float, horizon: float, k: float, hold: int, level: str) -> RuleSet:
    import tempfile

    guard = "mem" if metric == "mem" else "cpu"
    se = f" - {k:g} * predict_se({metric}, {horizon:g}s, {window:g}s)" if k else ""
    text = f"""
thresholds: {{cpu_high: 75, mem_high: 80, net_low: 35, trend_from: 50}}
rules:
  - name: candidate
    labels: {{swarmguard.enable: "true"}}
    when: {guard} > trend_from and net < net_low and predict({metric}, {horizon:g}s, {window:g}s){se} > {level}
    for: {hold}
    action: migrate
    cooldown: 30s
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(text)
    try:
        return load_rules([handle.name])
    finally:
        Path(handle.name).unlink()


def predictive(rules: RuleSet) -> list[str]:
    return [r.name for r in rules.rules if "predict(" in r.condition.text]


def run_defaults(args: argparse.Namespace) -> dict[str, Any]:
    rules = load_rules([args.rules])
    names = predictive(rules)
    reactive = [r.name for r in rules.rules if r.name not in names and r.action.name == "migrate"]
    out: dict[str, Any] = {"rules": names, "minutes": args.minutes, "seeds": args.seeds, "paths": {}}
    for path, alerts in (("scrape", False), ("alert", True)):
        row: dict[str, Any] = {"false_triggers": false_triggers(rules, names, minutes=args.minutes, seeds=args.seeds,
                                                                 alerts=alerts)}
        for metric in ("mem", "cpu"):
            row[f"slow_leak_{metric}"] = {"predictive": spread(slow_leak_leads(rules, names, metric=metric, seeds=20, alerts=alerts)),
                                          "reactive": spread(slow_leak_leads(rules, reactive, metric=metric, seeds=20, alerts=alerts))}
        for rate in (10.0, 20.0, 30.0, 40.0):
            row[f"fast_leak_{rate:g}MBps"] = {"predictive": spread(fast_leak_leads(rules, names, seeds=20, alerts=alerts, rate_mb=rate)),
                                              "reactive": spread(fast_leak_leads(rules, reactive, seeds=20, alerts=alerts, rate_mb=rate))}
        out["paths"][path] = row
    if args.replay:
        recorded = json.loads(Path(args.replay).read_text())
        out["recorded"] = {}
        for name, points in recorded.items():
            series = [(float(t), float(v)) for t, v in points]
            for metric in ("mem", "cpu"):
                out["recorded"][f"{name} as {metric}"] = sum(
                    1 for _, r in replay(rules, series, metric=metric, alerts=True).decisions if r in names)
    return out


def run_grid(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    grid = itertools.product(("mem",), (5.0, 10.0, 30.0), (5.0, 8.0, 10.0), (0.0, 2.0, 4.0), (1, 2), ("100", "mem_high"))
    for metric, window, horizon, k, hold, level in grid:
        rules = candidate(metric, window, horizon, k, hold, level)
        noise_counts = false_triggers(rules, ["candidate"], minutes=args.minutes, seeds=args.seeds, alerts=True)
        rows.append({"when": rules.rules[0].condition.text, "for": hold,
                     "false_triggers": sum(noise_counts.values()), "worst_load": max(noise_counts, key=lambda k: noise_counts[k]),
                     "slow_leak_lead": spread(slow_leak_leads(rules, ["candidate"], metric=metric, seeds=10, alerts=True)),
                     "fast_leak_before_oom": spread(fast_leak_leads(rules, ["candidate"], seeds=10, alerts=True))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.trend_rules")
    parser.add_argument("--rules", default="rules/default.yml", help="rule file to replay (default %(default)s)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each noisy load (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="noisy loads of each kind (default %(default)s)")
    parser.add_argument("--grid", action="store_true", help="replay one-rule candidates instead of the rule file")
    parser.add_argument("--replay", help="JSON of recorded series {name: [[ts, percent], ...]}")
    args = parser.parse_args(argv)
    if args.grid:
        run_grid(args)
        return 0
    report = run_defaults(args)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
