"""Faults on the lab, each measured (`tests/scripts/chaos`): what SwarmGuard did, the failed requests
the availability probe saw, and the state the fault left (docs/chaos.md).

`tests/scripts/chaos --case NAME|all --runs N` runs each case N times on the multi-node lab. Every run
takes the lab lock (/tmp/swarmguard-lab.lock, released between runs so others' work can go in
between; `--no-lock` when the caller holds it), puts the lab in its known state, makes its fault
(labkit/chaos_cases.py), and restores the lab in the same locked stretch whatever happened:
links up, every engine and the sink running, all nodes Ready, the stack deployed as its files say
and SwarmGuard's labels gone (labkit/chaos_lab.py `restore`). A table goes to stdout and every run,
with its checks and figures, to results/chaos-<time>.json. Exit 1 when a check failed.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import chaos_cases as cases
from labkit import chaos_lab as cl
from labkit import labinfo
from sgcommon.engine import EngineError, connect
from sgcommon.version import add_version_argument

LOCK = Path("/tmp/swarmguard-lab.lock")
RESULTS = labinfo.REPO / "results"


@dataclass(frozen=True)
class Case:
    name: str
    help: str
    run: Callable[[cases.Ctx], cases.Outcome]


CASES: dict[str, Case] = {c.name: c for c in (
    Case("controller-kill", "the controller SIGKILLed mid-migration (after T4, before T6)", cases.controller_kill),
    Case("engine-kill-source", "the source worker's dockerd SIGKILLed during a migration",
         lambda ctx: cases.engine_kill(ctx, which="source")),
    Case("engine-kill-target", "the target worker's dockerd SIGKILLed during a migration",
         lambda ctx: cases.engine_kill(ctx, which="target")),
    Case("manager-restart", "the manager's engine (host dockerd) restarted while the controller runs",
         lambda ctx: cases.manager_restart(ctx, log_dir=RESULTS)),
    Case("worker-cut", "the worker holding the only replica cut off from the network for 30 s", cases.worker_cut),
    Case("sink-down", "victoria-metrics down for 60 s; then a sink that answers 400", cases.sink_down),
    Case("operator-remove", "an operator removes the service while a migration waits",
         lambda ctx: cases.operator_change(ctx, how="remove")),
    Case("operator-update", "an operator removes SwarmGuard's exclusion while the migration waits",
         lambda ctx: cases.operator_change(ctx, how="update")),
    Case("alert-flood", "1000 alerts/s for 10 s against the controller, real token, through the overlay", cases.alert_flood),
)}


@contextlib.contextmanager
def lab_lock(path: Path | None, say: Callable[[str], None]) -> Iterator[None]:
    """Holds the lab lock (flock, as the team's shell commands take it); nothing when `path` is None."""
    if path is None:
        yield
        return
    with path.open("a") as handle:
        began = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        waited = time.monotonic() - began
        if waited > 1:
            say(f"    (waited {waited:.0f} s for the lab lock)")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_case(case: Case, run: int, *, build: bool, lock: Path | None, say: Callable[[str], None] = print,
             tune: Callable[[cases.Ctx], None] | None = None) -> dict[str, Any]:
    """One run of one case inside one locked stretch: known state, fault, measurements, restore."""
    record: dict[str, Any] = {"case": case.name, "run": run}
    with lab_lock(lock, say):
        began = time.time()
        say(f"==> {case.name} (run {run}): {case.help}")
        outcome = cases.Outcome()
        ctx: cases.Ctx | None = None
        try:
            if build:
                cl.lab("build")
            lab = labinfo.check_lab()
            cl.restore(lab, say=say)
            ctx = cases.Ctx(lab=lab, client=connect(lab.host_socket, timeout=60), say=say)
            if tune is not None:
                tune(ctx)
            outcome = case.run(ctx)
        except Exception as exc:  # noqa: BLE001 - a case that breaks is a result, and the lab is restored
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()[-3000:]
            say(f"    ERROR {record['error']}")
        finally:
            if ctx is not None:
                ctx.client.close()
            try:
                record["restore"] = cl.restore(labinfo.check_lab(), say=say)
            except Exception as exc:  # noqa: BLE001
                record["restore_error"] = f"{type(exc).__name__}: {exc}"
                say(f"    RESTORE FAILED {record['restore_error']}")
        record.update(dataclasses.asdict(outcome))
        record["started"] = began
        record["seconds"] = round(time.time() - began, 1)
    record["ok"] = "error" not in record and "restore_error" not in record and all(c["ok"] for c in record["checks"])
    for check in record["checks"]:
        say(f"    {'ok  ' if check['ok'] else 'FAIL'} {check['name']}{': ' + check['detail'] if check['detail'] else ''}")
    return record


def cell(text: object, width: int) -> str:
    raw = str(text)
    return raw if len(raw) <= width else raw[: width - 1] + "…"


def format_table(records: Sequence[dict[str, Any]]) -> str:
    rows = [f"{'case':20} {'run':>3} {'failed':>10} {'ok':3}  what SwarmGuard did / state afterwards"]
    for r in records:
        probe = r.get("probe") or {}
        failed = f"{probe.get('failures', '?')}/{probe.get('requests', '?')}"
        did = cell(r.get("did") or r.get("error"), 200)
        rows.append(f"{r['case']:20} {r['run']:>3} {failed:>10} {'yes' if r['ok'] else 'NO':3}  {did}")
        rows.append(f"{'':39}  -> {cell(r.get('state_after') or '', 200)}")
    return "\n".join(rows)


def summary(records: Sequence[dict[str, Any]]) -> str:
    """Per case: runs, failed requests median (min-max), runs with every check passed."""
    lines = [f"{'case':20} {'runs':>4} {'failed requests: median (min-max)':>34} {'all checks ok':>14}"]
    for name in dict.fromkeys(r["case"] for r in records):
        mine = [r for r in records if r["case"] == name]
        failed = [r["probe"]["failures"] for r in mine if r.get("probe")]
        spread = f"{statistics.median(failed):g} ({min(failed)}-{max(failed)})" if failed else "-"
        lines.append(f"{name:20} {len(mine):>4} {spread:>34} {sum(r['ok'] for r in mine):>10}/{len(mine)}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chaos", description="Faults on the lab, each measured with the availability probe (docs/chaos.md).",
        epilog="cases: " + "; ".join(f"{c.name}: {c.help}" for c in CASES.values()))
    add_version_argument(parser)
    parser.add_argument("--case", action="append", dest="cases", metavar="NAME",
                        help=f"a case, or all (repeatable; default all): {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=1, help="runs of each case (default %(default)s)")
    parser.add_argument("--build", action="store_true", help="`swarm/lab build` (this checkout's images) before each run")
    parser.add_argument("--no-lock", action="store_true", help="do not take the lab lock (the caller holds it)")
    parser.add_argument("--lock-file", type=Path, default=LOCK, help="the lab lock (default %(default)s)")
    parser.add_argument("--engine-fault", choices=("kill", "stop"), default="kill",
                        help="engine-kill-*: SIGKILL the worker's dockerd, or stop it as node-stop does (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON (default results/chaos-<time>.json)")
    args = parser.parse_args(argv)
    names = args.cases or ["all"]
    if "all" in names:
        names = list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}; cases: {', '.join(CASES)}, all")
    args.cases = names
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.output is None:
        args.output = RESULTS / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


def save(path: Path, records: Sequence[dict[str, Any]], argv: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"command": ["tests/scripts/chaos", *argv], "runs": list(records)}, indent=2, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    given = list(argv if argv is not None else sys.argv[1:])
    try:
        labinfo.check_lab()
    except labinfo.LabNotUp as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    records: list[dict[str, Any]] = []
    try:
        for name in args.cases:
            for run in range(1, args.runs + 1):
                records.append(run_case(CASES[name], run, build=args.build, lock=None if args.no_lock else args.lock_file,
                                        tune=lambda ctx: setattr(ctx, "engine_fault", args.engine_fault)))
                save(args.output, records, given)
                if "restore_error" in records[-1]:
                    print("chaos: the lab could not be restored; stopping", file=sys.stderr)
                    return 1
    except (EngineError, KeyboardInterrupt) as exc:
        print(f"chaos: stopped: {exc!r}", file=sys.stderr)
    print(format_table(records))
    print()
    print(summary(records))
    print(f"==> results: {args.output}")
    return 0 if records and all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
