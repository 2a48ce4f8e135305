"""The lab as other work uses it: a real multi-node swarm, the probe and the reactive baseline."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from labkit import deploy, labinfo
from labkit.baseline import Baseline
from labkit.zerodowntime import ProbeRun

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def lab_snapshot(client: Any) -> dict[str, Any]:
    """What `up` could change: nodes, engines' pids, namespaces, links, the bridge rule."""
    nodes = sorted((n["ID"], n["Description"]["Hostname"], n["Status"]["State"]) for n in client.nodes())
    pids = {p: Path(p).read_text().strip() for p in
            ["/var/run/docker.pid"] + [f"/run/sgn{i}/dockerd.pid" for i in range(1, labinfo.workers_count() + 1)]}
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show", "master", "sgbr0"], capture_output=True, text=True,
                           check=True).stdout
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    return {"nodes": nodes, "pids": pids, "netns": sorted(netns.split("\n")),
            "links": sorted(line.split(":")[1] for line in links.splitlines()),
            "bridge_rules": rules.count("-i sgbr0 -o sgbr0 -j ACCEPT")}


def test_running_up_on_a_running_lab_changes_nothing(lab: labinfo.Lab, client: Any) -> None:
    before = lab_snapshot(client)
    assert labinfo.run_lab("up").returncode == 0
    assert lab_snapshot(client) == before
    assert before["bridge_rules"] == 1
    assert len(before["nodes"]) == len(lab.node_sockets) >= 3


def test_every_worker_has_its_own_engine_and_host_name(lab: labinfo.Lab) -> None:
    workers = {name: url for name, url in lab.node_sockets.items() if url != lab.host_socket}
    assert sorted(workers) == [f"worker-{i}" for i in range(1, len(workers) + 1)]
    assert len(set(workers.values())) == len(workers)


def test_a_service_spreads_across_nodes(client: Any, app_service: Any) -> None:
    name = app_service(3)
    deploy.wait_running(client, name, 3, timeout=90)
    nodes = {t["NodeID"] for t in deploy.running_tasks(client, name)}
    assert len(nodes) == 3


def test_the_probe_sees_no_failure_on_a_steady_service(lab: labinfo.Lab, client: Any, app_service: Any,
                                                       test_network: str) -> None:
    name = app_service(1)
    deploy.wait_running(client, name, 1, timeout=90)
    run = ProbeRun(lab.host_socket, image=labinfo.BASE_IMAGE, network=test_network,
                   target=f"http://{name}:8080/health", interval=0.1, duration=5).start()
    summary = run.finish(timeout=60)
    assert summary["requests"] >= 30
    assert summary["failures"] == 0
    assert summary["total_downtime"] == 0


def test_the_reactive_baseline_reports_downtime_after_a_crash(lab: labinfo.Lab, client: Any,
                                                             app_service: Any, test_network: str) -> None:
    name = app_service(1)
    deploy.wait_running(client, name, 1, timeout=90)
    baseline = Baseline(lab, name, interval=0.1, timeout=90, target=f"http://{name}:8080/health",
                        network=test_network)
    it = baseline.iteration("crash")
    assert it.downtime_s > 0
    assert it.failed_requests > 0
    assert 0 < it.task_started_s <= it.task_healthy_s <= it.first_ok_s


def test_lab_containers_resolve_no_outside_name(lab: labinfo.Lab, client: Any, test_network: str) -> None:
    out = subprocess.run(
        ["docker", "-H", lab.host_socket, "run", "--rm", "--network", test_network, labinfo.BASE_IMAGE,
         "python3", "-c", "import socket,time;t=time.time()\ntry: socket.getaddrinfo('pypi.org',443)\n"
         "except OSError: print('unresolved', round(time.time()-t, 2))"],
        capture_output=True, text=True, timeout=60, check=True)
    word, seconds = out.stdout.split()
    assert word == "unresolved"
    assert float(seconds) < 2


def test_the_cli_accepts_the_production_stack_file_unchanged(lab: labinfo.Lab) -> None:
    stack = labinfo.REPO / "swarm" / "stack.yml"
    done = subprocess.run(["docker", "-H", lab.host_socket, "stack", "config", "-c", str(stack)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "web-stress:" in done.stdout
