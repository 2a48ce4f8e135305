"""On the lab: the stress app's image becomes healthy through its own health-probe and stops
gracefully at once on SIGTERM; the deployed stack carries the fast probe (docs/fast-recovery.md).
Run with -s to see the figures."""
from __future__ import annotations

import time

import pytest

from labkit import labinfo, scenario1, timeline
from labkit.controller_api import APP_SERVICE
from sgcommon.engine import connect
from tests.lab.conftest import APP_IMAGE

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def test_the_app_image_is_healthy_through_its_own_probe_and_exits_0_soon_after_sigterm(lab: labinfo.Lab) -> None:
    worker = sorted(name for name, socket in lab.node_sockets.items() if socket != lab.host_socket)[0]
    client = connect(lab.socket_of(worker), timeout=60)
    host = client.create_host_config(nano_cpus=500_000_000, mem_limit="512m")
    cid = client.create_container(APP_IMAGE, host_config=host, labels={"org.swarmguard.test": "fast-recovery"})["Id"]
    try:
        since = time.time()
        client.start(cid)
        deadline = time.monotonic() + 30
        while (health := client.inspect_container(cid)["State"]["Health"])["Status"] != "healthy":
            assert time.monotonic() < deadline, f"not healthy after 30 s: {health}"
            time.sleep(0.05)
        assert health["Log"][-1]["ExitCode"] == 0
        client.stop(cid, timeout=10)
        state = client.inspect_container(cid)["State"]
        events = timeline.container_events(lab.socket_of(worker), cid, since=since - 1, until=time.time())
    finally:
        client.remove_container(cid, force=True)
        client.close()
    assert state["ExitCode"] == 0 and not state["OOMKilled"]  # SIGTERM handled: not 137 after the grace period
    found = timeline.first_times(events, {"start": "start", "health_status: healthy": "healthy", "kill": "kill",
                                          "die": "die"})
    assert found["start"] < found["healthy"] < found["kill"] <= found["die"]
    print(f"\n{worker}: start -> healthy {found['healthy'] - found['start']:.3f} s, "
          f"SIGTERM -> exit {found['die'] - found['kill']:.3f} s")


def test_the_deployed_web_stress_probes_with_health_probe_every_100_ms(lab: labinfo.Lab) -> None:
    client = connect(lab.host_socket, timeout=60)
    try:
        scenario1.ensure_deployed(client)
        health = client.inspect_service(APP_SERVICE)["Spec"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    finally:
        client.close()
    assert health["Test"] == ["CMD", "health-probe", "8080", "/health"]
    assert (health["Interval"], health["Timeout"], health["StartPeriod"]) == (100_000_000, 5_000_000_000, 10_000_000_000)
    assert "StartInterval" not in health  # Engine 20.10 (API 1.41): the deploy keeps the short interval
