"""The fast-leak test on the lab (`tests/scripts/fast_leak`): a service we did not build leaks tens of MB/s.

A user's own small service, as they would deploy it: the lab's base image running a python HTTP
server (`SERVER`, passed as `python3 -c`), a HEALTHCHECK with curl every second, start-first
updates, `swarmguard.enable=true`, a 256 MB memory limit, on the workers. `GET /leak?rate=30` makes
it hold 30 MB more every second, in 0.1 s pieces, until the kernel's OOM killer stops it. The
availability probe (labkit/zerodowntime.py) requests `http://sgi-fastleak:8080/` every 100 ms
inside the overlay for the whole run.

Per run: lift SwarmGuard's node exclusions, wait for one running task, probe steadily, start the
leak, then wait for the controller's migrate record and the old task gone, or for the old
container's death. Reported (labkit/leak.py): when memory would reach the limit (observed, or
extrapolated from the climb when the container was stopped first), the rule's predicted crossing,
T0/T3/T5/T6, whether the kernel OOM-killed the old container, and the probe's failed requests.
The goal with the shipped rules: 0 failed requests and no OOM kill in every run.

`--variant threshold` runs it with today's threshold rule alone (labkit/variants.py);
`--exporter-predict off` with the exporters' predictive alerts off (what the alert path brings).
Between runs `settle` seconds pass (longer than the migrate rules' 30 s cooldown). The service is
removed at the end. `tests/scripts/fast_leak` is `main()`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit import controller_api as api
from labkit import labinfo, labreset, leak, onetask, sink, variants
from labkit.scenario1 import lift_exclusions
from labkit.zerodowntime import ProbeRun
from sgcommon.engine import connect, translate
from sgcommon.version import add_version_argument

NAME = "sgi-fastleak"
MIB = 1 << 20
NS = 1_000_000_000
# The user's service: the standard library's HTTP server; /leak?rate=R holds R MiB more every second,
# written at once (bytes filled with 0x01 are resident pages), until the memory limit ends it.
SERVER = r'''
import http.server, signal, sys, threading, time
held = []
def leak(rate):
    piece, due = int(rate * 1048576 / 10), time.monotonic()
    while True:
        held.append(b"\x01" * piece)
        due += 0.1
        time.sleep(max(0.0, due - time.monotonic()))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/leak?rate="):
            threading.Thread(target=leak, args=(float(self.path.split("=", 1)[1]),), daemon=True).start()
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
http.server.ThreadingHTTPServer(("", 8080), Handler).serve_forever()
'''


@dataclasses.dataclass(frozen=True)
class Settings:
    rate: float = 30.0  # MiB/s
    limit_mb: int = 256
    cpus: float = 0.25
    timeout: float = 60.0  # s from the leak's start to the migration done or the container dead
    settle: float = 35.0  # s between runs (the migrate rules' cooldown is 30 s)
    interval: float = 0.1  # probe interval
    window: float = 5.0  # the fast-leak rule's predict() window, for the predicted crossing
    service: str = NAME


def service_spec(network_id: str, s: Settings) -> dict[str, Any]:
    """create_service arguments of the user's leaking service."""
    template = {
        "ContainerSpec": {
            "Image": labinfo.BASE_IMAGE,
            "Command": ["python3", "-u", "-c", SERVER],
            "Healthcheck": {"Test": ["CMD", "curl", "-fsS", "-o", "/dev/null", "-m", "1", "http://127.0.0.1:8080/"],
                            "Interval": NS, "Timeout": NS, "Retries": 3, "StartPeriod": 5 * NS},
            "StopGracePeriod": 10 * NS,
        },
        "Resources": {"Limits": {"MemoryBytes": s.limit_mb * MIB, "NanoCPUs": int(s.cpus * NS)}},
        "RestartPolicy": {"Condition": "any", "Delay": 5 * NS},
        "Placement": {"Constraints": ["node.role == worker"]},
        "Networks": [{"Target": network_id, "Aliases": [s.service]}],
    }
    return {"task_template": template, "name": s.service,
            "labels": {labreset.E2E_LABEL: "fastleak", "swarmguard.enable": "true"},
            "mode": {"Replicated": {"Replicas": 1}},
            "update_config": {"Parallelism": 1, "Order": "start-first", "FailureAction": "rollback", "Monitor": 5 * NS},
            "endpoint_spec": {"Mode": "dnsrr"}}


def rule_window(condition: str, default: float) -> float:
    """The window (seconds) of the first predict() in a rule's condition text, `default` without one."""
    match = re.search(r"predict\(\s*\w+\s*,\s*[0-9.]+\s*(?:ms|s|m|h)\s*,\s*([0-9.]+)\s*(ms|s|m|h)\s*\)", condition)
    if match is None:
        return default
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]


class FastLeak:
    """Runs the fast-leak test on the lab through the host engine and the nodes' engines."""

    def __init__(self, lab: labinfo.Lab, settings: Settings = Settings()) -> None:
        self.lab, self.s = lab, settings
        self.client = connect(lab.host_socket, timeout=60)

    def ensure_service(self) -> None:
        with translate(f"services named {self.s.service}"):
            found = self.client.services(filters={"name": self.s.service})
        if not any(svc["Spec"]["Name"] == self.s.service for svc in found):
            with translate(f"create {self.s.service}"):
                network_id = self.client.inspect_network(self.lab.network)["Id"]
                self.client.create_service(**service_spec(network_id, self.s))

    def remove_service(self) -> None:
        with translate(f"remove {self.s.service}"):
            for svc in self.client.services(filters={"name": self.s.service}):
                if svc["Spec"]["Name"] == self.s.service:
                    self.client.remove_service(svc["ID"])

    def run_once(self) -> dict[str, Any]:
        """One run; its `proactive` record (scenario "fastleak") with the leak's timeline."""
        self.ensure_service()
        lift_exclusions(self.client, self.s.service)
        task, node = onetask.only_task(self.client, self.s.service)
        container = task["Status"]["ContainerStatus"]["ContainerID"]
        seen = {r["id"] for r in api.events(self.client, limit=200)}
        probe = ProbeRun(self.lab.host_socket, image=labinfo.BASE_IMAGE, network=self.lab.network,
                         target=f"http://{self.s.service}:8080/", interval=self.s.interval,
                         duration=self.s.timeout + 90).start()
        record: dict[str, Any] | None = None
        try:
            onetask.wait_steady(probe)
            started = time.time()
            api.task_exec(self.lab, task, node, ["curl", "-sS", "-m", "2", f"http://127.0.0.1:8080/leak?rate={self.s.rate:g}"])

            record = onetask.await_migration(self.client, self.s.service, task["ID"], seen, timeout=self.s.timeout)
        finally:
            summary = probe.finish(stop=True)
        fate = leak.container_fate(self.lab, node, container)
        time.sleep(6.0)  # the exporter writes its samples every 5 s
        points = sink.export_series(container, "mem", start=started - 30, end=time.time())
        window = rule_window(_rule_text(record), self.s.window) if record else self.s.window
        timeline = leak.timeline(record, points, metric="mem", level=100.0, started=started, window=window, fate=fate)
        timeline["rate_mb_s"] = self.s.rate
        after = api.running_tasks(self.client, self.s.service)
        names = api.node_names(self.client)
        return {"kind": "proactive", "scenario": "fastleak", "actions": [record] if record else [],
                "probe": {k: summary[k] for k in ("requests", "failures", "longest_gap", "total_downtime")},
                "node_before": node, "node_after": names.get(after[0]["NodeID"]) if len(after) == 1 else None,
                "replicas_before": 1, "replicas_after": 1, "leak": timeline}


def _rule_text(record: dict[str, Any]) -> str:
    """The condition text the record's reason starts with (`<condition> held for ...`)."""
    reason = str(record.get("reason") or "")
    return reason.split(" held for ", 1)[0]


def run_line(run: dict[str, Any]) -> str:
    t = run["leak"]
    p = run["probe"]
    action = run["actions"][0] if run["actions"] else {}

    def rel(key: str) -> str:
        value = t.get(key)
        return "-" if value is None else f"{value - t['started']:+.2f}"

    return (f"{run['node_before']} -> {run['node_after']}: {action.get('rule', 'no migration')}, "
            f"limit at {rel('t_cross')}{'' if t['t_cross_observed'] else ' (extrapolated)'}, "
            f"predicted {rel('predicted_crossing')}, T3 {rel('t3')}, T5 {rel('t5')}, T6 {rel('t6')}, "
            f"OOM {'at ' + rel('oom_at') if t['oom'] else 'no'}, {p['failures']}/{p['requests']} failed "
            "(seconds after the leak's start)")


def run_many(lab: labinfo.Lab, settings: Settings, runs: int, *, variant: str = "predictive",
             exporter_predict: bool = True, say: Any = print) -> list[dict[str, Any]]:
    test = FastLeak(lab, settings)
    out: list[dict[str, Any]] = []
    nodes = len(lab.node_sockets)
    try:
        with variants.rule_variant(test.client, variant, nodes=nodes, say=say), \
                _exporter_predict(test.client, exporter_predict, nodes=nodes, say=say):
            for i in range(1, runs + 1):
                say(f"==> fast leak {i}/{runs} ({variant} rules, {settings.rate:g} MiB/s toward {settings.limit_mb} MB)")
                run = test.run_once()
                run["variant"] = variant
                run["exporter_predict"] = exporter_predict
                out.append(run)
                say("    " + run_line(run))
                if i < runs:
                    time.sleep(settings.settle)
    finally:
        test.remove_service()
    return out


def _exporter_predict(client: Any, on: bool, *, nodes: int, say: Any) -> Any:
    import contextlib

    if on:
        return contextlib.nullcontext()
    return variants.exporter_env(client, {"EXPORTER_PREDICT_HORIZON": "0"}, nodes=nodes, say=say)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = Settings()
    parser = argparse.ArgumentParser(prog="fast_leak", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--runs", type=int, default=5, help="default %(default)s")
    parser.add_argument("--rate", type=float, default=d.rate, help="MiB/s the service leaks (default %(default)s)")
    parser.add_argument("--limit", type=int, default=d.limit_mb, help="memory limit, MB (default %(default)s)")
    parser.add_argument("--variant", choices=variants.VARIANTS, default="predictive",
                        help="the shipped rules (predictive) or the threshold rule alone (default %(default)s)")
    parser.add_argument("--exporter-predict", choices=("on", "off"), default="on",
                        help="the exporters' predictive alerts (default %(default)s)")
    parser.add_argument("--settle", type=float, default=d.settle, help="s between runs (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON (default results/fastleak-<time>.json)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rate <= 0 or args.limit < 64:
        parser.error("--runs >= 1, --rate > 0 and --limit >= 64 please")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"fastleak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    return args


def passed(run: dict[str, Any]) -> bool:
    """The goal: the service moved, 0 failed requests, no OOM kill."""
    action = run["actions"][0] if run["actions"] else None
    return bool(action and action.get("result") == "success" and run["probe"]["failures"] == 0
                and not run["leak"]["oom"])


@labinfo.lab_tool("fast_leak")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(rate=args.rate, limit_mb=args.limit, settle=args.settle)
    lab = labinfo.check_lab()
    runs = run_many(lab, settings, args.runs, variant=args.variant, exporter_predict=args.exporter_predict == "on")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"records": runs}, indent=2) + "\n")
    good = sum(passed(r) for r in runs)
    print(f"==> {good} of {len(runs)} runs moved with 0 failed requests and no OOM kill; results: {args.output}")
    return 0 if good == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
