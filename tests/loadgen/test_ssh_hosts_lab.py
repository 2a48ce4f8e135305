"""The load generator's ssh path against real ssh servers: two load hosts in the lab (Debian's
openssh-server and python3, key login, host keys checked; labkit/loadhosts.py), driven by the real
tests/scripts/alpine_load_orchestrator --ssh-hosts. The requests the hosts report must be the
requests web-stress counted (its GET /stats), and stopping or killing the orchestrator must leave
no generator running on the hosts. About 40 s on a warm lab.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sgcommon.engine import EngineError, connect
from labkit import controller_api as api
from labkit import deploy, labinfo, loadhosts
from labkit.loadhosts import LoadHosts
from tests.support import unavailable

pytestmark = [pytest.mark.swarm, pytest.mark.slow]

ORCHESTRATOR = labinfo.REPO / "tests" / "scripts" / "alpine_load_orchestrator"
TARGET = "http://web-stress:8080/api/data"
TOLERANCE = 0.02  # app count vs what the hosts report


@pytest.fixture(scope="module")
def client(lab: labinfo.Lab) -> Iterator[Any]:
    engine = connect(lab.host_socket, timeout=60)
    yield engine
    engine.close()


def _image_pushed() -> bool:
    try:
        tags = requests.get(f"http://{labinfo.REGISTRY}/v2/loadhost/tags/list", timeout=3)
        return tags.ok and "latest" in (tags.json().get("tags") or [])
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def hosts(lab: labinfo.Lab, client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadHosts]:
    if not _image_pushed() and labinfo.run_lab("build").returncode != 0:
        unavailable("`swarm/lab build` failed (see its output above)")
    with LoadHosts(client, tmp_path_factory.mktemp("loadhosts"), count=2) as made:
        yield made
    left = client.containers(all=True, filters={"label": loadhosts.LABEL})
    assert left == [], f"load-host containers left after the tests: {[c['Names'] for c in left]}"


def app_counts(lab: labinfo.Lab, client: Any) -> dict[str, dict[str, Any]]:
    """Per running web-stress container: its /stats count and its address on the overlay."""
    names = api.node_names(client)
    out: dict[str, dict[str, Any]] = {}
    for task in api.running_tasks(client, api.APP_SERVICE):
        stats = api.app_get(lab, task, names[task["NodeID"]], "/stats")
        addresses = [a.split("/")[0] for att in task.get("NetworksAttachments") or []
                     if att["Network"]["Spec"]["Name"] == lab.network for a in att.get("Addresses") or []]
        out[task["Status"]["ContainerStatus"]["ContainerID"]] = {"count": int(stats["api_data_requests"]),
                                                                 "address": addresses[0] if addresses else None}
    return out


@pytest.fixture(scope="module")
def app(lab: labinfo.Lab, client: Any) -> None:
    """web-stress running, with an image that has /stats (a deploy rolls the last build out)."""
    def readable() -> bool:
        try:
            return bool(app_counts(lab, client))
        except (EngineError, KeyError, ValueError):
            return False

    if not readable():
        assert deploy.main(["--lab", "--wait", "120"]) == 0, "swarm/lab deploy failed"
        api.eventually(readable, timeout=60, what="web-stress answering /stats (an image from before it? "
                                                   "swarm/lab build && swarm/lab deploy)")


def orchestrator(hosts: LoadHosts, *, rps: float, ramp: float, hold: float, ramp_down: float) -> list[str]:
    return [str(ORCHESTRATOR), "--ssh-hosts", ",".join(hosts.names), "--ssh-config", str(hosts.ssh_config),
            "--target", TARGET, "--rps", str(rps), "--ramp-time", str(ramp), "--hold-time", str(hold),
            "--ramp-down-time", str(ramp_down)]


def summary_of(out: str) -> dict[str, Any]:
    return dict(json.loads(out.strip().splitlines()[-1])["summary"])


def served_between(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Requests each replica counted in between; the replicas must be the same (a restart resets a count)."""
    assert set(after) == set(before), f"web-stress replicas changed during the run: {sorted(before)} -> {sorted(after)}"
    return {cid: after[cid]["count"] - before[cid]["count"] for cid in after}


def generators_left(hosts: LoadHosts) -> dict[str, list[str]]:
    return {name: [p for p in hosts.processes(name) if p.startswith("python3")] for name in hosts.names}


def wait_no_generators(hosts: LoadHosts, *, timeout: float = 10.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while any((left := generators_left(hosts)).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {name: procs for name, procs in left.items() if procs}


def assert_counted(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], summary: dict[str, Any]) -> str:
    """The app's count matches the hosts' (ok + failed: a failed request may still have been served)."""
    served = served_between(before, after)
    counted = sum(served.values())
    reported_ok, reported_all = summary["ok"], summary["ok"] + summary["failed"]
    assert reported_ok > 0
    assert reported_ok * (1 - TOLERANCE) <= counted <= reported_all * (1 + TOLERANCE), (counted, summary)
    for cid, n in served.items():  # and so does each replica's, by its address on the overlay
        by_hosts = summary["addresses"].get(after[cid]["address"], 0)
        assert abs(n - by_hosts) <= max(TOLERANCE * by_hosts, 2), (cid[:12], n, by_hosts, summary["addresses"])
    per_host = {name: (g["sent"], g["ok"]) for name, g in summary["per_generator"].items()}
    return (f"hosts sent/ok {per_host}; app counted {counted} on {len(served)} replica(s) {list(served.values())}; "
            f"difference {100 * (counted - reported_ok) / reported_ok:+.2f} % of the hosts' ok")


def test_the_load_hosts_answer_over_ssh_as_themselves_at_addresses_of_their_own(hosts: LoadHosts) -> None:
    assert len({h.address for h in hosts.hosts}) == len({h.overlay_address for h in hosts.hosts}) == 2
    for host in hosts.hosts:
        done = hosts.ssh(host.name, "hostname; id -un; python3 -c 'import sys; print(sys.version_info >= (3, 8))'")
        assert done.stdout.split() == [host.name, loadhosts.USER, "True"], done.stderr
    # the host key is checked, not trusted on first use: a wrong key refuses the login
    first, second = hosts.hosts
    hosts.known_hosts.write_text(f"{first.name} {first.host_key}\n{second.name} {first.host_key}\n")
    try:
        refused = hosts.ssh(hosts.hosts[1].name, "true")
        assert refused.returncode == 255 and "host key" in refused.stderr.lower(), refused.stderr
    finally:
        hosts.known_hosts.write_text(loadhosts.known_hosts_text(hosts.hosts))


def test_the_requests_sent_from_two_ssh_hosts_are_the_requests_the_app_counted(
    lab: labinfo.Lab, client: Any, hosts: LoadHosts, app: None,
) -> None:
    before = app_counts(lab, client)
    started = time.monotonic()
    done = subprocess.run(orchestrator(hosts, rps=100, ramp=3, hold=10, ramp_down=3),
                          capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - started
    after = app_counts(lab, client)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = summary_of(done.stdout)
    assert set(summary["per_generator"]) == set(hosts.names)
    assert all(g["sent"] == g["planned"] and g["ok"] > 0 for g in summary["per_generator"].values()), summary
    assert summary["failed"] == 0 and summary["missed"] == 0, summary
    print(f"\nssh load, 100 req/s over 2 hosts for 16 s ({took:.1f} s): {assert_counted(before, after, summary)}")
    assert wait_no_generators(hosts) == {}


def test_stopping_the_orchestrator_stops_the_remote_generators_with_their_summaries(
    lab: labinfo.Lab, client: Any, hosts: LoadHosts, app: None,
) -> None:
    before = app_counts(lab, client)
    proc = subprocess.Popen(orchestrator(hosts, rps=40, ramp=0, hold=120, ramp_down=0),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = {proc.stdout.readline().split(" ")[0] for _ in range(6)}  # three seconds of both hosts
        assert seen == set(hosts.names)
        running = generators_left(hosts)
        assert all(len(procs) == 1 for procs in running.values()), running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "stopped early" in err, err[-2000:]
    summary = summary_of(out)
    assert set(summary["per_generator"]) == set(hosts.names) and summary["sent"] < 40 * 20, summary
    assert wait_no_generators(hosts) == {}
    after = app_counts(lab, client)
    print(f"\nstopped after ~3 s: {assert_counted(before, after, summary)}")


def test_a_killed_orchestrator_leaves_no_generator_running_on_the_hosts(hosts: LoadHosts, app: None) -> None:
    proc = subprocess.Popen(orchestrator(hosts, rps=20, ramp=0, hold=120, ramp_down=0),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert {proc.stdout.readline().split(" ")[0] for _ in range(4)} == set(hosts.names)
        os.kill(proc.pid, signal.SIGKILL)  # the script execs python: this is the orchestrator, no cleanup
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
    assert wait_no_generators(hosts) == {}
    assert api.eventually(lambda: subprocess.run(["pgrep", "-f", f"ssh -F {hosts.ssh_config}"]).returncode == 1,
                          timeout=10, what="the orchestrator's ssh clients gone")


def test_load_hosts_that_do_not_come_up_are_removed_and_say_why(client: Any, tmp_path: Path) -> None:
    """The lab's base image has python3 but no sshd (its shell exits at once): the start fails
    with the host named, and leaves nothing behind."""
    broken = LoadHosts(client, tmp_path, count=2, image=labinfo.BASE_IMAGE, prefix="sgbroken", ready_timeout=3,
                       say=lambda _: None)
    with pytest.raises(loadhosts.LoadHostError, match=r"load host sgbroken-\d .*(no address|did not answer over ssh)"):
        with broken:
            pass
    assert client.containers(all=True, filters={"label": f"{loadhosts.LABEL}=sgbroken"}) == []
