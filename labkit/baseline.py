"""The reactive baseline (`tests/scripts/baseline_reactive_test`): how long plain Swarm leaves a 1-replica service down.

With no controller running, each iteration breaks the service's only task and times the recovery:
- `crash`: SIGKILL to the task's container through its node's own engine;
- `node-loss`: the task's node loses its engine (`swarm/lab node-stop`), and comes back afterwards.
Measured from the break: the new task's container started, the new task running (with a
healthcheck Swarm reports running only once healthy), and the first successful probe request
after the last failed one; plus the probe's failed requests and total downtime (the probe runs
inside the overlay network, labkit/zerodowntime.py). Results: a table on stdout and JSON
under results/. Lab only: it needs every node's engine.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgcommon.engine import EngineError, connect, translate
from labkit import labinfo
from labkit.probe import Record, summarize
from labkit.zerodowntime import ProbeRun
from sgcommon.version import add_version_argument

MODES = ("crash", "node-loss")
METRICS = ("task_started_s", "task_healthy_s", "first_ok_s", "downtime_s", "failed_requests")


@dataclasses.dataclass
class Iteration:
    """One break and its recovery; times in seconds after the break, None when not seen."""

    mode: str
    node: str
    broke_at: float
    task_started_s: float | None = None
    task_healthy_s: float | None = None
    first_ok_s: float | None = None
    downtime_s: float = 0.0
    failed_requests: int = 0
    requests: int = 0
    new_node: str = ""


def parse_timestamp(text: str) -> float:
    """Swarm's RFC 3339 timestamps carry nanoseconds; Python parses microseconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.timezone.utc).timestamp()
    return base + (float(f"0.{frac}") if frac else 0.0)


def stats(iterations: Sequence[Iteration]) -> dict[str, dict[str, float | None]]:
    """median/min/max of each metric over the iterations where it was seen."""
    out: dict[str, dict[str, float | None]] = {}
    for metric in METRICS:
        values = [v for v in (getattr(it, metric) for it in iterations) if v is not None]
        out[metric] = {
            "median": round(statistics.median(values), 3) if values else None,
            "min": round(min(values), 3) if values else None,
            "max": round(max(values), 3) if values else None,
            "n": len(values),
        }
    return out


def format_table(iterations: Sequence[Iteration], summary: dict[str, dict[str, float | None]]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else (str(value) if isinstance(value, int) else f"{value:.2f}")

    header = f"{'':10}" + "".join(f"{m:>17}" for m in METRICS)
    rows = [header]
    for i, it in enumerate(iterations, 1):
        rows.append(f"{f'#{i} ' + it.node:10}" + "".join(f"{cell(getattr(it, m)):>17}" for m in METRICS))
    for stat in ("median", "min", "max"):
        rows.append(f"{stat:10}" + "".join(f"{cell(summary[m][stat]):>17}" for m in METRICS))
    return "\n".join(rows)


def first_ok_after_outage(records: Sequence[Record], since: float) -> float | None:
    """Timestamp of the first success after the last failure that came after `since`."""
    after = [r for r in sorted(records, key=lambda r: r["ts"]) if r["ts"] >= since]
    failures = [r["ts"] for r in after if not r["ok"]]
    floor = failures[-1] if failures else since
    return next((r["ts"] for r in after if r["ok"] and r["ts"] > floor), None)


class Baseline:
    """Breaks and watches one service of the lab; all Docker calls through sgcommon.engine."""

    def __init__(self, lab: labinfo.Lab, service: str, *, interval: float, timeout: float,
                 target: str = "http://web-stress:8080/health", network: str = labinfo.NETWORK) -> None:
        self.lab, self.service, self.interval, self.timeout = lab, service, interval, timeout
        self.target, self.network = target, network
        self.client = connect(lab.host_socket, timeout=30)

    def tasks(self) -> list[dict[str, Any]]:
        with translate(f"tasks of {self.service}"):
            return self.client.tasks(filters={"service": self.service, "desired-state": "running"})

    def hostname(self, node_id: str) -> str:
        with translate(f"node {node_id}"):
            return self.client.inspect_node(node_id)["Description"]["Hostname"]

    def only_running_task(self, *, wait: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            running = [t for t in self.tasks() if t["Status"]["State"] == "running"]
            if len(running) == 1:
                return running[0]
            if time.monotonic() > deadline:
                raise EngineError(f"{self.service} has {len(running)} running tasks, not 1, after {wait:.0f} s")
            time.sleep(0.2)

    def break_task(self, mode: str, task: dict[str, Any], node: str) -> float:
        broke_at = time.time()
        if mode == "crash":
            container = task["Status"]["ContainerStatus"]["ContainerID"]
            node_client = connect(self.lab.socket_of(node), timeout=10)
            try:
                with translate(f"kill {container[:12]} on {node}"):
                    node_client.kill(container, "SIGKILL")
            finally:
                node_client.close()
        else:
            if labinfo.run_lab("node-stop", node).returncode != 0:
                raise EngineError(f"swarm/lab node-stop {node} failed")
        return broke_at

    def watch_replacement(self, old_id: str, it: Iteration) -> None:
        """Fills the task times of `it` from the replacement task's own state timestamps."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for task in self.tasks():
                if task["ID"] == old_id:
                    continue
                state, stamp = task["Status"]["State"], parse_timestamp(task["Status"]["Timestamp"])
                if state == "starting" and it.task_started_s is None:
                    it.task_started_s = round(stamp - it.broke_at, 3)
                if state == "running":
                    it.task_healthy_s = round(stamp - it.broke_at, 3)
                    it.task_started_s = it.task_started_s if it.task_started_s is not None else it.task_healthy_s
                    it.new_node = self.hostname(task["NodeID"])
                    return
            time.sleep(0.1)
        raise EngineError(f"no replacement task of {self.service} running {self.timeout:.0f} s after the break")

    def wait_served(self, probe: ProbeRun, since: float, *, settle: float = 1.0) -> float:
        """The first success after the outage, once `settle` seconds of successes followed it."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            records = probe.records
            first = first_ok_after_outage(records, since)
            if first is not None and records[-1]["ts"] - first >= settle:
                return first
            time.sleep(0.2)
        raise EngineError(f"the probe saw no success {self.timeout:.0f} s after the break")

    def wait_steady(self, probe: ProbeRun, *, oks: int = 10) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tail = probe.records[-oks:]
            if len(tail) == oks and all(r["ok"] for r in tail):
                return
            time.sleep(0.1)
        raise EngineError("the service is not served steadily before the break (probe failing)")

    def iteration(self, mode: str) -> Iteration:
        task = self.only_running_task()
        node = self.hostname(task["NodeID"])
        probe = ProbeRun(self.lab.host_socket, image=labinfo.BASE_IMAGE, network=self.network,
                         target=self.target, interval=self.interval,
                         duration=self.timeout + 90).start()
        try:
            self.wait_steady(probe)
            it = Iteration(mode=mode, node=node, broke_at=self.break_task(mode, task, node))
            self.watch_replacement(task["ID"], it)
            first_ok = self.wait_served(probe, it.broke_at)
            it.first_ok_s = round(first_ok - it.broke_at, 3)
        finally:
            probe.finish(stop=True)
            if mode == "node-loss":
                self.bring_back(node)
        window = summarize([r for r in probe.records if r["ts"] >= it.broke_at - self.interval])
        it.downtime_s, it.failed_requests, it.requests = window["total_downtime"], window["failures"], window["requests"]
        return it

    def bring_back(self, node: str) -> None:
        if labinfo.run_lab("node-start", node).returncode != 0:
            raise EngineError(f"swarm/lab node-start {node} failed")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with translate("nodes"):
                nodes = self.client.nodes(filters={"name": node})
            if any(n["Status"]["State"] == "ready" for n in nodes):
                return
            time.sleep(0.5)
        raise EngineError(f"{node} is not Ready 60 s after node-start")


def pause_controllers(client: Any) -> dict[str, int]:
    """Scales every *controller service to 0 (the baseline is Swarm alone); their replicas before."""
    paused: dict[str, int] = {}
    with translate("pause controllers"):
        for svc in client.services():
            mode = svc["Spec"].get("Mode", {}).get("Replicated")
            name = svc["Spec"]["Name"]
            if name.endswith("controller") and mode and mode.get("Replicas", 0) > 0:
                paused[name] = mode["Replicas"]
                _scale(client, name, 0)
    return paused


def _scale(client: Any, name: str, replicas: int) -> None:
    svc = client.inspect_service(name)
    client.update_service(svc["ID"], svc["Version"]["Index"], mode={"Replicated": {"Replicas": replicas}},
                          fetch_current_spec=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="baseline_reactive_test", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--mode", choices=MODES, default="crash", help="what breaks (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=5, help="default %(default)s")
    parser.add_argument("--service", default=f"{labinfo.STACK}_web-stress", help="default %(default)s")
    parser.add_argument("--target", default="http://web-stress:8080/health", help="probe URL (default %(default)s)")
    parser.add_argument("--interval", type=float, default=0.1, help="probe interval (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per recovery (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON results (default results/baseline-<mode>-<time>.json)")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    if args.interval <= 0 or args.timeout <= 0:
        parser.error("--interval and --timeout must be > 0")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"baseline-{args.mode}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


@labinfo.lab_tool("baseline_reactive_test")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lab = labinfo.check_lab()
    baseline = Baseline(lab, args.service, interval=args.interval, timeout=args.timeout, target=args.target)
    paused = pause_controllers(baseline.client)
    iterations: list[Iteration] = []
    try:
        for i in range(1, args.iterations + 1):
            print(f"==> {args.mode} {i}/{args.iterations}", flush=True)
            it = baseline.iteration(args.mode)
            iterations.append(it)
            print(f"    {it.node} -> {it.new_node}: started {it.task_started_s} s, healthy "
                  f"{it.task_healthy_s} s, served {it.first_ok_s} s, down {it.downtime_s} s, "
                  f"{it.failed_requests}/{it.requests} failed", flush=True)
    finally:
        for name, replicas in paused.items():
            with translate(f"restore {name}"):
                _scale(baseline.client, name, replicas)
    summary = stats(iterations)
    print(format_table(iterations, summary))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "mode": args.mode, "service": args.service, "probe_interval": args.interval,
        "workers": len(lab.node_sockets) - 1, "iterations": [dataclasses.asdict(i) for i in iterations],
        "stats": summary,
    }, indent=2))
    print(f"==> results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
