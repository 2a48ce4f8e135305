"""measure_mttr: T0-T6 and the latencies between them for one run of scenario 1 or 2.

The controller stamps every action's timeline (docs/controller.md): T0 breach sample, T1 alert
sent, T2 alert received, T3 decision, T4 first API call, T5 new task running (healthy), T6 old task
stopped. From one ActionRecord (its /events form) this derives alert latency T2-T1, decision
latency T3-T2, action time T5-T4, MTTR T0->T5 and T0->T6. `--scenario 1` runs scenario 1 once
(labkit/scenario1.py), `--scenario 2` runs `run_scenario2` once (labkit/scenario2.py),
`--last` only reads the newest matching record from the controller. `tests/scripts/measure_mttr`
is `main()`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sgcommon.engine import connect
from labkit import controller_api as api
from labkit import labinfo
from sgcommon.version import add_version_argument

SPANS = {  # name: (from, to, label)
    "alert": ("t1", "t2", "alert latency T2-T1"),
    "decision": ("t2", "t3", "decision latency T3-T2"),
    "action": ("t4", "t5", "action T5-T4"),
    "t0_t5": ("t0", "t5", "MTTR T0->T5"),
    "t0_t6": ("t0", "t6", "MTTR T0->T6"),
}
PRIMARY = {1: "migrate", 2: "scale_up"}


def derived(record: Mapping[str, Any]) -> dict[str, float | None]:
    """Each span of SPANS in seconds (None when either end is missing)."""
    out: dict[str, float | None] = {}
    for name, (a, b, _) in SPANS.items():
        start, end = record.get(a), record.get(b)
        out[name] = None if start is None or end is None else round(float(end) - float(start), 4)
    return out


def cell(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


def format_record(record: Mapping[str, Any]) -> str:
    """T0..T6 relative to T0, then the derived spans."""
    t0 = record.get("t0")
    lines = [f"{record.get('action')} {record.get('service')} ({record.get('result')}): "
             f"{record.get('node_from') or '-'} -> {record.get('node_to') or '-'}, replicas "
             f"{record.get('replicas_before')} -> {record.get('replicas_after')}"]
    for i in range(7):
        t = record.get(f"t{i}")
        rel = "-" if t is None or t0 is None else f"+{float(t) - float(t0):.3f} s"
        lines.append(f"  T{i}  {rel:>12}  {'' if t is None else f'{float(t):.3f}'}")
    spans = derived(record)
    for name, (_, _, label) in SPANS.items():
        value = spans[name]
        lines.append(f"  {label:24} {'-' if value is None else f'{value:.3f} s'}")
    return "\n".join(lines)


def primary_action(run: Mapping[str, Any], scenario: int) -> dict[str, Any] | None:
    """The run's first action of the scenario's kind (migrate / scale_up)."""
    return next((a for a in run.get("actions", []) if a.get("action") == PRIMARY[scenario]), None)


def run_one(scenario: int, lab: labinfo.Lab) -> dict[str, Any]:
    if scenario == 1:
        from labkit.scenario1 import Scenario1
        return Scenario1(lab).run_once()
    from labkit.suite import scenario2_once
    return scenario2_once(lab)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="measure_mttr", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--scenario", type=int, choices=(1, 2), required=True)
    parser.add_argument("--last", action="store_true",
                        help="do not run the scenario: the controller's newest record of its action")
    parser.add_argument("--output", type=Path, help="JSON (default results/mttr-scenarioN-<time>.json)")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"mttr-scenario{args.scenario}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


@labinfo.lab_tool("measure_mttr")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lab = labinfo.check_lab()
    if args.last:
        found = [r for r in api.events(connect(lab.host_socket, timeout=30), limit=200)
                 if r.get("action") == PRIMARY[args.scenario]]
        if not found:
            print(f"measure_mttr: the controller has no {PRIMARY[args.scenario]} record", file=sys.stderr)
            return 1
        record: dict[str, Any] | None = max(found, key=lambda r: r.get("t0") or 0.0)
        doc: dict[str, Any] = {"record": record}
    else:
        run = run_one(args.scenario, lab)
        record = primary_action(run, args.scenario)
        doc = {"records": [run]}
    if record is None:
        print(f"measure_mttr: the run has no {PRIMARY[args.scenario]} action", file=sys.stderr)
        return 1
    print(format_record(record))
    doc["derived"] = derived(record)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"==> results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
