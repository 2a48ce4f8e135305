"""The deploy knows when it is done on a real Swarm, also after a node exclusion was added and lifted.

Swarm moves a task off a node when a constraint excludes it (start-first: the new task is healthy
before the old one stops), but does not move it back, nor replace it, when the constraint is lifted:
the running task keeps the old constraint in its own spec. A deploy that then compares whole specs
waits for a task that never comes; labkit/deploy.py asks Swarm instead.
"""
from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from labkit import controller_api as api
from labkit import deploy, labinfo, labreset

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def service_update(lab: labinfo.Lab, *args: str) -> None:
    done = subprocess.run(["docker", "service", "update", "--detach", *args, api.APP_SERVICE],
                          env={**os.environ, "DOCKER_HOST": lab.host_socket}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_deploy_after_a_migration_and_a_lifted_exclusion_returns_at_once(lab: labinfo.Lab, client: Any) -> None:
    labreset.reset(lab)
    names = api.node_names(client)
    [task] = api.running_tasks(client, api.APP_SERVICE)
    node = names[task["NodeID"]]
    exclusion = f"node.hostname!={node}"
    service_update(lab, "--constraint-add", exclusion, "--update-order", "start-first")
    def moved_off() -> list[dict[str, Any]] | None:
        tasks = api.running_tasks(client, api.APP_SERVICE)
        return tasks if len(tasks) == 1 and names[tasks[0]["NodeID"]] != node else None

    moved = api.eventually(moved_off, timeout=90, what=f"web-stress moved off {node} (its old task stopped)")
    service_update(lab, "--constraint-rm", exclusion)
    time.sleep(2)  # Swarm has looked at the relaxed spec: it replaces nothing
    [still] = api.running_tasks(client, api.APP_SERVICE)
    assert still["ID"] == moved[0]["ID"], "lifting the exclusion replaced the task"
    assert exclusion in still["Spec"]["Placement"]["Constraints"], still["Spec"]["Placement"]
    seen = deploy.rollout(client, api.APP_SERVICE, want=1)
    assert seen.converged, seen.describe()

    began = time.monotonic()
    assert deploy.main(["--lab", "--wait", "60"]) == 0
    took = time.monotonic() - began
    print(f"\ndeploy after the lifted exclusion: {took:.1f} s")
    assert took < 30, f"deploy took {took:.1f} s"
    [after] = api.running_tasks(client, api.APP_SERVICE)
    assert after["ID"] == still["ID"]  # nothing to roll out: the same task, still serving
    assert deploy.rollout(client, api.APP_SERVICE, want=1).converged


def test_a_redeploy_that_changes_the_spec_is_waited_for_until_the_new_task_alone_runs(lab: labinfo.Lab, client: Any) -> None:
    labreset.reset(lab)
    [old] = api.running_tasks(client, api.APP_SERVICE)
    service_update(lab, "--env-add", "SG_DEPLOY_TEST=1")  # a spec change: Swarm replaces the task (start-first)
    fresh = client.tasks(filters={"service": api.APP_SERVICE, "desired-state": "running", deploy.UP_TO_DATE: "true"})
    assert old["ID"] not in {t["ID"] for t in fresh}, "Swarm counted the old task as up to date right after the change"
    waited = deploy.wait_running(client, api.APP_SERVICE, 1, timeout=90)
    [new] = api.running_tasks(client, api.APP_SERVICE)
    assert new["ID"] != old["ID"] and "SG_DEPLOY_TEST=1" in new["Spec"]["ContainerSpec"]["Env"]
    assert waited > 0.5  # it did wait for the replacement
    state = deploy.rollout(client, api.APP_SERVICE, want=1)
    assert state.state == "completed" and state.converged, state.describe()
    labreset.reset(lab)
