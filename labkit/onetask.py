"""The per-run steps that the one-task runs on the lab share: scenario 1, scenario 3 and the fast leak.

Each of those runs takes the service's one running task, starts the probe and waits until it sees
the service steadily, stresses the task, waits for SwarmGuard's migration, and stops the stress
if the old task still runs. The steps are written here once, so the runs wait the same way and
for the same things (labkit/scenario1.py, labkit/scenario3.py, labkit/fastleak.py).
"""
from __future__ import annotations

import time
from typing import Any

from labkit import controller_api as api
from labkit import labinfo
from labkit.zerodowntime import ProbeRun
from sgcommon.engine import EngineError, translate

UP = ("running", "starting")  # task states of a task that still holds its container
STEADY_OKS = 10  # the probe's last answers that must all be good before the stress starts
RECORD_WAIT = 15.0  # s for the migrate record after the old task is gone (a migration records when it ends)


def only_task(client: Any, service: str) -> tuple[dict[str, Any], str]:
    """The service's one running task (waited for, up to 120 s) and the name of its node."""
    task = api.eventually(lambda: (lambda r: r[0] if len(r) == 1 else None)(api.running_tasks(client, service)),
                          timeout=120, what=f"one running task of {service}")
    return task, api.node_names(client)[task["NodeID"]]


def task_state(client: Any, service: str, task_id: str) -> str | None:
    """The state of one task of `service`; None when Swarm no longer lists it."""
    with translate(f"tasks of {service}"):
        tasks = client.tasks(filters={"service": service})
    return next((t["Status"]["State"] for t in tasks if t["ID"] == task_id), None)


def wait_steady(probe: ProbeRun, *, oks: int = STEADY_OKS) -> None:
    """Waits (up to 60 s) until the probe's last `oks` requests all succeeded."""
    api.eventually(lambda: (lambda t: len(t) == oks and all(r["ok"] for r in t))(probe.records[-oks:]),
                   timeout=60, every=0.1, what="the probe to see the service steadily")


def await_migration(client: Any, service: str, task_id: str, seen: set[str], *,
                    timeout: float) -> dict[str, Any] | None:
    """Waits for the old task to go (up to `timeout`; a leak may also end it by an OOM kill), then
    for the controller's migrate record (None when there is none: an OOM kill or no migration),
    then for one running task again, and probes 2 s more."""
    try:
        api.eventually(lambda: task_state(client, service, task_id) not in UP, timeout=timeout, every=0.25,
                       what="the old task gone")
    except api.WaitTimeout:
        pass
    try:
        record: dict[str, Any] | None = api.eventually(
            lambda: next(iter(api.new_records(api.events(client), seen, action="migrate", service=service)), None),
            timeout=RECORD_WAIT, what="the controller's migrate record")
    except api.WaitTimeout:
        record = None
    api.eventually(lambda: len(api.running_tasks(client, service)) == 1, timeout=60,
                   what=f"one running task of {service} again")
    time.sleep(2.0)  # a little probing after the move
    return record


def stop_stress(lab: labinfo.Lab, client: Any, service: str, task: dict[str, Any], node: str) -> None:
    """Stops the stress on the old task if it still runs (a failed or timed-out migration left it)."""
    if task_state(client, service, task["ID"]) in UP:
        try:
            api.app_get(lab, task, node, "/stress/stop")
        except EngineError as exc:
            print(f"    could not stop the stress on {node}: {exc}", flush=True)
