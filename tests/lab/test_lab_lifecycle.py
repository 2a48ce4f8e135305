"""`swarm/lab down` removes everything the lab made, and `up` brings it all back.

Tearing the lab down stops every other engineer's (or test's) containers, so outside CI this
runs only with SG_LAB_ALLOW_DOWN=1; under CI=true it always runs.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.lab.conftest import ensure_lab
from tests.support import in_ci
from labkit import labinfo

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def leftovers() -> list[str]:
    """Anything of the lab still on the machine."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith("sgn")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {name}" for name in ("sgbr0", "docker0", "docker_gwbridge") if f" {name}:" in links]
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    found += [f"rule {r}" for r in rules.splitlines() if "sgbr0" in r or "DOCKER" in r]
    found += [f"path {p}" for p in ("/var/lib/swarmguard-lab", "/run/swarmguard-lab", "/run/sgn1",
                                    "/var/run/docker.sock") if Path(p).exists()]
    for name in ("dockerd", "containerd", "docker-registry"):
        procs = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False).stdout
        found += [f"process {name} {pid}" for pid in procs.split()]
    procs = subprocess.run(["pgrep", "-f", "swarm/lab.d/nxdns.py"], capture_output=True, text=True, check=False)
    found += [f"process nxdns {pid}" for pid in procs.stdout.split()]
    found += [f"path {p}" for p in map(str, Path("/run").glob("sgn*"))]
    return found


def test_down_removes_everything_and_up_restores_the_lab() -> None:
    if not (in_ci() or os.environ.get("SG_LAB_ALLOW_DOWN") == "1"):
        pytest.skip("would tear down a shared lab: runs under CI=true or with SG_LAB_ALLOW_DOWN=1")
    ensure_lab()
    assert labinfo.run_lab("down").returncode == 0
    assert leftovers() == []
    assert labinfo.run_lab("down").returncode == 0  # down twice is fine too
    assert labinfo.run_lab("status").returncode != 0
    for script in ("cleanup", "validate_zero_downtime", "deploy_web_stress", "baseline_reactive_test"):
        done = subprocess.run([str(labinfo.REPO / "tests" / "scripts" / script)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2, (script, done.stderr)
        assert "swarm/lab up" in done.stderr
    lab = ensure_lab()
    assert len(lab.node_sockets) == labinfo.workers_count() + 1
