"""The chaos cases: one fault each on the real lab, with the availability probe running and checks on
what SwarmGuard did, what the fault cost and the state it left (docs/chaos.md has the table).

Each case is a function `(Ctx) -> Outcome`. It starts from the lab's known state (labkit/chaos.py
restores it before and after every run), makes its fault, undoes it, and fills the Outcome: the
fault, what SwarmGuard did, the probe's failed requests, the state afterwards, named checks (each
one something that can fail) and figures. The runner restores the lab whatever happened.

Cases that need a migration in flight start it as scenario 1 does (CPU and memory stress on the
web-stress task, labkit/scenario1.py) and act the moment the service carries SwarmGuard's in-flight
marker (`swarmguard.action`, written with the change: after T4, before T6). The node exclusion's
TTL is shortened through the controller's settings so that its lifting is seen within the run.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from controller.actions.ownership import ACTION_LABEL, EXCLUSIONS_LABEL
from labkit import chaos_lab as cl
from labkit import controller_api as api
from labkit import labinfo
from labkit.labreset import CHAOS_LABEL
from labkit.scenario1 import Settings as Stress
from labkit.scenario1 import stress_path
from labkit.zerodowntime import ProbeRun
from sgcommon.engine import EngineError, connect, translate
from sgcommon.engine.swarm import engine_time

APP = api.APP_SERVICE
CONTROLLER = api.CONTROLLER_SERVICE
EXPORTER = f"{labinfo.STACK}_exporter"
FLOOD_SOURCE = Path(__file__).with_name("flood.py")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Outcome:
    """One run of one case (labkit/chaos.py adds the case name, run number, times and any error)."""

    fault: str = ""
    did: str = ""  # what SwarmGuard did
    state_after: str = ""
    probe: dict[str, Any] = field(default_factory=dict)  # requests, failures, total_downtime, longest_gap
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    fault_costs_requests: bool = False  # the fault itself fails requests (measured, not held against SwarmGuard)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)


@dataclass
class Ctx:
    lab: labinfo.Lab
    client: Any
    say: Callable[[str], None] = print
    ttl: float = 15.0  # the exclusion TTL the migration cases set (actions.exclusion_ttl)
    lift_every: float = 2.0  # the controller's exclusions job interval they set
    sink_outage: float = 60.0
    cut: float = 30.0
    flood_rate: float = 1000.0
    flood_seconds: float = 10.0
    engine_fault: str = "kill"  # how a worker's engine fails: "kill" (SIGKILL) or "stop" (SIGTERM, as node-stop)

    def node_list(self) -> list[dict[str, str]]:
        return cl.nodes(self.client)


# ---- shared steps ------------------------------------------------------------------------------

def rel(t: float | None, since: float) -> float | None:
    return None if t is None else round(t - since, 2)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def prepare_controller(ctx: Ctx) -> str:
    """Short exclusion TTL and lifting interval through the controller's settings (its task restarts);
    the new controller's container once it has reconciled and scrapes every exporter."""
    old = api.controller_container(ctx.client)
    cl.set_env(ctx.client, CONTROLLER, {"CONTROLLER_ACTIONS_EXCLUSION_TTL": f"{ctx.ttl:g}",
                                        "CONTROLLER_EXCLUSIONS_INTERVAL": f"{ctx.lift_every:g}"})
    api.eventually(lambda: api.controller_container(ctx.client) not in ("", old), timeout=90, every=0.5,
                   what="the controller restarted with the chaos settings")
    return cl.wait_controller_ready(ctx.client, exporters=len(ctx.node_list()))


def the_task(ctx: Ctx) -> dict[str, Any] | None:
    """web-stress's one running task, None while it runs none or several."""
    running = api.running_tasks(ctx.client, APP)
    return running[0] if len(running) == 1 else None


def only_task(ctx: Ctx) -> tuple[dict[str, Any], str]:
    task = api.eventually(lambda: the_task(ctx), timeout=120, what=f"one running task of {APP}")
    return task, api.node_names(ctx.client)[task["NodeID"]]


def start_probe(ctx: Ctx, *, docker_host: str | None = None) -> ProbeRun:
    probe = ProbeRun(docker_host or ctx.lab.host_socket, image=labinfo.BASE_IMAGE, network=ctx.lab.network,
                     target="http://web-stress:8080/health", interval=0.1, duration=900).start()
    try:
        api.eventually(lambda: steady(probe.records[-10:]), timeout=60, every=0.1,
                       what="the probe to see web-stress steadily")
    except BaseException:
        probe.finish(stop=True)
        raise
    return probe


def steady(last: list[dict[str, Any]]) -> bool:
    return len(last) == 10 and all(r["ok"] for r in last)


def probe_summary(probe: ProbeRun) -> dict[str, Any]:
    summary = probe.finish(stop=True)
    return {k: summary[k] for k in ("requests", "failures", "total_downtime", "longest_gap", "downtime_periods")}


def failures_between(probe: ProbeRun, start: float, end: float) -> tuple[int, int]:
    """(failed, all) probe requests sent between two Unix times."""
    inside = [r for r in probe.records if start <= r["ts"] < end]
    return sum(1 for r in inside if not r["ok"]), len(inside)


def event_ids(ctx: Ctx) -> set[str]:
    return {str(r.get("id")) for r in api.events(ctx.client, limit=500)}


def new_events(ctx: Ctx, seen: set[str]) -> list[dict[str, Any]]:
    return [r for r in api.events(ctx.client, limit=500) if str(r.get("id")) not in seen]


def wait_record(ctx: Ctx, action_id: str, *, timeout: float) -> tuple[dict[str, Any], float]:
    """The controller's record of action `action_id` and when it was first seen."""
    record = api.eventually(lambda: next((r for r in api.events(ctx.client, limit=500) if r.get("id") == action_id), None),
                            timeout=timeout, every=0.25, what=f"the controller's record of action {action_id}")
    return record, time.time()


def wait_marker(ctx: Ctx, *, timeout: float = 90.0) -> tuple[dict[str, Any], float]:
    """Polls the service every 50 ms until SwarmGuard's in-flight marker is on it."""
    def found() -> dict[str, Any] | None:
        return cl.marker(cl.service_labels(ctx.client, APP))

    return api.eventually(found, timeout=timeout, every=0.05, what="SwarmGuard's in-flight marker on web-stress"), time.time()


def start_stress(ctx: Ctx, task: dict[str, Any], node: str) -> float:
    answer = api.app_get(ctx.lab, task, node, stress_path(Stress()))
    if answer.get("status") != "started":
        raise EngineError(f"the stress did not start: {answer}")
    return time.time()


def stop_stress(ctx: Ctx, task: dict[str, Any], node: str) -> bool:
    """Ends the stress on a task that is still running (an interrupted migration leaves it in place,
    and a stressed task would only draw a second, legitimate migration after the case); False when
    the task is gone."""
    try:
        return api.app_get(ctx.lab, task, node, "/stress/stop").get("status") == "stopped"
    except EngineError:
        return False


def owned_state(ctx: Ctx) -> tuple[dict[str, float], dict[str, Any] | None, list[str]]:
    """SwarmGuard's exclusions label, its in-flight marker and the service's node.hostname!= constraints,
    from one read of the spec (two reads could straddle the controller's update)."""
    spec = cl.service_spec(ctx.client, APP) or {}
    labels = dict(spec.get("Labels") or {})
    placed = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("Constraints") or []
    excluding = [str(c) for c in placed if str(c).replace(" ", "").startswith("node.hostname!=")]
    return cl.exclusions(labels), cl.marker(labels), excluding


def wait_clean(ctx: Ctx, out: Outcome, *, expiry: float | None, timeout: float) -> float | None:
    """Waits until SwarmGuard owns nothing on web-stress (marker cleared, exclusions lifted) and its
    budget and locks are free; checks each; the time the exclusion was lifted."""
    lifted: float | None = None

    def clean() -> bool:
        nonlocal lifted
        owned, mark, constraints = owned_state(ctx)
        if not owned and not constraints and lifted is None:
            lifted = time.time()
        return not owned and mark is None and not constraints

    try:
        api.eventually(clean, timeout=timeout, every=0.5, what="SwarmGuard's labels and constraints gone")
    except api.WaitTimeout:
        pass
    owned, mark, constraints = owned_state(ctx)
    out.check("in-flight marker cleared", mark is None, json.dumps(mark) if mark else "")
    out.check("exclusion lifted", not owned and not constraints,
              f"left: {owned} {constraints}" if owned or constraints else
              (f"{lifted - expiry:+.1f} s after its expiry" if lifted and expiry else ""))
    health: dict[str, Any] = {}

    def released() -> bool:
        health.update(cl.controller_json(ctx.client, "/healthz") or {})
        return health.get("moving") == 0 and health.get("busy_services") == []

    try:
        api.eventually(released, timeout=60, every=1.0, what="the budget and the service lock released")
    except api.WaitTimeout:
        pass
    out.check("budget and lock released", health.get("moving") == 0 and health.get("busy_services") == [],
              f"moving {health.get('moving')}, busy {health.get('busy_services')}")
    return lifted


def one_task_running(ctx: Ctx, out: Outcome, *, timeout: float = 90.0) -> str | None:
    try:
        task = api.eventually(lambda: the_task(ctx), timeout=timeout, what="one running web-stress task")
    except api.WaitTimeout:
        out.check("web-stress runs one task", False, f"{len(api.running_tasks(ctx.client, APP))} running")
        return None
    node = api.node_names(ctx.client).get(task["NodeID"])
    out.check("web-stress runs one task", True, f"on {node}")
    return node


def tasks_created_since(ctx: Ctx, service: str, since: float) -> list[dict[str, Any]]:
    return [t for t in cl.tasks(ctx.client, service) if (engine_time(t.get("CreatedAt", "")) or 0) >= since]


# ---- the controller SIGKILLed mid-migration ------------------------------------------------------

def restarted(ctx: Ctx, old: str) -> str | None:
    """The controller's container once it is another one than `old`."""
    now = api.controller_container(ctx.client)
    return now if now not in ("", old) else None


def controller_kill(ctx: Ctx) -> Outcome:
    out = Outcome(fault="controller container SIGKILLed while its migration waits (after T4, before T6)")
    prepare_controller(ctx)
    task, node = only_task(ctx)
    seen = event_ids(ctx)
    probe = start_probe(ctx)
    try:
        stressed = start_stress(ctx, task, node)
        old_controller = api.controller_container(ctx.client)
        mark, marked = wait_marker(ctx)
        with translate("kill the controller"):
            ctx.client.kill(old_controller, signal="SIGKILL")
        killed = time.time()
        at_kill = {t["ID"]: t["Status"]["State"] for t in cl.tasks(ctx.client, APP)}
        out.check("killed before T6 (old task still running)", at_kill.get(task["ID"]) == "running",
                  f"old task {at_kill.get(task['ID'])} at the kill")
        replacement = sorted(s for tid, s in at_kill.items() if tid != task["ID"])
        new_controller: str = api.eventually(lambda: restarted(ctx, old_controller), timeout=90, every=0.25,
                                             what="Swarm to restart the controller")
        cl.wait_controller_ready(ctx.client, exporters=len(ctx.node_list()))
        ready = time.time()
        record, seen_at = wait_record(ctx, str(mark["id"]), timeout=60)
        out.check("the new controller recorded the interrupted action",
                  record.get("rule") == "(interrupted)" and record.get("result") in ("success", "failed"),
                  f"{record.get('result')}: {record.get('reason')}")
        after = one_task_running(ctx, out)
        expiry = float(cl.exclusions(cl.service_labels(ctx.client, APP)).get(node, mark.get("started", marked) + ctx.ttl))
        lifted = wait_clean(ctx, out, expiry=expiry, timeout=ctx.ttl + 45)
        others = [r for r in new_events(ctx, seen) if r.get("id") != mark["id"]]
        out.check("no action ran twice", not others, "; ".join(f"{r['action']} {r['result']}" for r in others))
        created = tasks_created_since(ctx, APP, stressed)
        out.check("one replacement task, no second", len(created) == 1, f"{len(created)} tasks created")
        restarts = tasks_created_since(ctx, CONTROLLER, killed - 1)
        out.check("the controller restarted once", len(restarts) == 1, f"{len(restarts)} controller tasks")
        time.sleep(1.0)
    finally:
        out.probe = probe_summary(probe)
    out.did = (f"migrate {node}->{after}: killed {killed - marked:.2f} s after its marker (replacement: "
               f"{', '.join(replacement) or 'not yet'}); Swarm restarted the controller (ready "
               f"{ready - killed:.1f} s after); reconcile recorded `{record.get('result')}` ({record.get('reason')}) "
               f"{seen_at - killed:.1f} s after the kill; exclusion lifted "
               f"{'-' if lifted is None else f'{lifted - expiry:+.1f} s'} vs its TTL")
    out.state_after = state_text(ctx, after)
    out.figures = {"kill_after_marker_s": round(killed - marked, 3), "controller_ready_s": rel(ready, killed),
                   "record_seen_s": rel(seen_at, killed), "lifted_vs_expiry_s": rel(lifted, expiry),
                   "replacement_state_at_kill": replacement, "new_controller": new_controller[:12]}
    return out


def state_text(ctx: Ctx, node: str | None) -> str:
    owned, mark, constraints = owned_state(ctx)
    health = cl.controller_json(ctx.client, "/healthz") or {}
    ready = sum(1 for n in ctx.node_list() if n["state"] == "ready")
    parts = [f"web-stress 1 task on {node}" if node else "web-stress NOT 1 task",
             "no marker" if mark is None else "MARKER LEFT",
             "no exclusion" if not owned and not constraints else f"EXCLUSIONS {sorted(owned)} {constraints}",
             f"budget {health.get('moving')} moving, busy {health.get('busy_services')}",
             f"{ready}/{len(ctx.node_list())} nodes ready"]
    return "; ".join(parts)


# ---- a worker's engine killed during a migration -------------------------------------------------

def engine_kill(ctx: Ctx, *, which: str) -> Outcome:
    """`which`: "source" (the node the task leaves) or "target" (the node Swarm starts the replacement on)."""
    how = "SIGKILLed" if ctx.engine_fault == "kill" else "stopped (SIGTERM: it stops its containers first)"
    out = Outcome(fault=f"the {which} worker's dockerd {how} during a migration (then `swarm/lab node-start`)")
    prepare_controller(ctx)
    task, node = only_task(ctx)
    before = {t["ID"] for t in cl.tasks(ctx.client, APP)}
    seen = event_ids(ctx)
    probe = start_probe(ctx)
    victim = node
    try:
        start_stress(ctx, task, node)
        mark, marked = wait_marker(ctx)
        if which == "target":
            def placed() -> str | None:
                fresh = [t for t in cl.tasks(ctx.client, APP) if t["ID"] not in before and t.get("NodeID")]
                return cl.task_node(ctx.client, fresh[0]) if fresh else None

            victim = api.eventually(placed, timeout=20, every=0.05, what="the replacement's node")
        number = cl.worker_number(victim)
        cl.fail_worker_engine(number, kill=ctx.engine_fault == "kill")
        killed = time.time()
        at_kill = {t["ID"]: t["Status"]["State"] for t in cl.tasks(ctx.client, APP)}

        def observe() -> dict[str, Any]:
            return {"node": cl.node_state(ctx.client, victim),
                    "tasks": {t["ID"][:6]: (cl.task_node(ctx.client, t), t["Status"]["State"], t["DesiredState"])
                              for t in cl.tasks(ctx.client, APP)}}

        with cl.Sampler(observe, every=1.0) as watch:
            record, seen_at = wait_record(ctx, str(mark["id"]), timeout=120)
        if which == "target":
            stop_stress(ctx, task, node)  # the old task may still run where it was
        down = next((t for t, v in watch.samples if isinstance(v, dict) and v["node"] == "down"), None)
        cl.lab("node-start", str(number))
        started = time.time()
        api.eventually(lambda: cl.node_state(ctx.client, victim) == "ready", timeout=120, every=1.0,
                       what=f"{victim} Ready again")
        back = time.time()
        out.check("the action ended with a record", record.get("result") in ("success", "failed", "timeout"),
                  f"{record.get('result')}: {record.get('error') or record.get('reason')}")
        after = one_task_running(ctx, out)
        owned_at_end, _, excluding = owned_state(ctx)
        unowned = [c for c in excluding if c.replace(" ", "").removeprefix("node.hostname!=") not in owned_at_end]
        out.check("every node exclusion on the service is owned (in swarmguard.exclusions)", not unowned,
                  f"owned {sorted(owned_at_end)}, unowned {unowned}")
        expiry = owned_at_end.get(node, float(mark.get("started", marked)) + ctx.ttl)
        lifted = wait_clean(ctx, out, expiry=expiry, timeout=ctx.ttl + 60)
        others = [r for r in new_events(ctx, seen) if r.get("id") != mark["id"]]
        out.check("no second action", not others, "; ".join(f"{r['action']} {r['result']} {r.get('error')}" for r in others))
        time.sleep(1.0)
    finally:
        out.probe = probe_summary(probe)
    swarm_did = (f"{victim} down {seconds(rel(down, killed))} after the kill" if down else f"{victim} never marked down")
    out.did = (f"migrate {node}->{record.get('node_to')}: `{record.get('result')}`"
               f"{' (' + str(record.get('error')) + ')' if record.get('error') else ''}, record "
               f"{seen_at - killed:.1f} s after the kill; Swarm: {swarm_did}; exclusion lifted "
               f"{'-' if lifted is None else f'{lifted - expiry:+.1f} s'} vs its TTL")
    out.state_after = state_text(ctx, after) + f"; {victim} back Ready {back - started:.1f} s after node-start"
    out.figures = {"victim": victim, "kill_after_marker_s": round(killed - marked, 3),
                   "tasks_at_kill": at_kill, "node_down_s": rel(down, killed), "record_s": rel(seen_at, killed),
                   "record": {k: record.get(k) for k in ("result", "error", "node_from", "node_to", "t4", "t5", "t6")},
                   "ready_after_start_s": round(back - started, 2), "lifted_vs_expiry_s": rel(lifted, expiry),
                   "swarm": [v for _, v in watch.samples][-3:]}
    return out


# ---- the manager's engine restarted ---------------------------------------------------------------

class OutsideController:
    """A second controller, run as a plain process on the host (dry-run: it changes nothing), so it
    stays up while the manager's engine restarts and shows the Swarm adapter reconnecting."""

    def __init__(self, ctx: Ctx, log: Path) -> None:
        self.port = cl.free_port()
        self.log = log
        exporters = ",".join(f"{n['addr']}:{cl.EXPORTER_PORT}" for n in ctx.node_list())
        env = {**os.environ, "ALERT_TOKEN": os.urandom(16).hex(), "CONTROLLER_ACTIONS_DRY_RUN": "true"}
        self.proc = subprocess.Popen(
            [str(labinfo.REPO / ".venv" / "bin" / "python"), "-m", "controller", "run", "--listen", "127.0.0.1",
             "--port", str(self.port), "--docker-url", labinfo.HOST_SOCKET, "--exporters", exporters,
             "--rules", str(labinfo.REPO / "rules"), "--services-interval", "1"],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=labinfo.REPO)

    def health(self) -> dict[str, Any] | None:
        try:
            return dict(requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).json())
        except (requests.RequestException, ValueError):
            return None

    def stop(self) -> int | None:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def lines(self, message: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("msg") == message:
                found.append(doc)
        return found


def manager_restart(ctx: Ctx, *, log_dir: Path) -> Outcome:
    out = Outcome(fault="the manager's engine (the host dockerd) stopped (SIGTERM) and started again (`swarm/lab up`)")
    _, node = only_task(ctx)
    worker = labinfo.worker_socket(cl.worker_number(node))  # the probe must outlive the manager's containers
    pull_base_image(worker)
    seen = event_ids(ctx)
    outside = OutsideController(ctx, log_dir / f"chaos-outside-controller-{time.strftime('%Y%m%dT%H%M%S')}.log")
    probe: ProbeRun | None = None
    try:
        api.eventually(lambda: (outside.health() or {}).get("services_ok"), timeout=60, every=0.5,
                       what="the outside controller up with the service list")
        probe = start_probe(ctx, docker_host=worker)
        old = api.controller_container(ctx.client)
        with cl.Sampler(lambda: (outside.health() or {}).get("services_ok"), every=0.5) as watch:
            times = cl.restart_host_engine()
            ctx.client.close()
            ctx.client = connect(ctx.lab.host_socket, timeout=60)
            cl.wait_controller_ready(ctx.client, exporters=len(ctx.node_list()), timeout=180)
            ready = time.time()
            api.eventually(lambda: (outside.health() or {}).get("services_ok"), timeout=60, every=0.5,
                           what="the outside controller's service list again")
            time.sleep(30.0)  # a crash loop would show as more controller tasks by now
        new = api.controller_container(ctx.client)
        restarts = tasks_created_since(ctx, CONTROLLER, times["stop"])
        out.check("the controller came back once, no crash loop", len(restarts) == 1 and new not in ("", old),
                  f"{len(restarts)} controller tasks created; running {new[:12]}")
        down = [t for t, ok in watch.samples if ok is False]
        recovered = next((t for t, ok in watch.samples if ok is True and down and t > down[0]), None)
        out.check("the outside controller lost the engine and reconnected without a restart",
                  bool(down) and recovered is not None and outside.proc.poll() is None,
                  f"service list unavailable {len(down) * 0.5:.1f} s, back {seconds(rel(recovered, times['started']))} after the engine")
        events = new_events(ctx, seen)
        out.check("no action taken", not events, "; ".join(f"{r['action']} {r['result']}" for r in events))
        after = one_task_running(ctx, out)
        exporters = cl.controller_metric(ctx.client, "swarmguard_controller_exporters_up")
        out.check("every exporter scraped again", exporters == len(ctx.node_list()), f"exporters_up {exporters}")
    finally:
        if probe is not None:
            out.probe = probe_summary(probe)
        status = outside.stop()
    out.check("the outside controller stopped cleanly (exit 0)", status == 0, f"exit {status}")
    unreachable = outside.lines("cannot refresh the service list; keeping the last one")
    again = outside.lines("service list refreshed again")
    out.did = (f"engine stopped in {times['stopped'] - times['stop']:.1f} s, started {times['started'] - times['stopped']:.1f} s later; "
               f"Swarm restarted the controller once (ready {ready - times['started']:.1f} s after the engine), reconciled, "
               f"no action; the outside controller logged `cannot refresh the service list` x{len(unreachable)} and "
               f"`service list refreshed again` x{len(again)}, back {seconds(rel(recovered, times['started']))} after the engine")
    out.state_after = state_text(ctx, after)
    out.figures = {"times": {k: round(v - times["stop"], 2) for k, v in times.items()},
                   "controller_ready_after_engine_s": round(ready - times["started"], 2),
                   "controller_tasks_created": len(restarts), "outside_log": str(outside.log),
                   "outside_recovered_after_engine_s": rel(recovered, times["started"])}
    return out


def pull_base_image(socket: str) -> None:
    client = connect(socket, timeout=120)
    try:
        with translate(f"pull the base image on {socket}"):
            repository, _, tag = labinfo.BASE_IMAGE.rpartition(":")
            client.pull(repository, tag=tag)
    finally:
        client.close()


# ---- a worker cut off from the network ----------------------------------------------------------

def worker_cut(ctx: Ctx) -> Outcome:
    out = Outcome(fault=f"the worker holding web-stress's only replica cut off for {ctx.cut:g} s (eth0 down in its "
                        "namespace), its container stressed meanwhile", fault_costs_requests=True)
    task, node = only_task(ctx)
    number = cl.worker_number(node)
    controller = api.controller_container(ctx.client)
    exporters = len(ctx.node_list())
    seen = event_ids(ctx)
    probe = start_probe(ctx)

    def observe() -> dict[str, Any]:
        health = cl.controller_json(ctx.client, "/healthz") or {}
        return {"up": cl.controller_metric(ctx.client, "swarmguard_controller_exporters_up"),
                "nodes_down": (health.get("cache") or {}).get("nodes_down"), "node": cl.node_state(ctx.client, node),
                "running": sorted(api.node_names(ctx.client).get(t["NodeID"], "?") for t in api.running_tasks(ctx.client, APP))}

    try:
        with cl.Sampler(observe, every=1.0) as watch:
            time.sleep(2.0)
            cut = time.time()
            cl.set_link(number, up=False)
            stressed = True
            try:
                api.app_get(ctx.lab, task, node, stress_path(Stress()))  # through the node's engine socket
            except EngineError:
                stressed = False
            time.sleep(max(0.0, cut + ctx.cut - time.time()))
            cl.set_link(number, up=True)
            up = time.time()
            api.eventually(lambda: cl.node_state(ctx.client, node) == "ready", timeout=120, every=1.0,
                           what=f"{node} Ready again")
            ready = time.time()
            scraped: float | None = None
            try:
                api.eventually(lambda: cl.controller_metric(ctx.client, "swarmguard_controller_exporters_up") == exporters,
                               timeout=90, every=1.0, what="every exporter scraped again")
                scraped = time.time()
            except api.WaitTimeout:
                pass
            after = one_task_running(ctx, out)
            time.sleep(3.0)
        samples = [(t, v) for t, v in watch.samples if isinstance(v, dict)]
        during = [v for t, v in samples if cut + 3 <= t <= up]
        ups = [v["up"] for v in during if v["up"] is not None]
        dropped = next((t for t, v in samples if t >= cut and v["up"] is not None and v["up"] < exporters), None)
        marked_down = next((t for t, v in samples if t >= cut and v["node"] == "down"), None)
        moved = next((t for t, v in samples if t >= cut and v["running"] and node not in v["running"]), None)
        out.check("exporters_up dropped during the cut", bool(ups) and min(ups) == exporters - 1, f"values {sorted(set(ups))}")
        out.check("the node's containers marked stale (controller: nodes_down 1)",
                  any(v["nodes_down"] == 1 for v in during), f"nodes_down seen {sorted({v['nodes_down'] for v in during}, key=str)}")
        out.check("exporters_up recovered within 90 s of the link", scraped is not None,
                  f"{scraped - up:.1f} s after the link came back" if scraped else "still down after 90 s")
        log = cl.container_log(ctx.client, controller, since=cut - 1)
        cut_decisions = [line for line in log if line.get("msg") == "decision" and cut <= _ts(line) <= up]
        out.check("no decision while the node was cut off", not cut_decisions,
                  "; ".join(f"{d.get('rule')} {d.get('submit')}" for d in cut_decisions[:3]))
        events = new_events(ctx, seen)
        stale = [r for r in events if cut <= float(r.get("t3") or 0) <= up]
        out.check("no action decided while the node was cut off", not stale,
                  "; ".join(f"{r['action']} {r['result']} {r.get('error') or ''}" for r in stale))
        unreachable = [line for line in log if line.get("msg") == "exporter unreachable"]
    finally:
        out.probe = probe_summary(probe)
    failed_cut, all_cut = failures_between(probe, cut, up + 5)
    out.did = (f"nothing (stress {'on' if stressed else 'NOT started'} during the cut): exporters_up "
               f"{exporters}->{min(ups) if ups else '?'} {seconds(rel(dropped, cut))} after the cut, "
               f"`exporter unreachable` logged for {sorted({str(line.get('node')) for line in unreachable})}, "
               f"no decision while stale; {len(events)} action record(s) after ({'; '.join(r['result'] for r in events) or 'none'}); "
               f"Swarm: {node} down {seconds(rel(marked_down, cut))}, task running elsewhere {seconds(rel(moved, cut))} after the cut")
    out.state_after = (state_text(ctx, after) + f"; {node} Ready {ready - up:.1f} s, all exporters scraped "
                       f"{seconds(rel(scraped, up))} after the link came back")
    out.figures = {"node": node, "exporters_up_drop_s": rel(dropped, cut), "node_down_s": rel(marked_down, cut),
                   "task_elsewhere_s": rel(moved, cut), "ready_after_link_s": round(ready - up, 2),
                   "scraped_after_link_s": rel(scraped, up), "failed_in_cut": failed_cut, "requests_in_cut": all_cut,
                   "action_records": [{k: r.get(k) for k in ("action", "result", "error")} for r in events]}
    return out


def _ts(line: dict[str, Any]) -> float:
    """A JSON log line's time (sgcommon.jsonlog writes `ts` in Unix seconds)."""
    raw = line.get("ts")
    return float(raw) if isinstance(raw, (int, float)) else 0.0


# ---- the metrics sink down ------------------------------------------------------------------------

class RejectingSink:
    """A line-protocol sink that refuses every batch with 400, as InfluxDB does a bad one; records each."""

    def __init__(self, host: str) -> None:
        import gzip

        batches: list[list[str]] = []
        self.batches = batches

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                batches.append(body.decode(errors="replace").splitlines())
                answer = b'{"code":"invalid","message":"chaos: this sink refuses every batch"}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="rejecting-sink", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exporter_pids(ctx: Ctx) -> dict[str, int]:
    """Node -> pid of its exporter's main process (through each node's engine)."""
    pids: dict[str, int] = {}
    for hostname, socket in ctx.lab.node_sockets.items():
        client = connect(socket, timeout=30)
        try:
            with translate(f"exporter on {hostname}"):
                found = client.containers(filters={"label": f"com.docker.swarm.service.name={EXPORTER}", "status": "running"})
            if found:
                pid = cl.container_pid(client, found[0]["Id"])
                if pid:
                    pids[hostname] = pid
        finally:
            client.close()
    return pids


def sink_down(ctx: Ctx) -> Outcome:
    out = Outcome(fault=f"the lab's victoria-metrics stopped for {ctx.sink_outage:g} s, then started as `swarm/lab up` does")
    addrs = {n["hostname"]: n["addr"] for n in ctx.node_list()}
    pids = exporter_pids(ctx)

    def read() -> dict[str, dict[str, Any]]:
        texts = {h: cl.exporter_text(a) for h, a in addrs.items()}
        return {h: {"text": t, "rss": (cl.rss_bytes(pids[h]) if h in pids else None),
                    "written": cl.value(t, "swarmguard_exporter_influx_written_lines_total"),
                    "pending": cl.value(t, "swarmguard_exporter_influx_pending_lines"),
                    "dropped": cl.value(t, "swarmguard_exporter_influx_dropped_lines_total"),
                    "failed": cl.value(t, "swarmguard_exporter_influx_failed_batches_total"),
                    "overrun": (cl.sample_values(t, "swarmguard_exporter_errors_total") or {}).get((("kind", "overrun"),))
                    if t else None} for h, t in texts.items()}

    before = read()
    missing = [h for h, v in before.items() if v["text"] is None or not cl.buckets(v["text"], "swarmguard_exporter_tick_lag_seconds")]
    out.check("every exporter has the tick-lag histogram", not missing, f"missing on {missing}" if missing else "")
    with cl.Sampler(read, every=5.0) as watch:
        stopped_in = cl.stop_sink()
        down = time.time()
        time.sleep(max(0.0, down + ctx.sink_outage - time.time()))
        at_restart = read()
        cl.lab("up")
        up = time.time()
        out.check("the sink serves again", cl.sink_healthy())

        def resumed() -> dict[str, float] | None:
            now = read()
            done = {h: time.time() - up for h, v in now.items()
                    if v["written"] is not None and at_restart[h]["written"] is not None and v["written"] > at_restart[h]["written"]}
            return done if len(done) == len(addrs) else None

        try:
            resume = api.eventually(resumed, timeout=90, every=1.0, what="every exporter writing again")
        except api.WaitTimeout:
            resume = {}
        out.check("every exporter writes again", len(resume) == len(addrs), f"{len(resume)}/{len(addrs)}")
        time.sleep(6.0)
        after = read()
    samples = [v for t, v in watch.samples if isinstance(v, dict) and down <= t <= up]
    per_node: dict[str, dict[str, Any]] = {}
    for h in addrs:
        b, r, a = before[h], at_restart[h], after[h]
        lag_during = (cl.quantile(cl.buckets(b["text"], "swarmguard_exporter_tick_lag_seconds"),
                                  cl.buckets(r["text"], "swarmguard_exporter_tick_lag_seconds"), 0.99)
                      if b["text"] and r["text"] else None)
        lag_life = (cl.quantile([], cl.buckets(b["text"], "swarmguard_exporter_tick_lag_seconds"), 0.99)
                    if b["text"] else None)
        rss_during = [s[h]["rss"] for s in samples if s.get(h, {}).get("rss")]
        per_node[h] = {
            "tick_lag_p99_before_s": lag_life, "tick_lag_p99_during_s": lag_during,
            "overruns_during": _delta(r["overrun"], b["overrun"]),
            "rss_mb": [_mb(b["rss"]), _mb(max(rss_during, default=None)), _mb(a["rss"])],
            "pending_max": max((s[h]["pending"] or 0 for s in samples if h in s), default=None),
            "failed_batches_during": _delta(r["failed"], b["failed"]), "dropped_lines": _delta(a["dropped"], b["dropped"]),
            "resumed_after_s": round(resume[h], 1) if h in resume else None,
        }
    lag_ok = all((v["tick_lag_p99_during_s"] or 0) <= 0.1 for v in per_node.values())
    out.check("collection keeps its interval (p99 tick lag <= 0.1 s, no overrun)",
              lag_ok and all(not v["overruns_during"] for v in per_node.values()),
              ", ".join(f"{h} {v['tick_lag_p99_during_s']}" for h, v in per_node.items()))
    growth = [v["rss_mb"][1] - v["rss_mb"][0] for v in per_node.values() if None not in v["rss_mb"][:2]]
    out.check("memory bounded (RSS grows < 10 MB)", bool(growth) and max(growth) < 10, f"max growth {max(growth, default=0):.1f} MB")
    out.check("nothing dropped (the buffer holds the outage)", all(not v["dropped_lines"] for v in per_node.values()))
    stored = outage_points(down, up)
    out.check("the buffered lines of the outage reached the sink", stored > 0, f"{stored} values timestamped in the outage")
    try:  # a second, independent part: its failure must not cost the outage's figures above
        rejected = rejected_batches(ctx, out)
    except (EngineError, requests.RequestException) as exc:
        out.check("the 400-answering sink part ran", False, str(exc))
        rejected = f"not measured ({exc})"
    out.did = ("the exporters kept collecting (p99 tick lag during the outage "
               f"{', '.join(sorted({str(v['tick_lag_p99_during_s']) for v in per_node.values()}))} s), buffered, retried with "
               f"back-off, and wrote again {', '.join(sorted({seconds(v['resumed_after_s']) for v in per_node.values()}))} after the "
               f"sink was back ({stored} values from the outage stored); a 400-answering sink: {rejected}")
    out.state_after = f"sink up; every exporter writing; pending lines {', '.join(str(after[h]['pending']) for h in addrs)}"
    out.figures = {"sink_stopped_in_s": round(stopped_in, 2), "outage_s": round(up - down, 1), "per_node": per_node,
                   "outage_values_stored": stored}
    return out


def _delta(now: float | None, then: float | None) -> float | None:
    return None if now is None or then is None else now - then


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value / (1024 * 1024), 1)


def outage_points(start: float, end: float) -> int:
    """Values the sink holds with timestamps inside [start, end] (written from the exporters' buffers)."""
    answer = requests.get(f"{cl.SINK}/api/v1/export", params={"match[]": '{__name__=~"container_metrics.*|node_metrics.*"}',
                                                              "start": f"{start:.3f}", "end": f"{end:.3f}"}, timeout=30)
    answer.raise_for_status()
    return sum(len(json.loads(line).get("values") or []) for line in answer.text.splitlines() if line.strip())


def rejected_batches(ctx: Ctx, out: Outcome, *, run_for: float = 8.0) -> str:
    """One more exporter, as a plain container on a worker, pointed at a sink that answers 400 to every
    batch: each batch is sent once, dropped, counted and logged once; nothing is retried."""
    sink = RejectingSink("10.99.0.1")
    hostname = min(h for h in ctx.lab.node_sockets if h.startswith("worker-"))
    client = connect(ctx.lab.node_sockets[hostname], timeout=60)
    container = ""
    try:
        with translate("the rejected-writes exporter"):
            host_config = client.create_host_config(binds=["/proc:/host/proc:ro", "/sys:/host/sys:ro",
                                                           "/var/run/docker.sock:/var/run/docker.sock"])
            container = client.create_container(
                f"{labinfo.REGISTRY}/exporter:latest", host_config=host_config, labels={CHAOS_LABEL: "1"},
                environment={"INFLUXDB_URL": sink.url, "EXPORTER_ALERTS": "false", "NODE_NAME": hostname,
                             "EXPORTER_INFLUX_FLUSH_INTERVAL": "1"})["Id"]
            client.start(container)
        time.sleep(run_for)
        metrics = api.exec_in(client, container, ["curl", "-fsS", "-m", "3", "http://127.0.0.1:9101/metrics"])
        time.sleep(0.5)
        batches = list(sink.batches)
        log = cl.container_log(client, container, since=0)
    finally:
        if container:
            with translate("remove the rejected-writes exporter"):
                client.remove_container(container, force=True)
        client.close()
        sink.close()
    refused = cl.value(metrics, "swarmguard_exporter_influx_rejected_batches_total") or 0
    failed = cl.value(metrics, "swarmguard_exporter_influx_failed_batches_total")
    pending = cl.value(metrics, "swarmguard_exporter_influx_pending_lines")
    firsts = [b[0] for b in batches if b]
    logged = [line for line in log if line.get("msg") == "influx refused a batch; dropped"]
    out.check("a 400 batch is dropped, not retried: each batch posted once", len(batches) >= 3 and len(set(firsts)) == len(firsts),
              f"{len(batches)} batches, {len(set(firsts))} distinct")
    out.check("rejected batches counted, none retried", abs(refused - len(batches)) <= 1 and failed == 0,
              f"rejected_batches {refused}, failed_batches {failed}, pending {pending}")
    out.check("the refusal logged once", len(logged) == 1, f"{len(logged)} log lines")
    vm = victoria_refuses()
    out.figures["victoria_metrics_answers"] = vm
    return (f"{len(batches)} batches posted once each in {run_for:g} s, all dropped and counted (rejected_batches {refused:g}, "
            f"failed {failed:g}), logged {len(logged)}x (`{logged[0].get('error') if logged else ''}`); "
            f"victoria-metrics itself: {vm}")


def victoria_refuses() -> dict[str, int]:
    """What victoria-metrics answers on /api/v2/write: an unknown org/bucket, and a line it cannot parse."""
    out = {}
    for what, params, body in (("unknown org and bucket", {"org": "no-such-org", "bucket": "no-such-bucket"},
                                b"chaos_probe,case=sink value=1"),
                               ("malformed line", {"org": "swarmguard", "bucket": "metrics"}, b"chaos_probe value=")):
        out[what] = requests.post(f"{cl.SINK}/api/v2/write", params=params, data=body, timeout=5).status_code
    return out


# ---- an operator removes or updates the service while an action waits ------------------------------

def operator_change(ctx: Ctx, *, how: str) -> Outcome:
    """`how`: "remove" (docker service rm) or "update" (docker service update --constraint-rm of SwarmGuard's exclusion)."""
    what = ("`docker service rm web-stress`" if how == "remove"
            else "`docker service update --constraint-rm node.hostname!=<node>` (the exclusion SwarmGuard just added)")
    # Both changes are the operator's own rollout (remove: no service; update: Swarm replaces the
    # half-done migration's tasks again), so the probe's failures after the change are the fault's
    # cost; SwarmGuard's part is checked up to the change.
    out = Outcome(fault=f"an operator runs {what} while the migration waits", fault_costs_requests=True)
    prepare_controller(ctx)
    task, node = only_task(ctx)
    seen = event_ids(ctx)
    probe = start_probe(ctx)
    try:
        start_stress(ctx, task, node)
        mark, marked = wait_marker(ctx)
        args = (["service", "rm", APP] if how == "remove"
                else ["service", "update", "--detach", "--constraint-rm", f"node.hostname!={node}", APP])
        done = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": ctx.lab.host_socket},
                              capture_output=True, text=True, timeout=60, check=False)
        changed = time.time()
        out.check(f"the operator's `docker {args[0]} {args[1]}` worked", done.returncode == 0, done.stderr.strip()[:200])
        record, seen_at = wait_record(ctx, str(mark["id"]), timeout=90)
        error = str(record.get("error") or "")
        expected = "service removed while the action waited" if how == "remove" else "superseded while the action waited"
        ended_at_once = seen_at - changed < 5.0
        out.check("the action ended at once, failed, with the reason",
                  record.get("result") == "failed" and expected in error and ended_at_once,
                  f"{record.get('result')} {seen_at - changed:.1f} s after the change: {error}")
        health = cl.controller_json(ctx.client, "/healthz") or {}
        out.check("budget and lock released at once", health.get("moving") == 0 and health.get("busy_services") == [],
                  f"moving {health.get('moving')}, busy {health.get('busy_services')}")
        failed_before, requests_before = failures_between(probe, 0, changed)
        out.check("no failed request before the operator's change", failed_before == 0,
                  f"{failed_before}/{requests_before}")
        after: str | None = None
        if how == "update":
            stop_stress(ctx, task, node)  # the operator kept the task where it was
            after = one_task_running(ctx, out)
            labels = cl.service_labels(ctx.client, APP)
            out.check("in-flight marker cleared at once", ACTION_LABEL not in labels)
            expiry = cl.exclusions(labels).get(node, float(mark.get("started", marked)) + ctx.ttl)
            wait_clean(ctx, out, expiry=expiry, timeout=ctx.ttl + 45)
            time.sleep(1.0)
        others = [r for r in new_events(ctx, seen) if r.get("id") != mark["id"]]
        out.check("no other action", not others, "; ".join(f"{r['action']} {r['result']}" for r in others))
    finally:
        out.probe = probe_summary(probe)
    out.did = (f"migrate off {node}: `{record.get('result')}` {seen_at - changed:.2f} s after the operator's change "
               f"({seen_at - marked:.1f} s after its marker): {error}")
    if how == "remove":
        out.state_after = ("web-stress gone (the operator's doing; the run's restore deploys it again); "
                           f"budget {health.get('moving')} moving, busy {health.get('busy_services')}")
    else:
        out.state_after = state_text(ctx, after)
    out.figures = {"record_after_change_s": round(seen_at - changed, 2), "change_after_marker_s": round(changed - marked, 2),
                   "failed_before_change": failed_before, "record": {k: record.get(k) for k in ("result", "error", "t4", "t5", "t6")},
                   "exclusions_label_present": EXCLUSIONS_LABEL in cl.service_labels(ctx.client, APP)}
    return out


# ---- an alert flood -----------------------------------------------------------------------------

def alert_flood(ctx: Ctx) -> Outcome:
    out = Outcome(fault=f"{ctx.flood_rate:g} alerts/s for {ctx.flood_seconds:g} s from a container on swarmguard-net, "
                        "real token (alerts that decide nothing)")
    controller = api.controller_container(ctx.client)
    token = api.exec_in(ctx.client, controller, ["cat", "/run/secrets/swarmguard-alert-token"]).strip()
    pid = cl.container_pid(ctx.client, controller)
    assert pid is not None
    seen = event_ids(ctx)
    mb = 1024 * 1024
    accepted_before = sum(_alert_counts(ctx).values())
    rss_before = cl.rss_bytes(pid)
    cmd = ["python3", "-u", "-c", FLOOD_SOURCE.read_text(), "--url", "http://controller:5000/alert",
           "--rate", f"{ctx.flood_rate:g}", "--duration", f"{ctx.flood_seconds:g}", "--connections", "64"]
    with translate("start the flood container"):
        host_config = ctx.client.create_host_config(network_mode=ctx.lab.network)
        flood = ctx.client.create_container(labinfo.BASE_IMAGE, command=cmd, host_config=host_config,
                                            environment={"ALERT_TOKEN": token}, labels={CHAOS_LABEL: "1"})["Id"]
    try:
        with cl.Sampler(lambda: cl.rss_bytes(pid), every=0.5) as rss, translate("run the flood"):
            ctx.client.start(flood)
            status = ctx.client.wait(flood, timeout=ctx.flood_seconds + 120)
            text = ctx.client.logs(flood, stdout=True, stderr=True).decode(errors="replace")
        time.sleep(10.0)
        rss_after = cl.rss_bytes(pid)
    finally:
        with translate("remove the flood container"):
            ctx.client.remove_container(flood, force=True)
    summary = next((json.loads(line)["summary"] for line in text.splitlines() if line.startswith('{"summary"')), None)
    out.check("the flood ran", status.get("StatusCode") == 0 and summary is not None, text[-500:] if summary is None else "")
    summary = summary or {}
    statuses = summary.get("statuses") or {}
    fives = sum(n for s, n in statuses.items() if s.startswith("5"))
    out.check("no 5xx", fives == 0, f"statuses {statuses}, errors {summary.get('errors')}")
    out.check("no connection error or time-out", not summary.get("errors"), f"{summary.get('errors')}")
    peak = max((v for v in rss.values() if v), default=None)
    out.check("memory bounded (peak RSS < 200 MB of the 256 MB limit)", peak is not None and peak < 200 * mb,
              f"{_mb(rss_before)} / {_mb(peak)} / {_mb(rss_after)} MB")
    out.check("the same controller, still serving", api.controller_container(ctx.client) == controller
              and bool((cl.controller_json(ctx.client, "/healthz") or {}).get("status")))
    counted = sum(_alert_counts(ctx).values()) - accepted_before
    events = new_events(ctx, seen)
    out.check("no action from the flood", not events, "; ".join(f"{r['action']} {r['result']}" for r in events))
    latency = summary.get("latency_ms") or {}
    out.did = (f"answered {summary.get('answered')}/{summary.get('scheduled')} ({statuses}), "
               f"{summary.get('accepted_per_second')} alerts/s accepted, latency from the due time p50 "
               f"{latency.get('p50')} ms, p99 {latency.get('p99')} ms, max {latency.get('max')} ms; last answer "
               f"{summary.get('seconds_to_last_answer')} s after the start; controller counted {counted:g} alerts; RSS "
               f"{_mb(rss_before)} -> {_mb(peak)} -> {_mb(rss_after)} MB")
    out.state_after = f"controller {controller[:12]} still running, healthy; no action"
    out.figures = {"flood": summary, "rss_mb": [_mb(rss_before), _mb(peak), _mb(rss_after)], "alerts_counted": counted}
    return out


def _alert_counts(ctx: Ctx) -> dict[str, float]:
    try:
        text = api.controller_get(ctx.client, "/metrics")
    except EngineError:
        return {}
    return {dict(k).get("outcome", ""): v for k, v in cl.sample_values(text, "swarmguard_controller_alerts_total").items()}

