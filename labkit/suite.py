"""run_full_test_suite: every end-to-end measurement on the lab, then the report.

First the lab is put in a known state (labkit/labreset.py: the stack as its files define it, no
stress, no stray test service or container), and what had to change is printed. In order: the
reactive baseline (crash) x N with the controllers paused (labkit/baseline.py),
scenario 1 x N (labkit/scenario1.py), scenario 2 x N (labkit/scenario2.py), scenario 3 x N
with each rule variant (labkit/scenario3.py), the fast leak x N (labkit/fastleak.py), the
concurrent test, the node-failure test, then the report (labkit/report.py: Markdown, JSON,
charts) and `test_results` written to the lab's sink. Every part saves its JSON into one folder
results/suite-<time>/ as it ends, so a part that fails loses nothing of the others; a part that
fails is recorded (concurrent/node-failure as failed checks) and the suite goes on.
`--short` is CI's version: baseline once, scenario 1 once, scenario 2 once; scenario 3, the fast
leak and the concurrent and node-failure checks are not run (the report shows the checks as not
run; tests/e2e/test_leak_on_lab.py runs one predictive scenario 3 run and one fast leak instead).

The concurrent test deploys three extra services from web-stress's own spec (same image,
healthcheck, limits, start-first; own names and DNS aliases; label swarmguard.enable=true) and one
unlabelled network sink, stresses them at once (A: CPU, C: memory, B: CPU + memory + network
towards the sink) and passes when the controller migrates A and C and scales B up; the services are
removed at the end. The node-failure test stops the engine of web-stress's worker
(`swarm/lab node-stop`): the controller must log the exporter unreachable, keep answering, see
`exporters_up` drop, Swarm must run web-stress on another node, and after `node-start`
`exporters_up` must recover.
`tests/scripts/run_full_test_suite` is `main()`.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sgcommon.engine import EngineError, connect, translate
from labkit import baseline, fastleak, labinfo, labreset, scenario1, scenario3
from labkit import controller_api as api
from labkit import report as report_mod
from sgcommon.version import add_version_argument

SINK_URL = labinfo.SINK
E2E_LABEL = labreset.E2E_LABEL
CONCURRENT = {"a": "sgi-conc-a", "b": "sgi-conc-b", "c": "sgi-conc-c", "sink": "sgi-conc-sink"}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ---------------------------------------------------------------- scenario 2

def scenario2_runs(lab: labinfo.Lab, iterations: int) -> list[dict[str, Any]]:
    """`iterations` scenario-2 runs (each calibrates its own hold rate), one `proactive` record each."""
    from labkit import scenario2  # imported late so the rest runs without it

    return [scenario2.run_scenario2(lab=lab) for _ in range(iterations)]


def scenario2_once(lab: labinfo.Lab) -> dict[str, Any]:
    [run] = scenario2_runs(lab, 1)
    return run


# ---------------------------------------------------------------- the concurrent test

def clone_spec(web: dict[str, Any], name: str, network_id: str, *, env: Sequence[str] = (),
               enable: bool = True) -> dict[str, Any]:
    """create_service arguments for a copy of web-stress named `name`: own DNS alias, no stack
    labels, no SwarmGuard exclusions, 1 replica, dnsrr; `swarmguard.enable` only with `enable`."""
    spec = copy.deepcopy(web["Spec"])
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    container["Labels"] = {k: v for k, v in (container.get("Labels") or {}).items()
                           if not k.startswith("com.docker.stack")}
    container["Env"] = [e for e in container.get("Env") or [] if not e.startswith("STRESS_NETWORK_PEER=")] + list(env)
    placement = template.setdefault("Placement", {})
    placement["Constraints"] = [c for c in placement.get("Constraints") or [] if not c.startswith("node.hostname!=")]
    template["Networks"] = [{"Target": network_id, "Aliases": [name]}]
    template.pop("ForceUpdate", None)
    labels = {E2E_LABEL: "concurrent"}
    if enable:
        labels["swarmguard.enable"] = "true"
    return {"task_template": template, "name": name, "labels": labels,
            "mode": {"Replicated": {"Replicas": 1}}, "update_config": spec.get("UpdateConfig"),
            "endpoint_spec": {"Mode": "dnsrr"}}


def concurrent_verdict(records: Sequence[dict[str, Any]]) -> tuple[bool, str]:
    """Pass when A and C were migrated and B scaled up, each with result success."""
    want = {CONCURRENT["a"]: "migrate", CONCURRENT["b"]: "scale_up", CONCURRENT["c"]: "migrate"}
    parts, ok = [], True
    for service, action in want.items():
        mine = [r for r in records if r.get("service") == service and r.get("action") == action]
        good = next((r for r in mine if r.get("result") == "success"), None)
        if good is None:
            ok = False
            parts.append(f"{service}: no successful {action}" + (f" ({mine[0].get('result')})" if mine else ""))
        else:
            span = (good.get("t5") or 0) - (good.get("t0") or 0)
            moved = (f"replicas {good.get('replicas_before')}->{good.get('replicas_after')}" if action == "scale_up"
                     else f"{good.get('node_from')}->{good.get('node_to')}")
            parts.append(f"{service}: {action} {moved} T0->T5 {span:.2f}s")
    return ok, "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class ConcurrentSettings:
    cpu: float = 95.0
    memory: float = 430.0
    network: float = 20.0  # Mbit/s from B to the sink: 20 % of the lab's 100 Mbit/s link, > net_high
    ramp: float = 5.0
    hold: float = 90.0
    timeout: float = 150.0


def concurrent_test(lab: labinfo.Lab, s: ConcurrentSettings = ConcurrentSettings()) -> dict[str, Any]:
    """The three services at once, under scenario 2's lab network thresholds (docs/load.md: B's
    traffic on this machine could never be 65 % of a 100 Mbit/s link)."""
    from labkit import scenario2  # the lab threshold adaptation lives there once

    client = connect(lab.host_socket, timeout=60)
    try:
        with scenario2.controller_thresholds(client, scenario2.LAB_THRESHOLDS, nodes=len(lab.node_sockets), say=say):
            return _concurrent(lab, client, s)
    finally:
        remove_concurrent(client)
        client.close()


def _concurrent(lab: labinfo.Lab, client: Any, s: ConcurrentSettings) -> dict[str, Any]:
    with translate("web-stress and network"):
        web = client.inspect_service(api.APP_SERVICE)
        network_id = client.inspect_network(lab.network)["Id"]
    remove_concurrent(client)
    seen = {r["id"] for r in api.events(client, limit=200)}
    with translate("create the concurrent test's services"):
        client.create_service(**clone_spec(web, CONCURRENT["sink"], network_id, enable=False))
        for key in ("a", "c"):
            client.create_service(**clone_spec(web, CONCURRENT[key], network_id))
        client.create_service(**clone_spec(web, CONCURRENT["b"], network_id,
                                           env=[f"STRESS_NETWORK_PEER={CONCURRENT['sink']}:8081"]))
    names = api.node_names(client)
    tasks = {k: api.eventually(functools.partial(api.running_tasks, client, n), timeout=120,
                               what=f"{n} running")[0] for k, n in CONCURRENT.items()}
    time.sleep(3.0)  # a few exporter samples of the idle services
    paths = {"a": f"/stress/cpu?target={s.cpu:g}&duration={s.hold:g}&ramp={s.ramp:g}",
             "c": f"/stress/memory?target={s.memory:g}&duration={s.hold:g}&ramp={s.ramp:g}",
             "b": f"/stress/combined?cpu={s.cpu:g}&memory={s.memory:g}&network={s.network:g}"
                  f"&duration={s.hold:g}&ramp={s.ramp:g}"}
    for key, path in paths.items():
        task = tasks[key]
        say(f"    {CONCURRENT[key]} on {names[task['NodeID']]}: {path}")
        api.app_get(lab, task, names[task["NodeID"]], path)

    def done() -> list[dict[str, Any]] | None:
        found = api.new_records(api.events(client, limit=200), seen)
        return found if concurrent_verdict(found)[0] else None

    try:
        records = api.eventually(done, timeout=s.timeout, every=1.0, what="A and C migrated, B scaled up")
    except api.WaitTimeout:
        records = api.new_records(api.events(client, limit=200), seen)
    passed, details = concurrent_verdict(records)
    return {"kind": "check", "test": "concurrent", "passed": passed, "details": details,
            "actions": records}


def remove_concurrent(client: Any) -> None:
    with translate("remove the concurrent test's services"):
        for svc in client.services(filters={"label": f"{E2E_LABEL}=concurrent"}):
            client.remove_service(svc["ID"])


# ---------------------------------------------------------------- the node-failure test

def controller_logged(client: Any, since: float, text: str) -> bool:
    container = api.controller_container(client)
    if not container:
        return False
    with translate("controller logs"):
        logs = client.logs(container, since=int(since) - 1, stdout=True, stderr=True).decode(errors="replace")
    return text in logs


def node_failure_test(lab: labinfo.Lab) -> dict[str, Any]:
    client = connect(lab.host_socket, timeout=60)
    steps: list[str] = []
    passed = False
    node = ""
    try:
        scenario1.lift_exclusions(client, api.APP_SERVICE)
        names = api.node_names(client)
        task = api.eventually(lambda: api.running_tasks(client, api.APP_SERVICE), timeout=60, what="web-stress")[0]
        node = names[task["NodeID"]]
        up_before = api.eventually(lambda: api.exporters_up(client), timeout=30, what="exporters_up")
        stopped = time.time()
        say(f"    node-stop {node} (web-stress there; exporters_up {up_before:g})")
        if labinfo.run_lab("node-stop", node).returncode != 0:
            raise EngineError(f"swarm/lab node-stop {node} failed")
        dropped = api.eventually(lambda: (lambda v: v if v is not None and v < up_before else None)(api.exporters_up(client)),
                                 timeout=60, what="exporters_up to drop")
        steps.append(f"exporters_up {up_before:g}->{dropped:g} after {time.time() - stopped:.1f}s")
        api.eventually(lambda: controller_logged(client, stopped, "exporter unreachable"), timeout=30,
                       what="the controller to log 'exporter unreachable'")
        steps.append("controller logged 'exporter unreachable'")
        moved = api.eventually(lambda: [t for t in api.running_tasks(client, api.APP_SERVICE)
                                        if api.node_names(client).get(t["NodeID"]) != node],
                               timeout=120, what="web-stress running on another node")
        steps.append(f"web-stress running on {api.node_names(client)[moved[0]['NodeID']]} after {time.time() - stopped:.1f}s")
        api.controller_get(client, "/healthz")
        steps.append("controller answering")
    except EngineError as exc:
        steps.append(f"FAILED: {exc}")
    finally:
        if node:
            back = _bring_back(client, node, up_before if "up_before" in locals() else None, steps)
            passed = back and not any(s.startswith("FAILED") for s in steps)
        client.close()
    return {"kind": "check", "test": "node_failure", "passed": passed, "details": "; ".join(steps)}


def _bring_back(client: Any, node: str, up_before: float | None, steps: list[str]) -> bool:
    started = time.time()
    if labinfo.run_lab("node-start", node).returncode != 0:
        steps.append(f"FAILED: swarm/lab node-start {node}")
        return False
    if up_before is None:
        return False
    try:
        api.eventually(lambda: (lambda v: v is not None and v >= up_before)(api.exporters_up(client)),
                       timeout=180, every=1.0, what=f"exporters_up back to {up_before:g}")
    except EngineError as exc:
        steps.append(f"FAILED: {exc}")
        return False
    steps.append(f"node-start: exporters_up back to {up_before:g} after {time.time() - started:.1f}s")
    return True


# ---------------------------------------------------------------- the suite

@dataclasses.dataclass
class Suite:
    lab: labinfo.Lab
    out: Path
    iterations: int
    short: bool = False
    docs: list[Path] = dataclasses.field(default_factory=list)
    reset_notes: list[str] = dataclasses.field(default_factory=list)

    def save(self, name: str, doc: dict[str, Any]) -> None:
        path = self.out / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        self.docs.append(path)
        say(f"    saved {path}")

    def part(self, name: str, fn: Callable[[], None]) -> None:
        say(f"==> {name}")
        started = time.monotonic()
        try:
            fn()
        except (EngineError, labinfo.LabNotUp, ImportError, AttributeError, TypeError) as exc:
            say(f"    {name} FAILED: {type(exc).__name__}: {exc}")
            self.save(f"{name}-error", {"records": []} | {"error": str(exc)})
        say(f"    {name} took {time.monotonic() - started:.0f} s")

    def baseline(self) -> None:
        runner = baseline.Baseline(self.lab, api.APP_SERVICE, interval=0.1, timeout=120.0)
        paused = baseline.pause_controllers(runner.client)
        iterations: list[baseline.Iteration] = []
        try:
            for i in range(1, self.iterations + 1):
                it = runner.iteration("crash")
                iterations.append(it)
                say(f"    crash {i}/{self.iterations}: {it.node} -> {it.new_node}, served {it.first_ok_s} s, "
                    f"down {it.downtime_s} s, {it.failed_requests}/{it.requests} failed")
        finally:
            for name, replicas in paused.items():
                with translate(f"restore {name}"):
                    baseline._scale(runner.client, name, replicas)
            if iterations:
                self.save("baseline-crash", {"mode": "crash", "service": api.APP_SERVICE,
                                             "iterations": [dataclasses.asdict(i) for i in iterations]})
        api.eventually(lambda: api.exporters_up(runner.client), timeout=120, what="the controller back")

    def scenario1(self) -> None:
        runs: list[dict[str, Any]] = []
        try:
            sc = scenario1.Scenario1(self.lab)
            for i in range(1, self.iterations + 1):
                run = sc.run_once()
                runs.append(run)
                say(f"    scenario 1 {i}/{self.iterations}: " + scenario1.format_table([run]).splitlines()[1].strip())
                time.sleep(sc.s.settle)
        finally:
            if runs:
                self.save("scenario1", {"records": runs})

    def scenario2(self) -> None:
        runs = scenario2_runs(self.lab, self.iterations)
        self.save("scenario2", {"records": runs})
        for r in runs:
            say(f"    scenario 2: {len(r.get('actions', []))} actions, probe {r.get('probe')}")

    def scenario3(self) -> None:
        runs: list[dict[str, Any]] = []
        try:
            scenario3.run_variants(self.lab, scenario3.Settings(), self.iterations, say=say, into=runs)
        finally:
            if runs:
                self.save("scenario3", {"records": runs})
        say(f"    scenario 3: {scenario3.lead_goal(runs)[1]}")

    def fastleak(self) -> None:
        runs = fastleak.run_many(self.lab, fastleak.Settings(), self.iterations, say=say)
        self.save("fastleak", {"records": runs})
        say(f"    fast leak: {sum(fastleak.passed(r) for r in runs)} of {len(runs)} moved with 0 failed requests "
            "and no OOM kill")

    def check(self, fn: Callable[[labinfo.Lab], dict[str, Any]], name: str) -> None:
        result = fn(self.lab)
        say(f"    {name}: {'PASS' if result['passed'] else 'FAIL'}: {result['details']}")
        self.save(name, result)

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        say("==> reset the lab to the known state")
        self.reset_notes = labreset.reset(self.lab, say=say)
        self.part("baseline", self.baseline)
        self.part("scenario1", self.scenario1)
        self.part("scenario2", self.scenario2)
        if not self.short:
            self.part("scenario3", self.scenario3)
            self.part("fastleak", self.fastleak)
            self.part("concurrent", lambda: self.check(concurrent_test, "concurrent"))
            self.part("node_failure", lambda: self.check(node_failure_test, "node_failure"))
        return self.report()

    def report(self) -> int:
        runs = report_mod.load_files(p for p in self.docs if not p.name.endswith("-error.json"))
        if not runs:
            say("no runs: no report")
            return 1
        built = report_mod.build_report(runs, not_run=() if not self.short else report_mod.CHECKS)
        files = report_mod.write_report(built, self.out / "report")
        print(report_mod.to_markdown(built), flush=True)
        say("==> " + ", ".join(str(f) for f in files))
        try:
            written = report_mod.write_results(SINK_URL, runs)
            say(f"==> {written} test_results points written to {SINK_URL}")
        except (ValueError, report_mod.WriteError, OSError) as exc:
            say(f"test_results not written: {exc}")
        return 0 if built.passed else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_full_test_suite", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--iterations", type=int, default=5, help="default %(default)s")
    parser.add_argument("--short", action="store_true",
                        help="CI: baseline, scenario 1, scenario 2 once each; no concurrent or node-failure check")
    parser.add_argument("--out", type=Path, help="results folder (default results/suite-<time>)")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    if args.short:
        args.iterations = 1
    if args.out is None:
        args.out = labinfo.REPO / "results" / f"suite-{time.strftime('%Y%m%dT%H%M%S')}"
    return args


@labinfo.lab_tool("run_full_test_suite", also=(report_mod.RecordError,))
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lab = labinfo.check_lab()
    return Suite(lab, args.out, args.iterations, short=args.short).run()


if __name__ == "__main__":
    sys.exit(main())
