"""The suite's starting point: whatever was left on the lab, the reset brings the known state back and
says what it changed."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from sgcommon.engine import connect
from labkit import controller_api as api
from labkit import labinfo, labreset

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def docker(lab: labinfo.Lab, *args: str) -> str:
    done = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": lab.host_socket},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_lab_left_in_a_mess_is_reset_to_the_known_state_and_every_change_is_named(lab: labinfo.Lab) -> None:
    labreset.reset(lab)
    client = connect(lab.host_socket, timeout=60)
    try:
        names = api.node_names(client)
        [task] = api.running_tasks(client, api.APP_SERVICE)
        node = names[task["NodeID"]]
        # The controller goes first: running, it would lift the long-expired exclusion below at once
        # (and clear the in-flight marker), before the reset could see them.
        docker(lab, "service", "scale", "--detach", f"{api.CONTROLLER_SERVICE}=0")
        # Its container, not its task: a task told to shut down leaves the running list at once, but
        # its process keeps lifting exclusions until the container has stopped.
        api.eventually(lambda: not api.controller_container(client), timeout=60,
                       what="the controller's container stopped")
        docker(lab, "service", "update", "--detach", "--replicas", "2",
               "--label-add", 'swarmguard.exclusions={"' + node + '": 1.0}', "--label-add", 'swarmguard.action={"action": "scale_up"}',
               "--constraint-add", f"node.hostname!={node}", api.APP_SERVICE)
        docker(lab, "run", "-d", "--label", "org.swarmguard.probe=1", labinfo.BASE_IMAGE, "sleep", "600")
        def two() -> list[dict[str, Any]] | None:
            tasks = api.running_tasks(client, api.APP_SERVICE)
            return tasks if len(tasks) == 2 else None

        running = api.eventually(two, timeout=90, what="2 web-stress tasks")
        for stressed in running:  # whichever task the scale-down keeps, it is stressed
            answer = api.app_get(lab, stressed, names[stressed["NodeID"]], "/stress/cpu?target=30&duration=300&ramp=1")
            assert answer["status"] == "started"
        said: list[str] = []
        notes = labreset.reset(lab, say=said.append)
        text = "\n".join(notes)
        for expected in ("2 replicas, not 1", "label swarmguard.exclusions", "label swarmguard.action",
                         f"constraint node.hostname!={node}", f"{api.CONTROLLER_SERVICE}: 0 replicas",
                         "removed probe container", "stopped the cpu stress"):
            assert expected in text, f"{expected!r} not in {notes}"
        assert said == [f"    {n}" for n in notes]
        assert labreset.check(lab, client) == []
        [task] = api.running_tasks(client, api.APP_SERVICE)
        metrics = api.app_get(lab, task, names[task["NodeID"]], "/metrics")
        assert metrics["active_stress"] == [], json.dumps(metrics)
        assert labreset.reset(lab, say=said.append) == []  # a second reset finds nothing to do
    finally:
        client.close()
