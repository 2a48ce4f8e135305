"""Fixtures for the lab tests: the multi-node Swarm lab, brought up (and built) when it is not.

Tests marked `swarm` get `lab`; a lab that cannot start is a skip with the reason outside CI and a
failure under CI=true (tests/support.py). Test services live on their own overlay network with
their own names, so they never answer for (or collide with) the `web-stress` other work uses.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from docker import types

from sgcommon.engine import EngineError, connect, translate
from tests.support import unavailable
from labkit import labinfo

TEST_NETWORK = "sglabtest-net"
APP_IMAGE = f"{labinfo.REGISTRY}/stressapp:latest"


def _images_pushed() -> bool:
    try:
        tags = requests.get(f"http://{labinfo.REGISTRY}/v2/stressapp/tags/list", timeout=3)
        return tags.ok and "latest" in (tags.json().get("tags") or [])
    except requests.RequestException:
        return False


def ensure_lab() -> labinfo.Lab:
    """The lab, after `swarm/lab up` and `swarm/lab build` if needed; skips/fails with the reason."""
    if os.geteuid() != 0:
        unavailable("the Swarm lab needs root (namespaces, bridge, iptables, dockerd)")
    try:
        labinfo.check_lab()
    except labinfo.LabNotUp:
        if labinfo.run_lab("up").returncode != 0:
            unavailable("`swarm/lab up` failed (see its output above)")
    if not _images_pushed() and labinfo.run_lab("build").returncode != 0:
        unavailable("`swarm/lab build` failed (see its output above)")
    try:
        return labinfo.check_lab()
    except labinfo.LabNotUp as exc:
        unavailable(str(exc))
        raise


@pytest.fixture(scope="session")
def lab() -> labinfo.Lab:
    return ensure_lab()


@pytest.fixture(scope="session")
def client(lab: labinfo.Lab) -> Any:
    return connect(lab.host_socket, timeout=60)


@pytest.fixture(scope="session")
def test_network(client: Any) -> str:
    with translate("test network"):
        if not client.networks(names=[TEST_NETWORK]):
            client.create_network(TEST_NETWORK, driver="overlay", attachable=True)
    return TEST_NETWORK


def create_app_service(client: Any, network: str, *, replicas: int, name: str | None = None) -> str:
    """A web-stress-like service (the lab's app image, 1 s healthcheck, dnsrr) on `network`."""
    name = name or f"sglabtest-{uuid.uuid4().hex[:6]}"
    health = types.Healthcheck(
        test=["CMD", "curl", "-fsS", "-o", "/dev/null", "-m", "2", "http://127.0.0.1:8080/health"],
        interval=1_000_000_000, timeout=2_000_000_000, retries=3, start_period=10_000_000_000,
    )
    template = types.TaskTemplate(
        types.ContainerSpec(APP_IMAGE, healthcheck=health, stop_grace_period=10_000_000_000),
        restart_policy=types.RestartPolicy(condition="any", delay=5_000_000_000),
        resources=types.Resources(cpu_limit=500_000_000, mem_limit=512 * 2**20),
        placement=types.Placement(constraints=["node.role==worker"]),
        networks=[types.NetworkAttachmentConfig(network, aliases=[name])],
    )
    with translate(f"create {name}"):
        client.create_service(template, name=name, mode=types.ServiceMode("replicated", replicas=replicas),
                              endpoint_spec=types.EndpointSpec(mode="dnsrr"))
    return name


@pytest.fixture
def app_service(client: Any, test_network: str) -> Iterator[Any]:
    """A factory of test services, all removed at the end of the test."""
    made: list[str] = []

    def make(replicas: int) -> str:
        made.append(create_app_service(client, test_network, replicas=replicas))
        return made[-1]

    yield make
    for name in made:
        try:
            with translate(f"remove {name}"):
                client.remove_service(name)
        except EngineError:
            pass
