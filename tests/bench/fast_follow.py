"""The exporter's follow reads (exporter/follow.py) and the shipped rules, replayed together.

One container's memory, modelled at every instant, is read as the exporter reads it: a sweep every
second (random phase), and between sweeps every `follow_interval` while the real `Follower` follows
it; what the `Follower` sends arrives at the controller at once (an alert), every sweep sample with
the controller's next 1 s scrape (random phase). Both go through the controller's own MetricsCache
and `controller.decide.evaluate` with rules/default.yml, as the runtime does (docs/rules.md).

Loads (percent of a 256 MiB limit unless said otherwise):
- fast leak: 20 MiB, then `rate` MiB/s in 0.1 s pieces (the fast-leak test's service, labkit/fastleak.py):
  when each rule decides, after the leak's start and before the limit;
- noise: a level redrawn every second from 60 +/- 15 (uniform) or normal sd 15, each rise taking an
  allocation time drawn from 0..`alloc` s (a straight climb meanwhile; the stress app writes every page
  of its chunks), a fall at once: every decision of a predictive rule is a false trigger;
- slow leak (scenario 3): 40 % -> 100 % over 60 s: must never be followed (it is the 30 s rules' job);
- start-up: 4 % climbing `rate` points a second to a working set, then flat.

Run from the repo root: `.venv/bin/python -m tests.bench.fast_follow [--minutes 10] [--seeds 5]`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

from controller.cache import MetricsCache
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, ServiceInfo
from controller.rules import RuleSet, load_rules
from exporter.follow import Follower, FollowSettings
from exporter.sample import ContainerSample, Sweep
from sgcommon.alert import Prediction
from sgcommon.version import add_version_argument
from tests.exporter.samples import CID, sample as make_sample

SERVICE = ServiceInfo("web", 1, {"swarmguard.enable": "true"})
START = 1_800_000_000.0
LIMIT_MB = 256.0
FOLLOW = FollowSettings(interval=0.25, rate=3.0, reads=4, horizon=10.0, limit=100.0, confidence=2.0)  # the exporter's defaults
Load = Callable[[float], float]  # seconds since START -> memory percent


class Recorder:
    """Stands in for the AlertSender: keeps what the Follower offers, in order."""

    def __init__(self) -> None:
        self.offered: list[ContainerSample] = []

    def offer(self, s: ContainerSample, *, predicted: Prediction | None = None) -> bool:
        self.offered.append(s)
        return True


def _metrics(s: ContainerSample) -> ContainerMetrics:
    return ContainerMetrics(node="worker-1", service=SERVICE.name, container_id=CID, task_id="task-1", ts=s.ts,
                            cpu=10.0, mem=s.memory_percent, mem_mb=0.0, net=0.2, net_rx=0.0, net_tx=0.0)


def replay_with(rules: RuleSet, load: Load, *, seconds: float, seed: int, follow: FollowSettings = FOLLOW,
                ) -> list[tuple[float, str]]:
    """(time after START, rule) of every decision on `load` over `seconds`."""
    rnd = random.Random(seed)
    sweep_phase, scrape_phase = rnd.random(), rnd.random()
    sender = Recorder()
    follower = Follower(sender, follow)  # type: ignore[arg-type]
    # Every read (sweep or follow) with whether it is a sweep sample; the Follower runs on a fake clock.
    events: list[tuple[float, ContainerSample]] = []  # (arrival after START, sample)

    def read(t: float) -> ContainerSample:
        return make_sample(ts=START + t + rnd.uniform(-0.002, 0.002), mem_pct=min(100.0, load(t)), cpu=10.0, net_pct=0.2)

    t = sweep_phase
    sweeps: list[ContainerSample] = []
    while t < seconds:
        s = read(t)
        sweeps.append(s)
        if follow.interval > 0:
            follower.on_sweep(Sweep(ts=s.ts, duration=0.001, node=None, containers=(s,)), t)
        for offered in sender.offered:
            events.append((t + 0.003, offered))
        sender.offered.clear()
        while True:
            due = follower.next_due()
            if due is None or due >= t + 1.0:
                break
            follower.run_due(due, functools.partial(_read_at, read, due))
            for offered in sender.offered:
                events.append((due + 0.003, offered))
            sender.offered.clear()
        t += 1.0
    # scrapes: each brings the newest sweep sample read before it
    scrape = scrape_phase
    i = 0
    while scrape < seconds + 1:
        while i + 1 < len(sweeps) and sweeps[i + 1].ts - START <= scrape:
            i += 1
        if sweeps and sweeps[i].ts - START <= scrape:
            events.append((scrape + 0.02, sweeps[i]))
        scrape += 1.0
    events.sort(key=lambda e: e[0])
    cache = MetricsCache()
    cache.set_services({SERVICE.name: SERVICE})
    state = RuleState()
    out: list[tuple[float, str]] = []
    for arrived, s in events:
        if cache.add_container(_metrics(s)):
            now = START + arrived
            for decision in evaluate(rules, cache.snapshot(now), now, state, container_id=None):
                out.append((arrived, decision.rule))
    return out


def _read_at(read: Callable[[float], ContainerSample], t: float, cid: str) -> ContainerSample:
    return read(t)


# ---------------------------------------------------------------- loads

def fast_leak(rate_mb: float, *, start: float, base_mb: float = 20.0) -> Load:
    piece = rate_mb / 10.0

    def level(t: float) -> float:
        pieces = math.floor(max(0.0, t - start) * 10.0) + (1 if t >= start else 0)
        return 100.0 * (base_mb + pieces * piece) / LIMIT_MB
    return level


def noise(seed: int, *, minutes: float, alloc: float, normal: bool) -> Load:
    rnd = random.Random(seed)
    count = int(minutes * 60) + 3
    levels = [min(100.0, max(0.0, 60.0 + (rnd.gauss(0, 15) if normal else rnd.uniform(-15, 15)))) for _ in range(count)]
    allocs = [rnd.uniform(0.0, alloc) for _ in range(count)]

    def level(t: float) -> float:
        k = min(count - 1, max(1, int(t)))
        before, after = levels[k - 1], levels[k]
        took = allocs[k]
        x = t - k
        if after <= before or x >= took:
            return after
        return before + (after - before) * x / took
    return level


def slow_leak(t: float) -> float:
    return 40.0 if t < 40 else min(100.0, 40.0 + (t - 40.0))


def start_up(rate: float, top: float) -> Load:
    return lambda t: 4.0 if t < 10 else min(top, 4.0 + rate * (t - 10.0))


# ---------------------------------------------------------------- measurements

def spread(values: Sequence[float]) -> str:
    if not values:
        return "none"
    s = sorted(values)
    return f"{statistics.median(s):.2f} ({s[0]:.2f}..{s[-1]:.2f})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    rules = load_rules([args.rules])
    predictive = {r.name for r in rules.rules if "predict(" in r.condition.text}
    follow = dataclasses.replace(FOLLOW, interval=args.follow_interval, reads=args.follow_reads, rate=args.follow_rate)
    replay = functools.partial(replay_with, follow=follow)
    out: dict[str, Any] = {"rules": args.rules, "follow": str(follow)}
    for rate in (20.0, 30.0, 40.0):
        after_start: list[float] = []
        before_limit: list[float] = []
        by_rule: dict[str, int] = {}
        missed = 0
        for seed in range(args.leaks):
            start = 30.0
            limit_at = start + (LIMIT_MB - 20.0) / rate
            decided = [(t, r) for t, r in replay(rules, fast_leak(rate, start=start), seconds=limit_at, seed=seed) if r in predictive]
            if not decided:
                missed += 1
                continue
            t, rule = decided[0]
            after_start.append(t - start)
            before_limit.append(limit_at - t)
            by_rule[rule] = by_rule.get(rule, 0) + 1
        out[f"fast leak {rate:g} MiB/s"] = {"decision after the start": spread(after_start),
                                            "decision before the limit": spread(before_limit), "rules": by_rule,
                                            "missed": missed}
    for normal in (False, True):
        for alloc in (0.3, 0.6, 1.0):
            name = f"noise {'normal sd 15' if normal else 'uniform +/-15'}, rises over 0..{alloc:g} s"
            found: dict[str, int] = {}
            for seed in range(args.seeds):
                for _, rule in replay(rules, noise(seed, minutes=args.minutes, alloc=alloc, normal=normal),
                                      seconds=args.minutes * 60, seed=seed):
                    if rule in predictive:
                        found[rule] = found.get(rule, 0) + 1
            out[name] = found or "none"
    slow = [(t - 40.0, r) for t, r in replay(rules, slow_leak, seconds=100.0, seed=1)]
    out["slow leak 1 %/s (threshold 80 % at +40 s)"] = slow[:3]
    for rate, top in ((7.0, 46.0), (15.0, 40.0), (15.0, 70.0)):
        out[f"start-up {rate:g} %/s to {top:g} %"] = replay(rules, start_up(rate, top), seconds=40.0, seed=1)[:3]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.fast_follow")
    parser.add_argument("--rules", default="rules/default.yml", help="rule file to replay (default %(default)s)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each noisy load (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="noisy loads of each kind (default %(default)s)")
    parser.add_argument("--leaks", type=int, default=20, help="fast leaks of each rate (default %(default)s)")
    parser.add_argument("--follow-interval", type=float, default=FOLLOW.interval, help="0: no follow reads (default %(default)s)")
    parser.add_argument("--follow-reads", type=int, default=FOLLOW.reads, help="default %(default)s")
    parser.add_argument("--follow-rate", type=float, default=FOLLOW.rate, help="default %(default)s")
    args = parser.parse_args(argv)
    print(json.dumps(run(args), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
