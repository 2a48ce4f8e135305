"""False alerts on a noisy steady load, and the time to confirm a real breach, per confirm design.

A real container (`--cpus 1`, the lab image's python3) burns CPU at a level redrawn every
`--step` s from mean +/- noise (default 60 +/- 15 % of its limit: never above the 75 % threshold
by design, so every alert on it is false) for `--minutes`, then alternates `--breaches` times
between 30 % and 95 % (3 s each) for real breaches.

Two measurements run side by side on the same load:
- a trace of the container's cumulative CPU counter read every 10 ms, replayed through the
  exporter's own arithmetic (exporter.sample, exporter.confirm) for each design: sweeps every
  1 s, a confirming read d s after a first breaching sample. All designs see the same load;
- the real exporter loop (exporter.service.Exporter, confirm delay 0.25 s, margin 0) alerting a
  local stand-in controller, as a check on the replay.

A false alert is a confirmed breach during the steady phase: for d = 0, two consecutive breaching
sweep samples (what the rules' `for: 2` fires on); for d > 0, a breaching sample confirmed by the
read d later. T0 -> T1 is from the first breaching sample to the alert that completes the pair.
Needs the local engine and a lab image with python3 (swarm/lab build); run under the lab lock:
`.venv/bin/python -m tests.bench.confirm_noise [--minutes 10] [--breaches 20]`. Without an engine,
`--process` runs the load as a plain process in cgroup v1 groups of its own (root; replay only),
`--save-trace FILE` keeps the trace and `--replay FILE` evaluates the designs on a saved one.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from itertools import pairwise

import docker

from exporter.alerts import AlertSender, Thresholds
from exporter.cgroups import open_container
from exporter.collect import Collector, NodeLink
from exporter.confirm import confirms
from exporter.discovery import Inventory
from exporter.metrics import SelfMetrics
from exporter.procfs import ZERO_NET
from exporter.sample import ContainerSample, RawContainer, container_sample
from exporter.service import Exporter
from sgcommon.alert import decode_alert
from sgcommon.engine import connect
from sgcommon.engine.containers import LocalContainer, inspect
from sgcommon.version import add_version_argument
from tests.exporter.peers import Controller

LABEL = "swarmguard.bench"
IMAGES = ("10.99.0.1:5000/swarmguard-base:latest", "10.99.0.1:5000/stressapp:latest")
THRESHOLD = 75.0
RAMP_SECONDS = 12.0  # a ramp from 40 % to 95 % (4.6 points/s, about scenario 2's ramp: docs/fast-recovery.md),
RAMP_PERIOD = RAMP_SECONDS + 3 + 4  # then 3 s at 95 % and 4 s at 30 %: the LOAD script's values
LOAD = r"""
import random, sys, time
RAMP_STEPS, RAMP_SECONDS = 48, 12.0
mean, noise, step, steady, breaches, seed = (float(a) for a in sys.argv[1:7])
normal = sys.argv[7] == "normal"
ramps = int(sys.argv[8]) if len(sys.argv) > 8 else 0
rnd = random.Random(int(seed))
PERIOD = 0.01
def burn(level, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        budget = time.process_time() + PERIOD * level / 100
        while time.process_time() < budget and time.monotonic() < start + PERIOD:
            pass
        rest = start + PERIOD - time.monotonic()
        if rest > 0:
            time.sleep(rest)
time.sleep(3)
end = time.monotonic() + steady
while time.monotonic() < end:
    burn(min(max(mean + (rnd.gauss(0, noise) if normal else rnd.uniform(-noise, noise)), 0), 100), step)
for _ in range(int(breaches)):
    burn(30, 3)
    burn(95, 3)
burn(30, 3)
for _ in range(ramps):
    for k in range(RAMP_STEPS):
        burn(40 + 55 * (k + 1) / RAMP_STEPS, RAMP_SECONDS / RAMP_STEPS)
    burn(95, 3)
    burn(30, 4)
"""


@dataclass(frozen=True)
class Design:
    name: str
    delay: float  # 0: the next sweep confirms
    margin: float = 0.0
    trailing: bool = False  # also require the rate over the last full interval at confirm time
    fallback: bool = False  # an unconfirmed first sample is still confirmed by the next sweep (as d=0)
    holding: bool = False  # exporter.confirm.confirms: also a rate over the threshold, not below the first sample, after a climb
    any_previous: bool = False  # holding without the climb: the sweep sample before the first one may be anywhere


DESIGNS = (
    Design("d=0 (two sweeps 1 s apart)", 0.0),
    Design("d=0.25", 0.25),
    Design("d=0.25, margin 5", 0.25, margin=5.0),
    Design("d=0.25, margin 10", 0.25, margin=10.0),
    Design("d=0.25 + trailing 1 s rate", 0.25, trailing=True),
    Design("d=0.5", 0.5),
    Design("d=0.25, margin 10, else next sweep", 0.25, margin=10.0, fallback=True),
    Design("d=0.25, margin 15, else next sweep", 0.25, margin=15.0, fallback=True),
    Design("d=0.25, margin 5, else next sweep", 0.25, margin=5.0, fallback=True),
    Design("d=0.25, margin 10 or holding (any previous), else next sweep", 0.25, margin=10.0, fallback=True, holding=True,
           any_previous=True),
    Design("d=0.25, margin 10 or holding after a climb, else next sweep", 0.25, margin=10.0, fallback=True, holding=True),
)


def margin_confirms(first: ContainerSample, again: ContainerSample, thresholds: Thresholds, margin: float) -> bool:
    """The criterion before holding rates were accepted: a figure the first sample breached is over by `margin`."""
    pairs = ((first.cpu_percent, again.cpu_percent, thresholds.cpu),
             (first.memory_percent, again.memory_percent, thresholds.memory),
             (first.network_percent, again.network_percent, thresholds.network))
    return any(before > limit and after > limit + margin for before, after, limit in pairs)


class Trace:
    """(monotonic, cpu_ns) of one container, read every `every` seconds on a thread."""

    def __init__(self, cgroup_root: str, cid: str, every: float = 0.01) -> None:
        self.times: list[float] = []
        self.cpu: list[int] = []
        self._cgroup = open_container(cgroup_root, cid)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Trace:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                reading = self._cgroup.read()
            except (OSError, ValueError):
                return
            self.times.append(time.monotonic())
            self.cpu.append(reading.cpu_ns)
            next_at += self._every
            self._stop.wait(max(next_at - time.monotonic(), 0))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._cgroup.close()

    def at(self, t: float) -> int:
        """The counter at time t, interpolated between the two readings around it."""
        i = bisect.bisect_left(self.times, t)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        c0, c1 = self.cpu[i - 1], self.cpu[i]
        return round(c0 + (c1 - c0) * (t - t0) / (t1 - t0)) if t1 > t0 else c1


def replay(trace: Trace, meta: LocalContainer, design: Design, *, start: float, end: float) -> list[tuple[float, float]]:
    """Confirmed breaches in [start, end): (T0 of the first sample, T1 of the confirming one)."""
    thresholds = Thresholds(cpu=THRESHOLD, memory=101.0, network=101.0)

    def raw(t: float) -> RawContainer:
        return RawContainer(mono=t, cpu_ns=trace.at(t), memory_bytes=0, net=ZERO_NET)

    def sample(t: float, before: float):  # type: ignore[no-untyped-def]
        return container_sample(meta, raw(t), raw(before), node="n", ts=t, node_cpus=1, node_memory=1, capacity_mbps=100)

    found: list[tuple[float, float]] = []
    previous = None
    in_breach = False
    waiting = None  # a first sample the short confirm did not confirm (fallback designs)
    t = start + 1.0
    while t < end:
        s = sample(t, t - 1.0)
        breached = thresholds.breached(s)
        if not breached:
            in_breach = False
            waiting = None
        elif not in_breach and waiting is not None:
            found.append((waiting.ts, t))
            in_breach, waiting = True, None
        elif not in_breach:
            if design.delay == 0:
                if previous is not None and thresholds.breached(previous):
                    found.append((previous.ts, t))
                    in_breach = True
            else:
                c = t + design.delay
                again = sample(c, t)
                if design.holding:
                    ok = confirms(s, again, thresholds, design.margin, previous=s if design.any_previous else previous)
                else:
                    ok = margin_confirms(s, again, thresholds, design.margin)
                if ok and design.trailing:
                    ok = thresholds.breached(sample(c, c - 1.0))
                if ok:
                    found.append((t, c))
                    in_breach = True
                elif design.fallback:
                    waiting = s
        previous = s
        t += 1.0
    return found


def breach_onsets(trace: Trace, start: float, end: float) -> list[float]:
    """The starts of the 95 % phases: the 250 ms rate crossing from below 45 % to above 85 %."""
    onsets, low = [], False
    t = start + 1.0
    while t < end:
        rate = (trace.at(t) - trace.at(t - 0.25)) / 1e9 / 0.25 * 100
        if rate < 45:
            low = True
        elif rate > 85 and low:
            onsets.append(t - 0.125)
            low = False
        t += 0.02
    return onsets


def window_noise(trace: Trace, start: float, end: float) -> str:
    """How noisy the CPU rate is over 1 s and over 0.25 s windows in the steady phase, and how often each breaches."""
    def rate(t: float, width: float) -> float:
        return (trace.at(t) - trace.at(t - width)) / 1e9 / width * 100

    times = [start + 1.0 + k for k in range(int(end - start - 2))]
    one = [rate(t, 1.0) for t in times]
    quarter = [rate(t + 0.25, 0.25) for t in times]
    return (f"steady phase, {len(times)} sweeps: 1 s windows mean {statistics.mean(one):.1f} sd {statistics.pstdev(one):.1f}, "
            f"{sum(v > THRESHOLD for v in one)} above {THRESHOLD:g}; the 0.25 s windows after them mean "
            f"{statistics.mean(quarter):.1f} sd {statistics.pstdev(quarter):.1f}, {sum(v > THRESHOLD for v in quarter)} above")


def report(trace: Trace, meta: LocalContainer, steady_from: float, steady_to: float, ramps_from: float | None = None, *,
           phases: int = 1) -> None:
    """The table of designs over one trace (the ramps, when the trace has them, in columns of their own),
    replayed with the sweeps at `phases` offsets spread over one interval (the counts are their sums)."""
    end = trace.times[-1]
    steps_end = end if ramps_from is None else ramps_from - 1.5
    onsets = breach_onsets(trace, steady_to, steps_end)
    ramps = [] if ramps_from is None else [ramps_from + k * RAMP_PERIOD for k in range(int((end - ramps_from) // RAMP_PERIOD))]
    crossings = [r + RAMP_SECONDS * (THRESHOLD - 40) / 55 for r in ramps]  # where the load itself passes the threshold
    offsets = [k / phases for k in range(phases)]
    print(f"trace: {len(trace.times)} readings over {end - trace.times[0]:.0f} s; {len(onsets)} breach onsets found, "
          f"{len(ramps)} ramps; sweeps replayed at {phases} phase(s)")
    print(window_noise(trace, steady_from, steady_to))
    print()
    print("| design | false alerts in the steady phase (per 10 min) | real breaches confirmed | onset -> T0 (s) "
          "| T0 -> T1 (s), median (min..max) | ramps confirmed (in 0.25 s) | ramps: T0 -> T1 (s) | ramps: crossing -> T1 (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for design in DESIGNS:
        false = [f for k in offsets for f in replay(trace, meta, design, start=steady_from + k, end=steady_to)]
        real = [r for k in offsets for r in replay(trace, meta, design, start=steady_to + k, end=steps_end)]
        lags = [t1 - t0 for t0, t1 in real]
        onset_lag = [t0 - max(o for o in onsets if o <= t0) for t0, _ in real if any(o <= t0 for o in onsets)]
        per10 = len(false) / phases * 600 / max(steady_to - steady_from, 1)
        row = (f"| {design.name} | {len(false)} ({per10:.1f}) | {len(real)} of {len(onsets) * phases} | {summary(onset_lag)} "
               f"| {summary(lags)} |")
        if ramps:
            found = [r for k in offsets for r in replay(trace, meta, design, start=ramps[0] - 1.0 + k, end=end)]
            ramp_lags = [t1 - t0 for t0, t1 in found]
            late = [t1 - max(c for c in crossings if c <= t0) for t0, t1 in found if any(c <= t0 for c in crossings)]
            row += (f" {len(found)} of {len(ramps) * phases} ({sum(lag < 0.5 for lag in ramp_lags)}) | {summary(ramp_lags)} "
                    f"| {summary(late)} |")
        else:
            row += " - | - | - |"
        print(row)


def pick_image(client: docker.APIClient) -> str:
    tags = {tag for image in client.images() for tag in (image.get("RepoTags") or [])}
    for name in IMAGES:
        if name in tags:
            return name
    sys.exit(f"confirm_noise: none of {', '.join(IMAGES)} on the engine: run swarm/lab build first")


def remove_containers(client: docker.APIClient) -> None:
    for c in client.containers(all=True, filters={"label": f"{LABEL}=confirm_noise"}):
        client.remove_container(c["Id"], force=True)


def live_exporter(meta: LocalContainer, controller: Controller, *, delay: float) -> tuple[Exporter, Collector, AlertSender]:
    metrics = SelfMetrics()
    collector = Collector(cgroup_root="/sys/fs/cgroup", proc_root="/proc", link=NodeLink("", 100.0, "setting"),
                          on_error=metrics.error)
    inventory = Inventory("bench")
    inventory.replace({meta.id: meta})
    alerts = AlertSender(controller.url, token=None, thresholds=Thresholds(cpu=THRESHOLD, memory=101, network=101),
                         min_gap=0.5 * (delay or 1.0))
    return Exporter(collector, inventory, interval=1.0, alerts=alerts, self_metrics=metrics, confirm_delay=delay), collector, alerts


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f})"


def run_in_cgroup(args: argparse.Namespace) -> int:
    """The same measurement on a process in cgroup v1 groups made here (a fake cgroup root links to them)."""
    import subprocess
    import tempfile

    name = f"sgbench-confirm-{os.getpid()}"
    groups = {ctl: f"/sys/fs/cgroup/{ctl}/{name}" for ctl in ("cpu", "cpuacct", "memory")}
    for path in groups.values():
        os.mkdir(path)
    fake_id = "f" * 64
    proc = None
    try:
        with open(f"{groups['cpu']}/cpu.cfs_period_us", "w") as fh:
            fh.write("100000")
        with open(f"{groups['cpu']}/cpu.cfs_quota_us", "w") as fh:
            fh.write("100000")
        steady = args.minutes * 60
        proc = subprocess.Popen([sys.executable, "-c", LOAD, *(str(v) for v in (args.mean, args.noise, args.step, steady,
                                 args.breaches, args.seed)), "normal" if args.normal else "uniform", str(args.ramps)])
        for path in groups.values():
            with open(f"{path}/cgroup.procs", "w") as fh:
                fh.write(str(proc.pid))
        root = tempfile.mkdtemp()
        for ctl in ("cpuacct", "memory"):
            os.makedirs(f"{root}/{ctl}/docker")
            os.symlink(groups[ctl], f"{root}/{ctl}/docker/{fake_id}")
        meta = LocalContainer(id=fake_id, name=name, service="bench", task_id="", pid=proc.pid, cpu_limit=1.0,
                              memory_limit=None)
        trace = Trace(root, fake_id).start()
        began = time.monotonic()
        steady_from, steady_to = began + 4.0, began + 3.0 + steady
        title = (f"process {proc.pid} in cgroup {name}: {args.mean:g} +/- {args.noise:g} % of 1 CPU "
                 f"({'normal, sd' if args.normal else 'uniform, half-width'} {args.noise:g}), level redrawn every "
                 f"{args.step:g} s, {args.minutes:g} min steady, then {args.breaches} steps 30 -> 95 %; threshold {THRESHOLD:g} %")
        print(title, flush=True)
        proc.wait()
        trace.stop()
        if args.save_trace:
            with open(args.save_trace, "w") as fh:
                json.dump({"title": title, "times": trace.times, "cpu": trace.cpu, "steady_from": steady_from,
                           "steady_to": steady_to, "ramps_from": steady_to + args.breaches * 6 + 3, "meta": dataclasses.asdict(meta)}, fh)
        report(trace, meta, steady_from, steady_to, steady_to + args.breaches * 6 + 3 if args.ramps else None,
               phases=args.phases)
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for path in groups.values():
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.confirm_noise")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the noisy steady phase")
    parser.add_argument("--breaches", type=int, default=20, help="30 %% -> 95 %% steps after it")
    parser.add_argument("--mean", type=float, default=60.0)
    parser.add_argument("--noise", type=float, default=15.0, help="+/- points around the mean (uniform), or the "
                        "standard deviation with --normal")
    parser.add_argument("--normal", action="store_true", help="normal noise instead of uniform")
    parser.add_argument("--step", type=float, default=0.5, help="seconds between two draws of the level")
    parser.add_argument("--ramps", type=int, default=10, help="ramps 40 %% -> 95 %% over 12 s after the steps")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phases", type=int, default=10, help="replay each design with the sweeps at this many offsets "
                        "spread over one interval (more confirmations counted on the same load)")
    parser.add_argument("--save-trace", metavar="FILE", help="keep the CPU trace (JSON) to replay other designs later")
    parser.add_argument("--replay", metavar="FILE", help="no container: replay the designs on a saved trace")
    parser.add_argument("--process", action="store_true", help="no engine: run the load as a plain process in cgroup v1 "
                        "groups of its own (cpu quota of 1 CPU, cpuacct, memory) instead of a container")
    args = parser.parse_args(argv)
    if args.process:
        return run_in_cgroup(args)
    if args.replay:
        with open(args.replay) as fh:
            saved = json.load(fh)
        trace = Trace.__new__(Trace)
        trace.times, trace.cpu = saved["times"], saved["cpu"]
        print(saved["title"])
        report(trace, LocalContainer(**saved["meta"]), saved["steady_from"], saved["steady_to"], saved.get("ramps_from"),
               phases=args.phases)
        return 0
    client = connect(timeout=120)
    image = pick_image(client)
    remove_containers(client)
    steady = args.minutes * 60
    created = client.create_container(
        image, entrypoint=["python3", "-c", LOAD],
        command=[*(str(v) for v in (args.mean, args.noise, args.step, steady, args.breaches, args.seed)),
                 "normal" if args.normal else "uniform", str(args.ramps)],
        labels={LABEL: "confirm_noise"}, name=f"sgbench-confirm-{os.getpid()}",
        host_config=client.create_host_config(nano_cpus=1_000_000_000))
    cid = created["Id"]
    controller = Controller()
    try:
        client.start(cid)
        meta = inspect(client, cid)
        trace = Trace("/sys/fs/cgroup", cid).start()
        exporter, collector, alerts = live_exporter(meta, controller, delay=0.25)
        began = time.monotonic()
        exporter.start()
        steady_from, steady_to = began + 4.0, began + 3.0 + steady
        total = 3.0 + steady + args.breaches * 6 + 3 + args.ramps * RAMP_PERIOD
        title = (f"container {cid[:12]} ({image}): {args.mean:g} +/- {args.noise:g} % of 1 CPU "
                 f"({'normal, sd' if args.normal else 'uniform, half-width'} {args.noise:g}), level redrawn every "
                 f"{args.step:g} s, {args.minutes:g} min steady, then {args.breaches} steps 30 -> 95 %; threshold {THRESHOLD:g} %")
        print(title)
        live_steady_confirmed = None
        while time.monotonic() - began < total and client.inspect_container(cid)["State"]["Running"]:
            time.sleep(1.0)
            if live_steady_confirmed is None and time.monotonic() >= steady_to and exporter.confirmer is not None:
                live_steady_confirmed = exporter.confirmer.stats.confirmed
        exporter.stop()
        alerts.close()
        collector.close()
        trace.stop()
        if args.save_trace:
            with open(args.save_trace, "w") as fh:
                json.dump({"title": title, "times": trace.times, "cpu": trace.cpu, "steady_from": steady_from,
                           "steady_to": steady_to, "ramps_from": steady_to + args.breaches * 6 + 3, "meta": dataclasses.asdict(meta)}, fh)
        report(trace, meta, steady_from, steady_to, steady_to + args.breaches * 6 + 3 if args.ramps else None,
               phases=args.phases)
        stats = exporter.confirmer.stats if exporter.confirmer is not None else None
        received = [decode_alert(body) for _, body in controller.received]
        by_container: dict[float, float] = {}
        live_lags = []
        for first, second in pairwise(received):
            if 0.2 <= second.t0 - first.t0 <= 0.35 and first.t0 not in by_container:  # a confirmed pair
                by_container[first.t0] = second.t1
                live_lags.append(second.t1 - first.t0)
        print()
        print(f"live exporter T0 -> T1 of confirmed pairs (s): {summary(live_lags)}, n={len(live_lags)}")
        print(f"live exporter (d=0.25, margin 0): {live_steady_confirmed} breaches confirmed in the steady phase, "
              f"{stats.confirmed if stats else 0} in all ({len(received)} alerts received); "
              f"{stats.cleared if stats else 0} first breaches not confirmed")
        return 0
    finally:
        controller.close()
        remove_containers(client)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
