"""On a real engine, a leak of the stress app ends where a real one does: the kernel's OOM killer."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from sgcommon.engine import EngineError, connect
from tests.support import unavailable

pytestmark = [pytest.mark.engine, pytest.mark.slow]
IMAGE = "10.99.0.1:5000/stressapp:latest"


def docker(*args: str, timeout: float = 60) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, timeout=timeout).stdout.strip()


@pytest.fixture
def stressapp() -> Iterator[str]:
    try:
        client = connect(timeout=3)
        client.ping()
        client.close()
    except (EngineError, Exception) as exc:  # no socket, or not answering
        unavailable(f"no Docker engine on the local socket ({type(exc).__name__})")
    if IMAGE not in docker("images", "--format", "{{.Repository}}:{{.Tag}}").splitlines():
        unavailable(f"no {IMAGE} on the engine (swarm/lab build)")
    cid = docker("run", "-d", "--name", f"sgstress-leak-{secrets.token_hex(4)}", "--memory", "128m", IMAGE)
    try:
        yield cid
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


def test_a_leak_past_the_limit_ends_in_an_oom_kill(stressapp: str) -> None:
    deadline = time.monotonic() + 20
    while True:  # the app serves in about 0.3 s; curl is in the image
        probe = subprocess.run(["docker", "exec", stressapp, "curl", "-fsS", "http://127.0.0.1:8080/health"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    answer = json.loads(docker("exec", stressapp, "curl", "-fsS", "http://127.0.0.1:8080/stress/leak?rate=50&start=10"))
    assert answer["status"] == "started"
    deadline = time.monotonic() + 20  # 128 MB at 50 MB/s: about 2.5 s
    while docker("inspect", "-f", "{{.State.Running}}", stressapp) == "true" and time.monotonic() < deadline:
        time.sleep(0.2)
    state = json.loads(docker("inspect", "-f", "{{json .State}}", stressapp))
    assert state["Running"] is False and state["OOMKilled"] is True and state["ExitCode"] == 137, state
