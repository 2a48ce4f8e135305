"""Rules changed live on the lab's real Swarm with `swarmguard-controller rules apply`.

Run after `swarm/lab build && swarm/lab deploy` from this checkout, under the lab lock. Shown here,
on Docker Engine 20.10 with the controller the stack deployed: an applied set is in effect on the
controller's /metrics within 5 s of the start of `rules apply` (the latency of five applies is
printed) and its container is the same; a broken set is refused at apply with `file:line` and
nothing is written; a broken set that reaches the controller anyway is refused there and the last
good set stays; a redeploy of the stack keeps the applied set; and a new controller task (what a
reschedule starts) comes up with it. The lab has one manager (the host engine), so a reschedule to
another manager cannot be shown here (docs/rules.md). Whatever happens, the module ends with no set
active (the lab's bind-mounted rule files in effect again) and the sets it stored removed.
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.ruleconfigs import ACTIVE_LABEL, SET_LABEL, RuleConfigs
from controller.rules.bundle import RuleBundle, from_paths
from sgcommon.engine import EngineError, NotFound, translate
from sgcommon.engine.swarm import SwarmAdapter
from labkit import deploy, labinfo
from labkit.controller_api import CONTROLLER_SERVICE, controller_container, controller_get, eventually

pytestmark = [pytest.mark.swarm, pytest.mark.slow]

CLI = [sys.executable, "-m", "controller"]
ROOT = labinfo.REPO
INFO = re.compile(r'^swarmguard_rules_info\{set="([^"]+)",source="([^"]+)"\} 1\.0$', re.M)


def rules_in_effect(client: Any) -> tuple[str, str] | None:
    """(set, source) from the controller's /metrics; None while it does not answer."""
    try:
        found = INFO.findall(controller_get(client, "/metrics"))
    except EngineError:
        return None
    return (found[0][0], found[0][1]) if len(found) == 1 else None


def metric(client: Any, name: str) -> float:
    text = controller_get(client, "/metrics")
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


def logged(client: Any, container: str, msg: str) -> list[dict[str, Any]]:
    """The controller's JSON log lines with message `msg`, oldest first."""
    with translate("controller logs"):
        text = client.logs(container, stdout=True, stderr=True, tail=500).decode(errors="replace")
    found = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("msg") == msg:
            found.append(doc)
    return found


def apply(directory: Path, lab: labinfo.Lab) -> subprocess.CompletedProcess[str]:
    """`swarmguard-controller rules apply DIR` as an operator runs it (a new process)."""
    return subprocess.run([*CLI, "rules", "apply", str(directory), "--docker-host", lab.host_socket,
                           "--service", CONTROLLER_SERVICE], capture_output=True, text=True, timeout=60, check=False)


def rule_dir(parent: Path, cpu_high: int) -> Path:
    """The lab's rule files with another CPU threshold (the lab controller's overrides still fit)."""
    directory = parent / f"cpu{cpu_high}"
    shutil.copytree(ROOT / "rules", directory)
    text = (directory / "default.yml").read_text()
    assert "cpu_high: 75" in text
    (directory / "default.yml").write_text(text.replace("cpu_high: 75", f"cpu_high: {cpu_high}"))
    return directory


def controller_task(client: Any) -> tuple[str, str] | None:
    """(task id, container id) of the controller's one running task; None while there is not exactly
    one (a new task is `starting` until its health check passes, though it may answer already)."""
    with translate("controller tasks"):
        tasks = [t for t in client.tasks(filters={"service": CONTROLLER_SERVICE, "desired-state": "running"})
                 if t["Status"]["State"] == "running"]
    return (tasks[0]["ID"], tasks[0]["Status"]["ContainerStatus"]["ContainerID"]) if len(tasks) == 1 else None


def running_controller(client: Any) -> tuple[str, str]:
    return eventually(lambda: controller_task(client), timeout=60, what="one running controller task")


@pytest.fixture(scope="module")
def configs(lab: labinfo.Lab, client: Any) -> Iterator[RuleConfigs]:
    """The lab's rule sets; at the end no set is active and the ones this module stored are gone."""
    with translate("controller service"):
        present = client.services(filters={"name": CONTROLLER_SERVICE})
    if not present:
        assert deploy.main(["--lab", "--wait", "120"]) == 0
    adapter = SwarmAdapter(client)
    store = RuleConfigs(adapter)
    before = {c.name for c in store.stored()}
    store.reset()
    try:
        yield store
    finally:
        store.reset()
        for config in store.stored():
            if config.name not in before:
                try:
                    adapter.remove_config(config.id)
                except NotFound:
                    pass
        back = eventually(lambda: (rules_in_effect(client) or ("", ""))[1] == "files", timeout=30,
                          what="the controller back on its rule files")
        assert back


def test_an_applied_set_is_in_effect_within_5_s_and_the_controller_is_not_restarted(
        configs: RuleConfigs, client: Any, lab: labinfo.Lab, tmp_path: Path) -> None:
    eventually(lambda: rules_in_effect(client), timeout=60, what="the controller's /metrics")
    task, container = running_controller(client)
    latencies = []
    for round_ in range(5):
        directory = rule_dir(tmp_path, 80 + round_)
        wanted = from_paths([str(directory)]).name
        wall = time.time()
        started = time.monotonic()
        done = apply(directory, lab)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"applied {wanted} (default.yml;" in done.stdout
        eventually(lambda wanted=wanted: rules_in_effect(client) == (wanted, "config"), timeout=10, every=0.05,
                   what=f"{wanted} in effect")
        latencies.append(time.monotonic() - started)
    print(f"\nrules apply -> /metrics shows the set, 5 applies: median {statistics.median(latencies):.2f} s, "
          f"min {min(latencies):.2f} s, max {max(latencies):.2f} s, all {[round(x, 2) for x in latencies]}")
    assert max(latencies) < 5.0
    assert controller_task(client) == (task, container)  # the same task, the same container
    # when the last set took effect: on /metrics (the controller's clock, the host's here) and in the log
    # (`applied`, the time `rules apply` wrote into the config's label)
    took_effect = metric(client, "swarmguard_rules_applied_timestamp_seconds")
    assert wall - 1.0 <= took_effect <= time.time() + 1.0, (wall, took_effect)
    reloaded = logged(client, container, "rules reloaded")
    assert reloaded and (reloaded[-1]["set"], reloaded[-1]["source"]) == (wanted, "config"), reloaded[-1:]
    applied_at = datetime.fromisoformat(reloaded[-1]["applied"].replace("Z", "+00:00")).timestamp()
    assert wall - 1.0 <= applied_at <= took_effect + 1.0, (wall, applied_at, took_effect)
    status = subprocess.run([*CLI, "rules", "status", "--docker-host", lab.host_socket], capture_output=True,
                            text=True, timeout=60, check=False)
    assert status.returncode == 0 and f"active rule set: {wanted}" in status.stdout, status.stdout + status.stderr


def test_a_broken_set_is_refused_at_apply_with_file_and_line_and_nothing_changes(
        configs: RuleConfigs, client: Any, lab: labinfo.Lab, tmp_path: Path) -> None:
    in_effect = eventually(lambda: rules_in_effect(client), timeout=30, what="the controller's /metrics")
    stored = len(configs.stored())
    directory = rule_dir(tmp_path, 77)
    text = (directory / "default.yml").read_text()
    (directory / "default.yml").write_text(text.replace("action: migrate", "action: teleport", 1))
    done = apply(directory, lab)
    line = 1 + text[:text.index("action: migrate")].count("\n")
    assert done.returncode == 1
    print(f"\nrefused at apply: {done.stdout.splitlines()[1]}")
    assert re.search(rf"^{re.escape(str(directory))}/default.yml:{line}: rule \S+: action must be one of", done.stdout,
                     re.M), done.stdout
    assert len(configs.stored()) == stored
    time.sleep(2.0)  # two looks of the controller at the applied set
    assert rules_in_effect(client) == in_effect


def test_a_broken_set_that_reaches_the_controller_is_refused_there_and_the_last_good_set_stays(
        configs: RuleConfigs, client: Any, lab: labinfo.Lab, tmp_path: Path) -> None:
    good = rule_dir(tmp_path, 88)
    assert apply(good, lab).returncode == 0
    wanted = (from_paths([str(good)]).name, "config")
    eventually(lambda: rules_in_effect(client) == wanted, timeout=10, what="the good set in effect")
    failures = metric(client, 'swarmguard_rules_reload_total{result="failure"}')
    text = (good / "default.yml").read_text().replace("action: migrate", "action: teleport", 1)
    broken = RuleBundle((("default.yml", text.encode()),))
    configs.apply(broken)  # past `rules apply`'s validation: what a hand-made or tampered config would be
    eventually(lambda: metric(client, 'swarmguard_rules_reload_total{result="failure"}') == failures + 1, timeout=10,
               what="the controller's refusal")
    assert metric(client, "swarmguard_rules_last_reload_success") == 0
    assert rules_in_effect(client) == wanted
    _, container = running_controller(client)
    refusals = [doc for doc in logged(client, container, "rule files rejected, previous rules stay in effect")
                if doc.get("rejected_set") == broken.name]
    assert refusals and refusals[-1]["set"] == wanted[0], refusals
    [error] = refusals[-1]["errors"]
    assert re.fullmatch(r"default\.yml:\d+: rule \S+: action must be one of .*", error), error
    print(f"\nrefused by the controller, {wanted[0]} kept: {error}")
    assert apply(good, lab).returncode == 0  # the good set again: made active again at once
    eventually(lambda: metric(client, "swarmguard_rules_last_reload_success") == 1, timeout=10, what="success again")


def test_a_redeploy_of_the_stack_keeps_the_applied_set(configs: RuleConfigs, client: Any, lab: labinfo.Lab,
                                                        tmp_path: Path) -> None:
    directory = rule_dir(tmp_path, 86)
    assert apply(directory, lab).returncode == 0
    wanted = (from_paths([str(directory)]).name, "config")
    eventually(lambda: rules_in_effect(client) == wanted, timeout=10, what="the set in effect")
    assert deploy.main(["--lab", "--wait", "120"]) == 0  # what `docker stack deploy` does to services
    eventually(lambda: rules_in_effect(client), timeout=60, what="the controller after the deploy")
    assert rules_in_effect(client) == wanted
    active = configs.active()
    assert active is not None and active.name == wanted[0] and active.labels[ACTIVE_LABEL] == "true"
    assert active.labels[SET_LABEL] == "1"


def test_a_new_controller_task_comes_up_with_the_applied_set(configs: RuleConfigs, client: Any, lab: labinfo.Lab,
                                                             tmp_path: Path) -> None:
    directory = rule_dir(tmp_path, 87)
    assert apply(directory, lab).returncode == 0
    wanted = (from_paths([str(directory)]).name, "config")
    eventually(lambda: rules_in_effect(client) == wanted, timeout=10, what="the set in effect")
    old_task, old_container = running_controller(client)
    started = time.monotonic()
    forced = subprocess.run(["docker", "-H", lab.host_socket, "service", "update", "--force", "--detach",
                             CONTROLLER_SERVICE], capture_output=True, text=True, timeout=60, check=False)
    assert forced.returncode == 0, forced.stderr
    eventually(lambda: controller_container(client) not in ("", old_container), timeout=90,
               what="a new controller container")
    eventually(lambda: rules_in_effect(client) == wanted, timeout=60, what="the new controller on the applied set")
    def new_one() -> tuple[str, str] | None:
        found = controller_task(client)
        return found if found is not None and found[0] != old_task else None

    new_task, new_container = eventually(new_one, timeout=60, what="the new controller task running")
    assert new_container != old_container
    print(f"\nnew controller task {new_task[:12]} (container {new_container[:12]}) serves {wanted[0]} from the "
          f"config {time.monotonic() - started:.1f} s after `docker service update --force`")
