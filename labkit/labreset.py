"""Puts the lab's SwarmGuard stack in the known state the end-to-end suite starts from, and says
what it had to change.

Whatever an earlier command or test left behind (web-stress scaled up, SwarmGuard's labels and node
exclusions, the controller scaled to 0 by a baseline, a stress still running in the app, the
concurrent test's services, probe or load containers), the suite starts from: the stack as its files
define it and rolled out (labkit/deploy.py: one web-stress task, one controller, an exporter per
node), no stress running, no stray test container or service. A state that cannot be reached is an
error naming what is still wrong, so a suite or a test never runs on a half-reset lab.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sgcommon.engine import EngineError, connect, translate
from labkit import controller_api as api
from labkit import deploy, labinfo
from labkit.zerodowntime import PROBE_LABEL

E2E_LABEL = "org.swarmguard.e2e"  # the concurrent test's services
LOADGEN_LABEL = "org.swarmguard.loadgen"  # scenario 2's load generator containers
CHAOS_LABEL = "org.swarmguard.chaos"  # the chaos cases' own containers (labkit/chaos_cases.py)
SWARMGUARD_LABELS = ("swarmguard.exclusions", "swarmguard.action")  # the controller's marks on a service
EXCLUSION_PREFIX = "node.hostname!="


class LabStateError(EngineError):
    """The lab could not be put in the suite's known state; the message says what is still wrong."""


def survey(client: Any) -> list[str]:
    """What differs from the known state in the services' specs, one sentence each (pure reads)."""
    found: list[str] = []
    with translate("survey the stack"):
        for name, replicas in ((api.APP_SERVICE, 1), (api.CONTROLLER_SERVICE, 1)):
            services = client.services(filters={"name": name})
            spec = next((s["Spec"] for s in services if s["Spec"]["Name"] == name), None)
            if spec is None:
                found.append(f"{name}: missing")
                continue
            have = (spec.get("Mode", {}).get("Replicated") or {}).get("Replicas")
            if have != replicas:
                found.append(f"{name}: {have} replicas, not {replicas}")
            labels = spec.get("Labels") or {}
            found += [f"{name}: label {key}={labels[key]}" for key in SWARMGUARD_LABELS if key in labels]
            constraints = (spec.get("TaskTemplate", {}).get("Placement") or {}).get("Constraints") or []
            found += [f"{name}: constraint {c}" for c in constraints if c.replace(" ", "").startswith(EXCLUSION_PREFIX)]
        found += [f"service {s['Spec']['Name']} of the concurrent test"
                  for s in client.services(filters={"label": E2E_LABEL})]
    return found


def remove_strays(lab: labinfo.Lab, client: Any) -> list[str]:
    """Removes the concurrent test's services, probe, load-generator and chaos containers on every node."""
    notes: list[str] = []
    with translate("remove the concurrent test's services"):
        for svc in client.services(filters={"label": E2E_LABEL}):
            client.remove_service(svc["ID"])
            notes.append(f"removed service {svc['Spec']['Name']} (concurrent test)")
    for hostname, socket in sorted(lab.node_sockets.items()):
        node = connect(socket, timeout=30)
        try:
            with translate(f"stray containers on {hostname}"):
                for label, what in ((PROBE_LABEL, "probe"), (LOADGEN_LABEL, "load generator"), (CHAOS_LABEL, "chaos")):
                    for c in node.containers(all=True, filters={"label": label}):
                        node.remove_container(c["Id"], force=True)
                        notes.append(f"removed {what} container {c['Names'][0].lstrip('/')} on {hostname}")
        finally:
            node.close()
    return notes


def stop_stress(lab: labinfo.Lab, client: Any, *, strict: bool = True) -> list[str]:
    """Stops any stress running in web-stress's tasks (a stress outlives a redeploy that keeps the task).

    Not strict (before the deploy), a task that cannot be asked is passed over: the deploy may
    replace it, and the stop after the deploy and the final check still see any stress left."""
    notes: list[str] = []
    try:
        names = api.node_names(client)
        tasks = api.running_tasks(client, api.APP_SERVICE)
    except EngineError:  # no stack yet
        if strict:
            raise
        return notes
    for task in tasks:
        node = names.get(task["NodeID"], "?")
        try:
            answer = api.app_get(lab, task, node, "/stress/stop")
        except EngineError:
            if strict:
                raise
            continue
        stopped = answer.get("stopped_tests") or []
        if stopped:
            notes.append(f"stopped the {', '.join(stopped)} stress in web-stress on {node}")
    return notes


def check(lab: labinfo.Lab, client: Any) -> list[str]:
    """What is still not the known state after a reset (empty: all good)."""
    wrong = survey(client)
    names = api.node_names(client)
    app = api.running_tasks(client, api.APP_SERVICE)
    if len(app) != 1:
        wrong.append(f"{api.APP_SERVICE}: {len(app)} running tasks, not 1")
    if len(api.running_tasks(client, api.CONTROLLER_SERVICE)) != 1:
        wrong.append(f"{api.CONTROLLER_SERVICE}: not exactly one running task")
    exporters = {names.get(t["NodeID"]) for t in api.running_tasks(client, f"{labinfo.STACK}_exporter")}
    missing = sorted(set(names.values()) - exporters)
    if missing:
        wrong.append(f"no exporter running on {', '.join(missing)}")
    for task in app:
        status = api.app_get(lab, task, names.get(task["NodeID"], "?"), "/metrics")
        active = status.get("active_stress") or []
        if active:
            wrong.append(f"web-stress still stressing: {json.dumps(active)}")
    return wrong


def reset(lab: labinfo.Lab, *, say: Callable[[str], None] = print, wait: float = 120.0) -> list[str]:
    """Puts the lab in the known state; the changes made, one sentence each. LabStateError if it cannot."""
    client = connect(lab.host_socket, timeout=60)
    try:
        notes = [f"reset {what}" for what in survey(client)]
        notes += remove_strays(lab, client)
        notes += stop_stress(lab, client, strict=False)  # first: the deploy may replace a stressed task
        if deploy.main(["--lab", "--wait", f"{wait:g}"]) != 0:
            raise LabStateError("the stack could not be deployed as its files define it (see the deploy's output above)")
        notes += stop_stress(lab, client)
        try:
            api.eventually(lambda: not check(lab, client), timeout=60, every=1.0, what="the known lab state")
        except api.WaitTimeout:
            raise LabStateError("the lab is not in the known state after a reset: " + "; ".join(check(lab, client))) from None
    finally:
        client.close()
    for note in notes or ["nothing: the lab was already in the known state"]:
        say(f"    {note}")
    return notes
