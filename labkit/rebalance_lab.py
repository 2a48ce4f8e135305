"""Rebalancing after a node comes back, on the lab (`tests/scripts/rebalance_test`).

Per run, with the availability probe running inside the overlay for the whole run: the 4-replica
opted-in service (web-stress scaled to 4) is balanced (at most one task more on one worker than on
another); `swarm/lab node-stop N` stops a worker's engine; once Swarm has rescheduled its tasks on
the other workers, `swarm/lab node-start N` brings it back, empty. SwarmGuard's rebalance rule
(rules/default.yml, enabled for the run by a rule set of its own: this checkout's rule files plus
the lab rule, applied as `swarmguard-controller rules apply` does, docs/rules.md) must then move
tasks back, one at a time, start-first. The set lives in the lab Swarm's configs, where only the
lab controller reads it: nothing is written into the checkout, whose rules/ other tests read.
Measured: the task-count skew before and after, the time from the node's return (node-start
done) to a skew of at most 1, the probe's failed requests, and the moves: each task a rebalance
placed is watched for `--watch` seconds after the node returned (the last run watches
`--watch-last`, e.g. 600 s) and must not be moved again (no ping-pong). The probe's failed
requests are split by phase: the outage (node-stop until node-start is done), the rebalance (the
node's return until a skew of at most 1) and the rest of the watch.

Which worker stops (`--stop`): `rotate` takes one worker after the other. With 4 replicas on 3
workers that makes back-to-back runs unbalanceable by design: after run 1 the task it placed runs
on a node that the next outage fills up to the most tasks, and the action refuses to move while a
node with the most tasks runs a task placed within `moved_hold` (10 min; docs/actions.md).
`last-target` stops the worker the previous run's rebalance placed its task on (the first run,
or after a run without a move, the next in turn): that task ends with its node, so each run is a
fresh outage with the product's default `moved_hold`, and the runs can follow each other.

The lab is restored afterwards whatever happens: every stopped worker is started again, the rule
set is deactivated (the set active before, if any, is active again) and removed, the service goes
back to its replica count and SwarmGuard's labels on it are cleared. The lab lock is the caller's: run it as
`flock /tmp/swarmguard-lab.lock tests/scripts/rebalance_test --runs 5`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from controller.actions.ownership import ACTION_LABEL, MOVED_LABEL
from controller.ruleconfigs import RuleConfigs
from controller.rules import RuleError, load_rule_texts
from controller.rules.bundle import RuleBundle, decode, from_paths
from labkit import controller_api as api
from labkit import labinfo
from labkit.scenario1 import ensure_deployed
from labkit.zerodowntime import ProbeRun
from sgcommon.engine import EngineError, connect, translate
from sgcommon.engine.swarm import SwarmAdapter

RULE_NAME = "rebalance-after-node-returns"
LAB_RULE_FILE = "zz-rebalance-lab.yml"  # its name in the rule set
RULES_DIR = labinfo.REPO / "rules"


@dataclasses.dataclass(frozen=True)
class Settings:
    runs: int = 5
    replicas: int = 4
    watch: float = 90.0  # s after the node returned, per run
    watch_last: float = 90.0  # s after the node returned, last run (600 for the 10-minute check)
    goal: float = 60.0  # s from the node's return to a skew of at most 1
    reschedule_timeout: float = 120.0  # s for Swarm to move the stopped node's tasks
    interval: float = 0.1  # probe interval
    service: str = api.APP_SERVICE
    target: str = "http://web-stress:8080/health"
    stop: str = "rotate"  # which worker each run stops: see STOP_ORDERS


STOP_ORDERS = ("rotate", "last-target")


def next_worker(workers: Sequence[str], rows: Sequence[dict[str, Any]], *, order: str) -> str:
    """The worker the next run stops, after `rows` (the runs so far): one after the other
    ("rotate"), or where the previous run's rebalance placed its task ("last-target"; falls back to
    the next in turn when the previous run moved nothing or placed it on no known worker)."""
    if order not in STOP_ORDERS:
        raise ValueError(f"unknown stop order {order!r}: one of {', '.join(STOP_ORDERS)}")
    in_turn = workers[len(rows) % len(workers)]
    if order == "rotate" or not rows:
        return in_turn
    targets = [a.get("node_to") for a in rows[-1].get("actions", [])
               if a.get("action") == "rebalance" and a.get("result") == "success"]
    return targets[-1] if targets and targets[-1] in workers else in_turn


def failures_by_phase(records: Sequence[dict[str, Any]], *, back: float,
                      balanced_at: float | None) -> dict[str, int]:
    """The probe's failed requests in the outage (before `back`, node-start done), the rebalance
    (from `back` to `balanced_at`, a skew of at most 1; the whole watch if never balanced) and after."""
    end = float("inf") if balanced_at is None else balanced_at
    failed = [r["ts"] for r in records if not r["ok"]]
    return {"failed_outage": sum(1 for t in failed if t < back),
            "failed_rebalance": sum(1 for t in failed if back <= t < end),
            "failed_after_balanced": sum(1 for t in failed if t >= end)}


def lab_rule_text(default_rules: Path) -> str:
    """The shipped rebalance rule, enabled and renamed, for the service under test only."""
    doc = yaml.safe_load(default_rules.read_text())
    rule = next(r for r in doc["rules"] if r["name"] == RULE_NAME)
    lab = {**rule, "name": f"{RULE_NAME}-lab", "enabled": True, "services": [api.APP_SERVICE]}
    return ("# Written by labkit/rebalance_lab.py for a lab run and removed afterwards.\n"
            + str(yaml.safe_dump({"rules": [lab]}, sort_keys=False)))


def lab_rule_set(rules_dir: Path) -> RuleBundle:
    """The rule files in `rules_dir` (what the lab controller reads when no set is active) plus the lab
    rule, as one rule set; RuleError when it does not load or cannot be stored."""
    shipped = [(name, data) for name, data in from_paths([str(rules_dir)]).files if name != LAB_RULE_FILE]
    bundle = RuleBundle((*shipped, (LAB_RULE_FILE, lab_rule_text(rules_dir / "default.yml").encode())))
    problems = bundle.problems()
    if problems:
        raise RuleError(problems)
    load_rule_texts(bundle.files)  # as `rules apply` checks it: a broken set is never applied
    return bundle


def skew_of(counts: dict[str, int]) -> int:
    return max(counts.values()) - min(counts.values()) if counts else 0


class Lab:
    """The service, the workers and the controller, seen through the host engine."""

    def __init__(self, lab: labinfo.Lab, settings: Settings) -> None:
        self.lab, self.s = lab, settings
        self.client = connect(lab.host_socket, timeout=60)
        self.swarm = SwarmAdapter(self.client)
        self.workers = sorted(name for name in lab.node_sockets if name.startswith("worker-"))

    def ready_workers(self) -> list[str]:
        with translate("nodes"):
            nodes = self.client.nodes()
        return sorted(n["Description"]["Hostname"] for n in nodes
                      if n["Spec"].get("Role") == "worker" and n["Status"]["State"] == "ready"
                      and n["Spec"].get("Availability") == "active")

    def tasks(self) -> list[dict[str, Any]]:
        """The service's running tasks (healthy: Swarm says running only then)."""
        return api.running_tasks(self.client, self.s.service)

    def counts(self) -> dict[str, int]:
        """Running tasks per Ready worker (0 where none runs)."""
        names = api.node_names(self.client)
        counts = dict.fromkeys(self.ready_workers(), 0)
        for task in self.tasks():
            node = names.get(task["NodeID"])
            if node in counts:
                counts[node] += 1
        return counts

    def rules_loaded(self) -> float | None:
        try:
            return api.metric_value(api.controller_get(self.client, "/metrics"), "swarmguard_rules_loaded")
        except EngineError:
            return None

    def expect_rules(self, count: int, what: str) -> None:
        api.eventually(lambda: self.rules_loaded() == count, timeout=30, what=f"the controller to load {what}")

    def clear_labels(self) -> None:
        self.swarm.update_placement(self.s.service, labels={MOVED_LABEL: None, ACTION_LABEL: None})


def run_once(lab: Lab, node: str, *, watch: float, log: Callable[[str], None]) -> dict[str, Any]:
    """One outage and return of `node`; its row of the table."""
    s = lab.s
    api.eventually(lambda: (lambda c: len(lab.tasks()) == s.replicas and skew_of(c) <= 1)(lab.counts()),
                   timeout=180, what=f"{s.replicas} running tasks of {s.service} spread evenly")
    seen = {r["id"] for r in api.events(lab.client, limit=200)}
    probe = ProbeRun(lab.lab.host_socket, image=labinfo.BASE_IMAGE, network=lab.lab.network, target=s.target,
                     interval=s.interval, duration=3600).start()
    row: dict[str, Any] = {"node": node}
    stopped = started = False
    try:
        api.eventually(lambda: len(probe.records) >= 10 and all(r["ok"] for r in probe.records[-10:]),
                       timeout=60, every=0.2, what="the probe to see the service steadily")
        row["skew_steady"] = skew_of(lab.counts())
        stopped = True
        log(f"    node-stop {node}")
        if labinfo.run_lab("node-stop", node).returncode != 0:
            raise EngineError(f"swarm/lab node-stop {node} failed")
        stop_done = time.time()
        names = api.node_names(lab.client)
        api.eventually(lambda: (lambda t: len(t) == s.replicas and all(names.get(x["NodeID"]) != node for x in t))(
                           lab.tasks()), timeout=s.reschedule_timeout, every=1.0,
                       what=f"Swarm to reschedule the tasks of {node}")
        row["rescheduled_s"] = round(time.time() - stop_done, 1)
    finally:
        if stopped:
            log(f"    node-start {node}")
            started = labinfo.run_lab("node-start", node).returncode == 0
    if not started:
        probe.finish(stop=True)
        raise EngineError(f"swarm/lab node-start {node} failed")
    back = time.time()
    try:
        api.eventually(lambda: node in lab.ready_workers(), timeout=60, every=0.5, what=f"{node} Ready again")
        ready = time.time()
        before = lab.counts()
        row["skew_before"] = skew_of(before)
        survivors = {t["ID"] for t in lab.tasks()}
        first_seen: dict[str, float] = {}
        gone: dict[str, float] = {}
        balanced_at: float | None = None
        while time.time() < back + watch:
            now = time.time()
            ids = {t["ID"] for t in lab.tasks()}
            for task in ids - survivors - set(first_seen):
                first_seen[task] = now
            for task in set(first_seen) - ids - set(gone):
                gone[task] = now
            counts = lab.counts()
            if balanced_at is None and skew_of(counts) <= 1 and len(ids) == s.replicas:
                balanced_at = now
            time.sleep(0.5)
        row["skew_after"] = skew_of(lab.counts())
        row["back_to_balanced_s"] = None if balanced_at is None else round(balanced_at - back, 1)
        row["ready_to_balanced_s"] = None if balanced_at is None else round(balanced_at - ready, 1)
        row["node_ready_s"] = round(ready - back, 1)
        row["watched_s"] = round(time.time() - back)
    finally:
        summary = probe.finish(stop=True)
    records = api.new_records(api.events(lab.client, limit=200), seen, service=s.service)
    row["actions"] = [{k: r.get(k) for k in ("action", "result", "node_from", "node_to", "t4", "t5", "t6", "error")}
                      for r in records]
    row["moves"] = sum(1 for r in records if r.get("action") == "rebalance" and r.get("result") == "success")
    # A task a rebalance placed that went away again during the watch was moved twice.
    row["placed"] = len(first_seen)
    row["moved_again"] = len(gone)
    moves_per_task = Counter({task: 1 + (task in gone) for task in first_seen})
    row["max_moves_per_task"] = max(moves_per_task.values(), default=0)
    row["failed"], row["requests"] = summary["failures"], summary["requests"]
    # Which phase lost requests: the outage (node-stop until node-start), the rebalance after it
    # (until the skew is at most 1) or the rest of the watch.
    row.update(failures_by_phase(probe.records, back=back, balanced_at=balanced_at))
    row["failed_after_return"] = row["failed_rebalance"] + row["failed_after_balanced"]
    row["downtime_s"] = summary["total_downtime"]
    return row


def ok(row: dict[str, Any], goal: float) -> bool:
    """The run met the goals. Requests lost while the node was down are the outage's own cost (a
    request in flight to a task whose engine stops, before Swarm sees the node down): shown in the
    table, not counted against the rebalance, which acts only after the node is back."""
    return (row.get("back_to_balanced_s") is not None and row["back_to_balanced_s"] <= goal
            and row["failed_after_return"] == 0 and row["moved_again"] == 0 and row["skew_after"] <= 1)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def format_table(rows: Sequence[dict[str, Any]], goal: float) -> str:
    lines = [f"{'run':>3} {'node':9} {'skew before->after':>18} {'to skew<=1':>10} {'(from Ready)':>12} "
             f"{'failed':>10} {'(outage/rebal/after)':>20} {'moves':>5} {'moves/task':>10} {'moved again':>11} {'watched':>7} {'ok':>3}"]
    for i, row in enumerate(rows, 1):
        skews = f"{row.get('skew_before')} -> {row.get('skew_after')}"
        phases = f"{row['failed_outage']}/{row['failed_rebalance']}/{row['failed_after_balanced']}"
        lines.append(
            f"{i:>3} {row['node']:9} {skews:>18} {_seconds(row.get('back_to_balanced_s')):>10} "
            f"{_seconds(row.get('ready_to_balanced_s')):>12} "
            f"{str(row['failed']) + '/' + str(row['requests']):>10} "
            f"{phases:>20} {row['moves']:>5} {row['max_moves_per_task']:>10} "
            f"{row['moved_again']:>11} {str(row['watched_s']) + ' s':>7} {'yes' if ok(row, goal) else 'NO':>3}")
    values = sorted(r["back_to_balanced_s"] for r in rows if r.get("back_to_balanced_s") is not None)
    if values:
        lines.append(f"time from node-start to skew <= 1: median {values[len(values) // 2]:.1f} s, "
                     f"min {values[0]:.1f} s, max {values[-1]:.1f} s (goal {goal:g} s)")
    return "\n".join(lines)


def run(lab_info: labinfo.Lab, settings: Settings, *, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every run, then the lab restored (also on failure)."""
    lab = Lab(lab_info, settings)
    ensure_deployed(lab.client)
    original = lab.swarm.get_service(settings.service).replicas
    bundle = lab_rule_set(RULES_DIR)
    store = RuleConfigs(lab.swarm)
    before = store.active()  # a set someone applied: active again afterwards
    restore = decode(before.data, where=before.name) if before is not None else None
    base = len(load_rule_texts(restore.files if restore is not None else
                               [(n, d) for n, d in bundle.files if n != LAB_RULE_FILE]).rules)
    rows: list[dict[str, Any]] = []
    applied = None
    try:
        applied = store.apply(bundle)
        lab.expect_rules(len(load_rule_texts(bundle.files).rules), f"the lab rule set {applied.config.name}")
        lab.clear_labels()
        lab.swarm.scale(settings.service, settings.replicas)
        for i in range(1, settings.runs + 1):
            node = next_worker(lab.workers, rows, order=settings.stop)
            watch = settings.watch_last if i == settings.runs else settings.watch
            log(f"==> run {i}/{settings.runs}: {node} stops and comes back; watching {watch:g} s after its return")
            row = run_once(lab, node, watch=watch, log=log)
            rows.append(row)
            log(f"    skew {row['skew_before']} -> {row['skew_after']}, skew <= 1 after {row['back_to_balanced_s']} s, "
                f"{row['failed']}/{row['requests']} failed (outage {row['failed_outage']}, rebalance "
                f"{row['failed_rebalance']}, after {row['failed_after_balanced']}), {row['moves']} move(s), "
                f"moved again {row['moved_again']}")
    finally:
        log("==> restoring the lab")
        for worker in lab.workers:
            labinfo.run_lab("node-start", worker)
        try:
            store.reset()
            if restore is not None:
                store.apply(restore)
            lab.expect_rules(base, "the rules without the lab rule")
            if applied is not None and applied.created:
                lab.swarm.remove_config(applied.config.id)
            lab.swarm.scale(settings.service, original if original is not None else 1)
            lab.clear_labels()
            api.eventually(lambda: len(lab.tasks()) == (original or 1), timeout=120,
                           what=f"{settings.service} back to {original} replica(s)")
        except EngineError as exc:
            log(f"    restoring: {exc}")
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = Settings()
    parser = argparse.ArgumentParser(prog="rebalance_test", description=__doc__.split("\n")[0],
                                     epilog="Run under the lab lock: flock /tmp/swarmguard-lab.lock "
                                            "tests/scripts/rebalance_test --runs 5 --watch-last 600")
    parser.add_argument("--runs", type=int, default=d.runs, help="outages, one worker after the other (default %(default)s)")
    parser.add_argument("--replicas", type=int, default=d.replicas, help="replicas during the test (default %(default)s)")
    parser.add_argument("--watch", type=float, default=d.watch,
                        help="s watched after the node returned, per run (default %(default)s)")
    parser.add_argument("--watch-last", type=float, default=None,
                        help="s watched after the node returned in the last run (default: --watch); 600 checks "
                             "that no task moves twice within 10 minutes")
    parser.add_argument("--goal", type=float, default=d.goal, help="s to a skew <= 1 (default %(default)s)")
    parser.add_argument("--stop", choices=STOP_ORDERS, default=d.stop,
                        help="which worker each run stops: one after the other (rotate), or the one the previous "
                             "run's rebalance placed its task on (last-target: that task ends with its node, so "
                             "moved_hold does not block the next run; docs/actions.md) (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON rows (default results/rebalance-<time>.json)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.replicas < 2:
        parser.error("--runs must be >= 1 and --replicas >= 2")
    if args.watch <= 0 or (args.watch_last is not None and args.watch_last <= 0):
        parser.error("--watch and --watch-last must be > 0")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"rebalance-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


@labinfo.lab_tool("rebalance_test")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(runs=args.runs, replicas=args.replicas, watch=args.watch,
                        watch_last=args.watch if args.watch_last is None else args.watch_last, goal=args.goal,
                        stop=args.stop)
    rows = run(labinfo.check_lab(), settings, log=lambda text: print(text, flush=True))
    print(format_table(rows, settings.goal))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"settings": dataclasses.asdict(settings), "runs": rows}, indent=2) + "\n")
    print(f"==> results: {args.output}")
    return 0 if rows and all(ok(row, settings.goal) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
