"""On a real engine, the exporter's figures agree with `docker stats --no-stream` for a busy container."""
from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from exporter.collect import Collector, NodeLink
from exporter.discovery import Discovery, Inventory
from exporter.sample import Sweep
from sgcommon.engine import EngineError, connect
from tests.support import unavailable

pytestmark = [pytest.mark.engine, pytest.mark.slow]
IMAGE_PATTERN = re.compile(r"^10\.99\.0\.1:5000/swarmguard-base:latest$|^10\.99\.0\.1:5000/stressapp:latest$")
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def docker(*args: str, timeout: float = 60) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=timeout).stdout.strip()


def lab_image() -> str:
    try:
        client = connect(timeout=3)
        client.ping()
        client.close()
    except (EngineError, Exception) as exc:  # no socket, or not answering
        unavailable(f"no Docker engine on the local socket ({type(exc).__name__})")
    images = docker("images", "--format", "{{.Repository}}:{{.Tag}}").splitlines()
    usable = sorted(i for i in images if IMAGE_PATTERN.match(i))
    if not usable:
        unavailable("no lab image with python3 on the engine (swarm/lab build)")
    return usable[0]


@pytest.fixture
def busy_container() -> Iterator[str]:
    image = lab_image()
    name = f"sgexp-test-{secrets.token_hex(4)}"
    cid = docker("run", "-d", "--name", name, "--cpus", "0.5", "--memory", "256m", "--entrypoint", "python3", image,
                 "-c", "b = bytearray(96 << 20)\nwhile True: pass")
    try:
        yield cid
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


def stats(cid: str) -> tuple[float, float]:
    """(CPU % as docker shows it, memory usage in bytes)."""
    cpu, mem = docker("stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}", cid).split(" ", 1)
    number, unit = re.match(r"([\d.]+)(\w+)", mem.split("/")[0].strip()).groups()  # type: ignore[union-attr]
    return float(cpu.rstrip("%")), float(number) * UNITS[unit]


def test_cpu_and_memory_agree_with_docker_stats_for_a_busy_container(busy_container: str) -> None:
    inventory = Inventory()
    discovery = Discovery(inventory).start()
    collector = Collector(cgroup_root="/sys/fs/cgroup", proc_root="/proc",
                          link=NodeLink("", 100.0, "setting"), on_error=lambda kind: None)
    try:
        deadline = time.monotonic() + 10
        while busy_container not in inventory.snapshot() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert busy_container in inventory.snapshot(), "discovery did not see the container start"
        time.sleep(1.0)  # let the busy loop reach its quota
        collector.sweep(inventory.snapshot(), inventory.node)
        docker_cpu, docker_mem = stats(busy_container)  # samples over about 1-2 s
        sweep: Sweep = collector.sweep(inventory.snapshot(), inventory.node)
    finally:
        discovery.stop()
        collector.close()
    (ours,) = [s for s in sweep.containers if s.meta.id == busy_container]
    print(f"ours cpu {ours.cpu_percent * 0.5:.1f} % of a core, mem {ours.memory_bytes / 2**20:.1f} MiB; "
          f"docker {docker_cpu:.1f} %, {docker_mem / 2**20:.1f} MiB")
    assert ours.meta.cpu_limit == 0.5 and ours.meta.memory_limit == 256 << 20
    # docker shows % of one CPU; ours is % of the 0.5-CPU limit
    assert ours.cpu_percent * 0.5 == pytest.approx(docker_cpu, abs=5.0)
    assert ours.memory_bytes == pytest.approx(docker_mem, rel=0.05)
    assert ours.memory_percent == pytest.approx(100.0 * ours.memory_bytes / (256 << 20))
