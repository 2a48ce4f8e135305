"""`swarmguard-controller run` as a real process: serves, decides, and exits 0 on SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sgcommon.alert import Alert, encode_alert
from sgcommon.engine import connect
from sgcommon.engine.swarm import SwarmAdapter
from tests.fakes.engine import FakeEngine, service_spec
from tests.support import OutputLines, free_port, logged_port


def wait_healthy(url: str, proc: subprocess.Popen[str], output: OutputLines, *,
                 timeout: float = 20.0) -> dict[str, object]:
    """/healthz's answer once it comes; a refused connection or a slow answer (a busy machine) is
    tried again until `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, output.text()
        try:
            answer: dict[str, object] = requests.get(url, timeout=2).json()
            return answer
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def start_controller(args: list[str], env: dict[str, str], *,
                     tries: int = 3) -> tuple[subprocess.Popen[str], OutputLines, int]:
    """`swarmguard-controller run` on a free loopback port, and that port once it listens. The
    controller takes no port 0, so the port is picked beforehand; should something take it before
    the controller binds it (the process ends saying the address is in use), another is tried."""
    for _ in range(tries):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "controller", "run", "--listen", "127.0.0.1", "--port",
                                 str(port), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        output = OutputLines(proc.stderr)
        if output.wait_for(lambda line: logged_port(line, logger="swarmguard.controller", msg="listening"),
                           timeout=30) == port:
            return proc, output, port
        proc.kill()
        proc.wait(timeout=10)
        output.join()
        if "Address already in use" not in output.text():
            raise AssertionError(f"the controller did not start listening on {port}: {output.text()[-2000:]}")
    raise AssertionError(f"every port tried was taken before the controller could bind it ({tries} tries)")


@pytest.mark.slow
def test_the_controller_process_migrates_on_alerts_and_stops_cleanly_on_sigterm(fake_engine: FakeEngine,
                                                                                 tmp_path: Path) -> None:
    fake_engine.create_service(service_spec("web", replicas=1, labels={"swarmguard.enable": "true"},
                                            order="start-first"))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [task] = SwarmAdapter(connect(fake_engine.base_url)).list_tasks(service="web", desired_state="running")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    env = {**os.environ, "ALERT_TOKEN_FILE": str(token_file), "CONTROLLER_SCRAPE_INTERVAL": "0.5"}
    proc, output, port = start_controller(["--docker-url", fake_engine.base_url, "--exporters", "127.0.0.1:1",
                                           "--rules", "rules"], env)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_healthy(f"{base}/healthz", proc, output)["reconciled"] is True
        statuses = []
        for i in range(2):
            t = time.time() - 1.0 + 0.5 * i  # samples half a second apart, as an exporter sends them
            body = encode_alert(Alert(t0=t - 0.01, t1=t, node=task.node_hostname or "", container_id=task.container_id or "",
                                      service="web", task_id=task.id,
                                      metrics={"cpu": 91.0, "mem": 20.0, "mem_mb": 10.0, "net": 1.0, "net_rx": 0.1,
                                               "net_tx": 0.1}))
            statuses.append(requests.post(f"{base}/alert", data=body, timeout=5,
                                          headers={"Authorization": "Bearer from-a-file"}).status_code)
        assert statuses == [200, 202]
        assert requests.post(f"{base}/alert", data=body, timeout=5).status_code == 401
        end = time.monotonic() + 10
        while time.monotonic() < end and not requests.get(f"{base}/events", timeout=2).json()["events"]:
            time.sleep(0.1)
        [record] = requests.get(f"{base}/events", timeout=2).json()["events"]
        assert (record["action"], record["result"]) == ("migrate", "success")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        output.join()
    stderr = output.text()
    assert proc.returncode == 0, stderr[-2000:]
    assert '"msg":"controller stopped"' in stderr
    assert stderr.count('"msg":"exporter unreachable"') == 1


@pytest.mark.slow
def test_a_port_already_in_use_ends_the_controller_with_one_clear_line_and_status_2(fake_engine: FakeEngine) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "controller", "run", "--listen", "127.0.0.1", "--port", str(port),
                               "--docker-url", fake_engine.base_url, "--exporters", "127.0.0.1:1", "--rules", "rules",
                               "--insecure-no-alert-token"],
                              env={**os.environ}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"swarmguard-controller: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
