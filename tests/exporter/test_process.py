"""The exporter as a process: engine, host trees, controller and InfluxDB all local; SIGTERM flushes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sgcommon.alert import decode_alert
from tests.exporter.conftest import FakeHost
from tests.exporter.peers import Controller
from tests.fakes.engine import FakeEngine
from tests.support import free_port

pytestmark = pytest.mark.slow
MIB = 1 << 20


@pytest.fixture
def peer() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read().decode()


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the exporter exited"
        try:
            if json.loads(get(f"{url}/healthz")[1])["containers"] > 0:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("the exporter never reported a container")


def test_the_exporter_alerts_serves_metrics_and_flushes_influx_on_sigterm(tmp_path: Path, peer: Controller) -> None:
    host = FakeHost(tmp_path, "v1")
    token = tmp_path / "alert-token"
    token.write_text("tok-123\n")
    with FakeEngine(hostname="worker-5") as engine:
        cid = engine.add_container(name="web.1.t1", pid=4321, memory=1024 * MIB,
                                   labels={"com.docker.swarm.service.name": "web", "com.docker.swarm.task.id": "t1"})
        host.add_container(cid, pid=4321, usage=900 * MIB, inactive=0)  # 87.9 % of its limit: an alert
        port = free_port()
        env = {
            **os.environ,
            "EXPORTER_DOCKER_HOST": engine.base_url, "EXPORTER_CGROUP_ROOT": host.cgroup_root,
            "EXPORTER_PROC_ROOT": host.proc_root, "EXPORTER_SYS_ROOT": host.sys_root,
            "EXPORTER_LISTEN_ADDRESS": "127.0.0.1", "EXPORTER_PORT": str(port), "EXPORTER_INTERVAL": "0.2",
            "CONTROLLER_URL": peer.url, "ALERT_TOKEN_FILE": str(token),
            "INFLUXDB_URL": peer.url, "INFLUXDB_TOKEN": "influx-tok", "EXPORTER_INFLUX_FLUSH_INTERVAL": "60",
        }
        env.pop("ALERT_TOKEN", None)
        proc = subprocess.Popen([sys.executable, "-m", "exporter"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            assert peer.wait_until(lambda got: any(h["path"] == "/alert" for h, _ in got))
            status, text = get(f"{url}/metrics")
            assert status == 200
            (memory,) = [smp for f in text_string_to_metric_families(text) for smp in f.samples
                         if smp.name == "swarmguard_container_memory_bytes"]
            assert memory.labels == {"container_id": cid, "node": "worker-5", "service": "web", "task_id": "t1",
                                     "name": "web.1.t1", "image": "stressapp:test"}
            assert memory.value == 900 * MIB
            assert "_created" not in text  # disable_created_metrics() in the exporter process
            assert 'swarmguard_build_info{component="exporter",python="' in text
            assert not any(h["path"].startswith("/api/v2/write") for h, _ in peer.received), "flushed before 60 s"
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        engine.assert_no_unknown_routes()
    assert proc.returncode == 0, err.decode()[-2000:]
    alert_headers, alert_body = next((h, b) for h, b in peer.received if h["path"] == "/alert")
    assert alert_headers["authorization"] == "Bearer tok-123"
    alert = decode_alert(alert_body)
    assert (alert.container_id, alert.service, alert.node) == (cid, "web", "worker-5")
    assert alert.metrics["mem"] == pytest.approx(87.89, abs=0.01) and alert.t0 <= alert.t1
    writes = [(h, b.decode()) for h, b in peer.received if h["path"].startswith("/api/v2/write")]
    assert writes, "nothing written to InfluxDB on shutdown"
    assert "org=swarmguard" in writes[0][0]["path"] and "bucket=metrics" in writes[0][0]["path"]
    assert writes[0][0]["authorization"] == "Token influx-tok"
    lines = "\n".join(body for _, body in writes).splitlines()
    assert any(line.startswith(f"container_metrics,node=worker-5,service_name=web,container_id={cid},task_id=t1 ") for line in lines)
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert {"exporter started", "exporter stopped", "influx writer closed"} <= {doc["msg"] for doc in logs}
