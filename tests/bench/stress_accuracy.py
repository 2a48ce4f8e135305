"""How close the stress app gets to its CPU and network targets, measured from outside the app.

Run: .venv/bin/python -m tests.bench.stress_accuracy [--hold 8] [--repeat 1] [--nice -10]

CPU: the app's process tree CPU time from /proc, in % of the cores the app may use, sampled every
second over the hold period after the ramp. On a shared machine other processes take CPU the app
wants: --nice runs the app at another priority (negative needs root) to tell the controller's
accuracy apart from contention; the load average is printed with every run. Network: bytes received by an independent TCP sink
(this script's) that the app sends to as its STRESS_NETWORK_PEER. Prints one table row per target
with the achieved mean, its error, the spread of the one-second windows and, for CPU, how much
of the machine was idle meanwhile (a shortfall with ~0 idle is contention, not the controller),
and how fast /health answered meanwhile (probed every 0.2 s). Exits 1 if a mean is
out of tolerance (CPU +/-5 points, network +/-10 %).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from stressapp import cgroup
from tests.stressapp.helpers import AppProcess, CountingSink, machine_idle_seconds
from sgcommon.version import add_version_argument

CPU_TARGETS = (25.0, 50.0, 80.0)
NETWORK_TARGETS = (10.0, 50.0)
RAMP_S = 1.0
SETTLE_S = 1.5


class HealthProbe:
    """Times GET /health every 0.2 s in a thread, while a stress holds."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            started = time.monotonic()
            with urllib.request.urlopen(self._url + "/health", timeout=5) as response:
                response.read()
            self.latencies_ms.append((time.monotonic() - started) * 1000)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        return f"{statistics.median(self.latencies_ms):.0f} / {max(self.latencies_ms):.0f}"


def windows(read: Callable[[], float], seconds: float) -> list[float]:
    """Rates of `read()` over consecutive one-second windows."""
    rates, last, t_last = [], read(), time.monotonic()
    for _ in range(int(seconds)):
        time.sleep(1.0)
        value, now = read(), time.monotonic()
        rates.append((value - last) / (now - t_last))
        last, t_last = value, now
    return rates


Row = tuple[str, float, list[float], float | None, str]


def run_cpu(hold: float, capacity: float, nice: int) -> list[Row]:
    app = AppProcess(nice=nice)
    rows = []
    try:
        app.wait_healthy()
        for target in CPU_TARGETS:
            app.get(f"/stress/cpu?target={target:g}&duration={hold + 10:g}&ramp={RAMP_S:g}")
            time.sleep(RAMP_S + SETTLE_S)
            idle0, t0 = machine_idle_seconds(), time.monotonic()
            with HealthProbe(app.url) as probe:
                rates = windows(app.cpu_seconds, hold)
            idle = (machine_idle_seconds() - idle0) / (time.monotonic() - t0) / capacity * 100
            app.get("/stress/stop")
            rows.append(("cpu %", target, [r / capacity * 100 for r in rates], idle, probe.summary()))
            time.sleep(0.5)
    finally:
        app.stop()
    return rows


def run_network(hold: float, nice: int) -> list[Row]:
    judge = CountingSink()
    app = AppProcess(env={"STRESS_NETWORK_PEER": f"127.0.0.1:{judge.port}"}, nice=nice)
    rows = []
    try:
        app.wait_healthy()
        for target in NETWORK_TARGETS:
            app.get(f"/stress/network?bandwidth={target:g}&duration={hold + 10:g}&ramp={RAMP_S:g}")
            time.sleep(RAMP_S + SETTLE_S)
            with HealthProbe(app.url) as probe:
                rates = windows(judge.count, hold)
            app.get("/stress/stop")
            rows.append(("network Mbit/s", target, [r * 8 / 1e6 for r in rates], None, probe.summary()))
            time.sleep(0.5)
    finally:
        app.stop()
        judge.close()
    return rows


def within(kind: str, target: float, mean: float) -> bool:
    return abs(mean - target) <= 5.0 if kind.startswith("cpu") else abs(mean - target) <= 0.10 * target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.stress_accuracy")
    parser.add_argument("--hold", type=float, default=8.0, help="seconds measured per target (after ramp)")
    parser.add_argument("--repeat", type=int, default=1, help="run the whole table this many times")
    parser.add_argument("--nice", type=int, default=0, help="run the app at this nice increment (negative needs root)")
    args = parser.parse_args(argv)
    capacity = cgroup.cpu_capacity(cgroup_root="/sys/fs/cgroup", proc_root="/proc", online_cpus=len(os.sched_getaffinity(0)))
    ok = True
    for run in range(1, args.repeat + 1):
        load_before = open("/proc/loadavg").read().split()[0]
        rows = run_cpu(args.hold, capacity, args.nice) + run_network(args.hold, args.nice)
        load_after = open("/proc/loadavg").read().split()[0]
        print(f"\nrun {run}: capacity {capacity:g} cores, load average {load_before} -> {load_after}, "
              f"{args.hold:g} s per target, nice {args.nice:+d}")
        print(f"| {'kind':<15}| {'target':>7} | {'achieved mean':>13} | {'error':>7} | {'1 s min..max':>15} | ok  "
              f"| machine idle % | /health ms median / max |")
        print(f"|{'-' * 16}|{'-' * 9}|{'-' * 15}|{'-' * 9}|{'-' * 17}|-----|----------------|-------------------------|")
        for kind, target, rates, idle, health in rows:
            mean = statistics.fmean(rates)
            good = within(kind, target, mean)
            ok &= good
            spread = f"{min(rates):.1f}..{max(rates):.1f}"
            idle_text = "-" if idle is None else f"{idle:.1f}"
            print(f"| {kind:<15}| {target:>7g} | {mean:>13.2f} | {mean - target:>+7.2f} | {spread:>15} "
                  f"| {'yes' if good else 'NO':<3} | {idle_text:>14} | {health:>23} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
