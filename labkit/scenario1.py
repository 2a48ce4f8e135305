"""Scenario 1 on the lab (`tests/scripts/stress_scenario1`): a container problem, and SwarmGuard moves it first.

Per iteration: the probe runs inside the overlay (every 100 ms, name resolved per request) for the
whole run; the web-stress task gets CPU and memory stress with no network stress
(/stress/combined?cpu=..&memory=..&ramp=..); the exporter's alert makes the controller migrate it;
the run ends when the controller's `migrate` record is there and the old task is gone. Reported:
T0..T6 (the controller's ActionRecord), node before and after, the probe's failed requests and
downtime, MTTR T0->T5 and T0->T6; a table on stdout, JSON (report.py's `proactive` records) under
results/. `tests/scripts/stress_scenario1` is `main()`.

Between iterations: the stress of a task that is gone went with its container; the tool waits
`settle` seconds (longer than the migrate rule's 30 s cooldown, so the next breach is not held
back by it) and lifts the node exclusions SwarmGuard put on the service. A migration excludes the
old node for the controller's `exclusion_ttl` (300 s): with 3 workers two migrations in a row
would leave one eligible node and a third would be refused, so the tool removes the owned
constraints itself (docs/actions.md: an owned constraint removed by hand is forgotten by the
controller; relaxing a constraint moves no task).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller.actions.ownership import EXCLUSIONS_LABEL, exclusion_constraint, read_exclusions
from sgcommon.engine import EngineError, connect, translate
from sgcommon.engine.swarm import SwarmAdapter
from labkit import controller_api as api
from labkit import deploy, labinfo, mttr, onetask, timeline
from labkit.zerodowntime import ProbeRun
from sgcommon.version import add_version_argument


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard and how long scenario 1 pushes, and how long it waits."""

    cpu: float = 95.0  # % of the task's CPU limit (rule: cpu > cpu_high = 75)
    memory: float = 430.0  # MB of the 512M limit, ~90 % with the app's own (rule: mem > mem_high = 80)
    ramp: float = 5.0  # s from 0 to the targets
    hold: float = 60.0  # s of stress after the ramp (the migration comes long before)
    timeout: float = 90.0  # s allowed from the stress start to the migrate record and old task gone
    settle: float = 35.0  # s after an iteration (the migrate rule's cooldown is 30 s)
    interval: float = 0.1  # probe interval
    service: str = api.APP_SERVICE
    target: str = "http://web-stress:8080/health"


def stress_path(s: Settings) -> str:
    """CPU and memory, network left out (low): the `migrate-on-container-problem` condition."""
    return f"/stress/combined?cpu={s.cpu:g}&memory={s.memory:g}&duration={s.hold:g}&ramp={s.ramp:g}"


def ensure_deployed(client: Any) -> None:
    """Deploys the stack when web-stress or the controller is missing (a redeploy would undo others'
    live changes to a running stack, so a running one is left as it is)."""
    with translate("services"):
        names = {s["Spec"]["Name"] for s in client.services()}
    if {api.APP_SERVICE, api.CONTROLLER_SERVICE} <= names:
        return
    print("==> deploying the stack (labkit/deploy.py --lab)", flush=True)
    if deploy.main(["--lab", "--wait", "120"]) != 0:
        raise EngineError("labkit/deploy.py --lab failed")


def lift_exclusions(client: Any, service: str) -> list[str]:
    """Removes SwarmGuard's owned node exclusions from `service` (constraints and label, one update);
    the nodes lifted."""
    swarm = SwarmAdapter(client)
    nodes = sorted(read_exclusions(swarm.get_service(service).labels))
    if nodes:
        swarm.update_placement(service, remove=[exclusion_constraint(n) for n in nodes],
                               labels={EXCLUSIONS_LABEL: None})
    return nodes


def result_record(record: dict[str, Any], probe: dict[str, Any], *, node_before: str,
                  node_after: str | None) -> dict[str, Any]:
    """One run as report.py's `proactive` record (labkit/report.py ProactiveRun)."""
    return {"kind": "proactive", "scenario": "scenario1", "actions": [record],
            "probe": {k: probe[k] for k in ("requests", "failures", "longest_gap", "total_downtime")},
            "node_before": node_before, "node_after": node_after, "replicas_before": 1, "replicas_after": 1}


class Scenario1:
    """Runs scenario 1 on the lab through the host engine and the nodes' engines."""

    def __init__(self, lab: labinfo.Lab, settings: Settings = Settings()) -> None:
        self.lab, self.s = lab, settings
        self.client = connect(lab.host_socket, timeout=60)

    def run_once(self) -> dict[str, Any]:
        """One iteration; its `proactive` record (with extra keys for the table)."""
        ensure_deployed(self.client)
        lifted = lift_exclusions(self.client, self.s.service)
        if lifted:
            print(f"    lifted SwarmGuard exclusions of {', '.join(lifted)}", flush=True)
        task, node = onetask.only_task(self.client, self.s.service)
        seen = {r["id"] for r in api.events(self.client, limit=200)}
        probe = ProbeRun(self.lab.host_socket, image=labinfo.BASE_IMAGE, network=self.lab.network,
                         target=self.s.target, interval=self.s.interval, duration=self.s.timeout + 120).start()
        try:
            onetask.wait_steady(probe)
            started = time.time()
            answer = api.app_get(self.lab, task, node, stress_path(self.s))
            if answer.get("status") != "started":
                raise EngineError(f"the stress did not start: {answer}")
            record = api.eventually(
                lambda: next(iter(api.new_records(api.events(self.client), seen, action="migrate",
                                                  service=self.s.service)), None),
                timeout=self.s.timeout, what="the controller's migrate record")
            left = max(5.0, self.s.timeout - (time.time() - started))
            api.eventually(lambda: onetask.task_state(self.client, self.s.service, task["ID"]) not in onetask.UP,
                           timeout=left, what="the old task to be gone")
            time.sleep(2.0)  # a little probing after the old task is gone
        finally:
            summary = probe.finish(stop=True)
            onetask.stop_stress(self.lab, self.client, self.s.service, task, node)
        after = api.running_tasks(self.client, self.s.service)
        names = api.node_names(self.client)
        node_after = names.get(after[0]["NodeID"]) if len(after) == 1 else None
        run = result_record(record, summary, node_before=node, node_after=node_after)
        run["stress_started"] = started
        new_cid = after[0]["Status"].get("ContainerStatus", {}).get("ContainerID") if len(after) == 1 else None
        run["engine"] = timeline.engine_breakdown(self.lab.node_sockets, record, new=(node_after, new_cid),
                                                  old=(node, task["Status"]["ContainerStatus"]["ContainerID"]))
        return run


def format_table(runs: Sequence[dict[str, Any]]) -> str:
    header = (f"{'run':>4} {'result':8} {'node before -> after':24} {'T0->T5':>7} {'T0->T6':>7} {'T2-T1':>6} "
              f"{'T3-T2':>6} {'failed':>9} {'downtime':>8}")
    rows = [header]
    for i, run in enumerate(runs, 1):
        d = mttr.derived(run["actions"][0])
        p = run["probe"]
        rows.append(f"{i:>4} {run['actions'][0]['result']:8} {run['node_before'] + ' -> ' + str(run['node_after']):24} "
                    f"{mttr.cell(d['t0_t5'])} {mttr.cell(d['t0_t6'])} {mttr.cell(d['alert'], 6)} "
                    f"{mttr.cell(d['decision'], 6)} {p['failures']:>4}/{p['requests']:<4} {p['total_downtime']:8.3f}")
    return "\n".join(rows)


def parts_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per run: the spans and the engine-measured parts of T4->T5 and T5->T6, and the failed requests."""
    rows = []
    for run in runs:
        parts = (run.get("engine") or {}).get("parts") or timeline.breakdown(timeline.marks(run["actions"][0], {}, {}))
        rows.append({**parts, "failed": run["probe"]["failures"]})
    return rows


def run_iterations(lab: labinfo.Lab, settings: Settings, iterations: int, *, label: str = "scenario 1") -> list[dict[str, Any]]:
    scenario = Scenario1(lab, settings)
    runs: list[dict[str, Any]] = []
    for i in range(1, iterations + 1):
        print(f"==> {label} {i}/{iterations}: stress {stress_path(settings)}", flush=True)
        run = scenario.run_once()
        runs.append(run)
        d = mttr.derived(run["actions"][0])
        print(f"    {run['node_before']} -> {run['node_after']}: {run['actions'][0]['result']}, T0->T5 "
              f"{mttr.cell(d['t0_t5']).strip()} s, T0->T6 {mttr.cell(d['t0_t6']).strip()} s, "
              f"{run['probe']['failures']}/{run['probe']['requests']} failed, "
              f"down {run['probe']['total_downtime']} s", flush=True)
        engine = run.get("engine") or {}
        print("    " + ", ".join(f"{k} {v}" for k, v in (engine.get("parts") or {}).items() if v is not None), flush=True)
        for error in engine.get("errors") or []:
            print(f"    no engine times: {error}", flush=True)
        if i < iterations:
            print(f"    settling {settings.settle:g} s", flush=True)
            time.sleep(settings.settle)
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = Settings()
    parser = argparse.ArgumentParser(prog="stress_scenario1", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--iterations", type=int, default=1, help="default %(default)s")
    parser.add_argument("--cpu", type=float, default=d.cpu, help="CPU %% of the limit (default %(default)s)")
    parser.add_argument("--memory", type=float, default=d.memory, help="MB (default %(default)s)")
    parser.add_argument("--ramp", type=float, default=d.ramp, help="s (default %(default)s)")
    parser.add_argument("--hold", type=float, default=d.hold, help="s (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=d.timeout, help="s per migration (default %(default)s)")
    parser.add_argument("--settle", type=float, default=d.settle, help="s between iterations (default %(default)s)")
    parser.add_argument("--interval", type=float, default=d.interval, help="probe interval s (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON (default results/scenario1-<time>.json)")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    for name in ("cpu", "memory", "hold", "timeout", "interval"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0")
    if args.ramp < 0 or args.settle < 0:
        parser.error("--ramp and --settle must be >= 0")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"scenario1-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(cpu=args.cpu, memory=args.memory, ramp=args.ramp, hold=args.hold, timeout=args.timeout,
                    settle=args.settle, interval=args.interval)


def save(path: Path, runs: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": list(runs)}, indent=2) + "\n")


@labinfo.lab_tool("stress_scenario1")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lab = labinfo.check_lab()
    runs = run_iterations(lab, settings_from(args), args.iterations)
    print(format_table(runs))
    print("\nwhere the time went, seconds (docs/fast-recovery.md; parts from the nodes' engine events):")
    print(timeline.format_parts(parts_rows(runs)))
    save(args.output, runs)
    print(f"==> results: {args.output}")
    failed = [r for r in runs if r["probe"]["failures"] or r["actions"][0]["result"] != "success"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
