"""Scenario 3 on the lab (`tests/scripts/stress_scenario3`): a slow leak, moved before the threshold.

web-stress's memory (or CPU) climbs steadily toward its limit, 40 % -> 100 % over 60 s: the stress
app's `/stress/leak` (memory: it keeps growing, so a container left alone reaches its limit and the
kernel's OOM killer ends it) or `/stress/cpu?start=40&target=100&ramp=60` (CPU: held at 100 % after
the ramp, i.e. throttled). Each run is made with one rule variant (labkit/variants.py):
- `threshold`: today's rule alone (`migrate-on-container-problem`: mem > mem_high or cpu > cpu_high,
  for 2 samples), the predictive rules switched off by the threshold override trend_from=100;
- `predictive`: the rules as shipped (rules/default.yml: `migrate-before-memory-threshold`,
  `migrate-before-cpu-threshold`, `migrate-before-oom` next to the threshold rule).
Both variants run in one invocation, each `--runs` times (the predictive runs first: switching to
the threshold variant restarts the controller once, and once more to put it back).

Per run, as scenario 1 (labkit/scenario1.py: exclusions lifted, one task, the probe inside the
overlay every 100 ms, the migrate record and the old task gone, `settle` seconds after), and from
the exporter's own series in the lab's victoria-metrics (labkit/leak.py): T_cross, when the figure
actually crossed the threshold (80 % memory, 75 % CPU; extrapolated from the climb when the old
container was stopped before it got there), the rule's predicted crossing at its decision, T0, T3,
T5, T6, the lead time T_cross - T5 (>= 0: the replacement served before the breach), the peak and
whether the old container reached its limit or was OOM-killed, and the probe's failed requests.
The goal: lead time >= 0 in at least 4 of 5 predictive runs. `tests/scripts/stress_scenario3` is
`main()`; the suite (labkit/suite.py) and the report (labkit/report.py) use `run_variants`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit import controller_api as api
from labkit import labinfo, leak, onetask, sink, variants
from labkit.fastleak import rule_window
from labkit.scenario1 import ensure_deployed, lift_exclusions
from labkit.zerodowntime import ProbeRun
from sgcommon.engine import EngineError, connect, translate
from sgcommon.version import add_version_argument

MIB = 1 << 20
LEVELS = {"mem": 80.0, "cpu": 75.0}  # rules/default.yml's mem_high and cpu_high


@dataclasses.dataclass(frozen=True)
class Settings:
    metric: str = "mem"  # mem (a leak toward the memory limit) or cpu
    start: float = 40.0  # % of the limit at the start of the climb
    end: float = 100.0  # % reached `ramp` s later (memory keeps growing past it)
    ramp: float = 60.0
    level: float | None = None  # the threshold T_cross is taken at (default: LEVELS[metric])
    window: float = 30.0  # the predictive rules' window, for the predicted crossing when the reason has none
    timeout: float = 120.0  # s from the start of the climb to the migration done
    settle: float = 35.0  # s after a run (the migrate rules' cooldown is 30 s)
    interval: float = 0.1
    service: str = api.APP_SERVICE
    target: str = "http://web-stress:8080/health"

    @property
    def threshold(self) -> float:
        return self.level if self.level is not None else LEVELS[self.metric]


def stress_path(s: Settings, *, limit_mb: float, in_use_mb: float) -> str:
    """The stress app request of the climb: memory from start % of the limit (what the app holds
    already counts) growing (end - start) % of it over `ramp` s, and on; CPU from start % to end %."""
    if s.metric == "cpu":
        return f"/stress/cpu?start={s.start:g}&target={s.end:g}&ramp={s.ramp:g}&duration={s.ramp:g}"
    start_mb = max(0.0, s.start / 100 * limit_mb - in_use_mb)
    rate = (s.end - s.start) / 100 * limit_mb / s.ramp
    return f"/stress/leak?rate={rate:.3f}&start={start_mb:.1f}&duration={3 * s.ramp:g}"


class Scenario3:
    """Runs scenario 3 on the lab through the host engine and the nodes' engines."""

    def __init__(self, lab: labinfo.Lab, settings: Settings = Settings()) -> None:
        self.lab, self.s = lab, settings
        self.client = connect(lab.host_socket, timeout=60)

    def limit_mb(self) -> float:
        with translate(f"inspect {self.s.service}"):
            spec = self.client.inspect_service(self.s.service)["Spec"]
        limit = ((spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get("MemoryBytes")
        if not limit:
            raise EngineError(f"{self.s.service} has no memory limit: scenario 3 needs one")
        return float(limit) / MIB

    def run_once(self, variant: str) -> dict[str, Any]:
        """One run; its `proactive` record (scenario "scenario3-<variant>") with the climb's timeline."""
        ensure_deployed(self.client)
        lift_exclusions(self.client, self.s.service)
        task, node = onetask.only_task(self.client, self.s.service)
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        seen = {r["id"] for r in api.events(self.client, limit=200)}
        limit_mb = self.limit_mb()
        probe = ProbeRun(self.lab.host_socket, image=labinfo.BASE_IMAGE, network=self.lab.network,
                         target=self.s.target, interval=self.s.interval, duration=self.s.timeout + 120).start()
        record: dict[str, Any] | None = None
        try:
            onetask.wait_steady(probe)
            in_use = float(api.app_get(self.lab, task, node, "/metrics").get("memory_mb") or 0.0)
            path = stress_path(self.s, limit_mb=limit_mb, in_use_mb=in_use)
            started = time.time()
            answer = api.app_get(self.lab, task, node, path)
            if answer.get("status") != "started":
                raise EngineError(f"the stress did not start: {answer}")
            record = onetask.await_migration(self.client, self.s.service, task["ID"], seen, timeout=self.s.timeout)
        finally:
            summary = probe.finish(stop=True)
            onetask.stop_stress(self.lab, self.client, self.s.service, task, node)
        fate = leak.container_fate(self.lab, node, container)
        time.sleep(6.0)  # the exporter writes its samples every 5 s
        points = sink.export_series(container, self.s.metric, start=started - 40, end=time.time())
        window = rule_window(str(record.get("reason") or ""), self.s.window) if record else self.s.window
        timeline = leak.timeline(record, points, metric=self.s.metric, level=self.s.threshold, started=started,
                                 window=window, fate=fate)
        timeline.update(stress=path, start_pct=self.s.start, end_pct=self.s.end, ramp=self.s.ramp)
        after = api.running_tasks(self.client, self.s.service)
        names = api.node_names(self.client)
        return {"kind": "proactive", "scenario": f"scenario3-{variant}", "variant": variant,
                "actions": [record] if record else [],
                "probe": {k: summary[k] for k in ("requests", "failures", "longest_gap", "total_downtime")},
                "node_before": node, "node_after": names.get(after[0]["NodeID"]) if len(after) == 1 else None,
                "replicas_before": 1, "replicas_after": 1, "leak": timeline}


def rel(timeline: dict[str, Any], key: str) -> str:
    """A timeline time as seconds after the climb's start ("-" when there is none)."""
    value = timeline.get(key)
    return "-" if value is None else f"{value - timeline['started']:+.2f}"


def format_table(runs: Sequence[dict[str, Any]]) -> str:
    """One line per run, times in seconds after the climb's start."""
    header = (f"{'run':>3} {'variant':11} {'T_cross':>14} {'predicted':>9} {'T0':>7} {'T3':>7} {'T5':>7} {'T6':>7} "
              f"{'lead':>6} {'peak':>6} {'OOM':>4} {'failed':>9}")
    rows = [header]
    for i, run in enumerate(runs, 1):
        t = run["leak"]
        cross = rel(t, "t_cross") + ("" if t["t_cross_observed"] else " (ext)")
        lead = "-" if t["lead_time"] is None else f"{t['lead_time']:+.2f}"
        peak = "-" if t["peak"] is None else f"{t['peak']:.1f}"
        rows.append(f"{i:>3} {run['variant']:11} {cross:>14} {rel(t, 'predicted_crossing'):>9} {rel(t, 't0'):>7} "
                    f"{rel(t, 't3'):>7} {rel(t, 't5'):>7} {rel(t, 't6'):>7} {lead:>6} {peak:>6} "
                    f"{'yes' if t['oom'] else 'no':>4} {run['probe']['failures']:>4}/{run['probe']['requests']:<4}")
    return "\n".join(rows)


def run_variants(lab: labinfo.Lab, settings: Settings, runs: int, *, variants_: Sequence[str] = ("predictive", "threshold"),
                 say: Callable[[str], None] = print, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """`runs` runs of each variant, in the order given; every run's record, appended to `into` (when
    given) as it ends, so a caller keeps the runs made before a failure."""
    scenario = Scenario3(lab, settings)
    out: list[dict[str, Any]] = [] if into is None else into
    for variant in variants_:
        with variants.rule_variant(scenario.client, variant, nodes=len(lab.node_sockets), say=say):
            for i in range(1, runs + 1):
                say(f"==> scenario 3 ({variant} rules, {settings.metric} {settings.start:g} -> {settings.end:g} % "
                    f"over {settings.ramp:g} s) {i}/{runs}")
                run = scenario.run_once(variant)
                out.append(run)
                say("    " + format_table([run]).splitlines()[1])
                time.sleep(settings.settle)
    return out


def lead_goal(runs: Sequence[dict[str, Any]], *, share: float = 0.8) -> tuple[bool, str]:
    """At least `share` of the predictive runs have lead time >= 0."""
    mine = [r for r in runs if r.get("variant") == "predictive"]
    good = sum(1 for r in mine if r["leak"]["lead_time"] is not None and r["leak"]["lead_time"] >= 0)
    return bool(mine) and good >= share * len(mine), f"lead time >= 0 in {good} of {len(mine)} predictive runs"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = Settings()
    parser = argparse.ArgumentParser(prog="stress_scenario3", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant (default %(default)s)")
    parser.add_argument("--variants", nargs="+", choices=variants.VARIANTS, default=["predictive", "threshold"],
                        help="rule variants, in this order (default: %(default)s)")
    parser.add_argument("--metric", choices=("mem", "cpu"), default=d.metric, help="what climbs (default %(default)s)")
    parser.add_argument("--start", type=float, default=d.start, help="%% of the limit at the start (default %(default)s)")
    parser.add_argument("--end", type=float, default=d.end, help="%% of the limit after the ramp (default %(default)s)")
    parser.add_argument("--ramp", type=float, default=d.ramp, help="s from start to end (default %(default)s)")
    parser.add_argument("--level", type=float, help="threshold for T_cross, %% (default: 80 for mem, 75 for cpu)")
    parser.add_argument("--settle", type=float, default=d.settle, help="s after each run (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON (default results/scenario3-<time>.json)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if not 0 <= args.start < args.end <= 100 or args.ramp <= 0:
        parser.error("0 <= --start < --end <= 100 and --ramp > 0 please")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"scenario3-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


@labinfo.lab_tool("stress_scenario3")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(metric=args.metric, start=args.start, end=args.end, ramp=args.ramp, level=args.level,
                        settle=args.settle)
    lab = labinfo.check_lab()
    runs = run_variants(lab, settings, args.runs, variants_=args.variants)
    print(format_table(runs))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"records": runs}, indent=2) + "\n")
    ok, detail = lead_goal(runs)
    print(f"==> {detail} (goal: at least 4 of 5); results: {args.output}")
    return 0 if ok or "predictive" not in args.variants else 1


if __name__ == "__main__":
    sys.exit(main())
