"""`swarmguard-controller run` as a real process: serves, decides, and exits 0 on SIGTERM."""
from __future__ import annotations

import os
import signal
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
from tests.support import free_port


def wait_healthy(url: str, proc: subprocess.Popen[str], *, timeout: float = 20.0) -> dict[str, object]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            return requests.get(url, timeout=1).json()
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
def test_the_controller_process_migrates_on_alerts_and_stops_cleanly_on_sigterm(fake_engine: FakeEngine,
                                                                                 tmp_path: Path) -> None:
    fake_engine.create_service(service_spec("web", replicas=1, labels={"swarmguard.enable": "true"},
                                            order="start-first"))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [task] = SwarmAdapter(connect(fake_engine.base_url)).list_tasks(service="web", desired_state="running")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    port = free_port()
    env = {**os.environ, "ALERT_TOKEN_FILE": str(token_file), "CONTROLLER_SCRAPE_INTERVAL": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "--listen", "127.0.0.1", "--port", str(port),
         "--docker-url", fake_engine.base_url, "--exporters", "127.0.0.1:1", "--rules", "rules"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(f"{base}/healthz", proc)["reconciled"] is True
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
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr[-2000:]
    assert '"msg":"controller stopped"' in stderr
    assert stderr.count('"msg":"exporter unreachable"') == 1
