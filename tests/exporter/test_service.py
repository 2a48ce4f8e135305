"""The wired exporter: a tick feeds alerts, /metrics and InfluxDB; settings come from every layer."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.__main__ import main
from exporter.alerts import AlertSender, Thresholds
from exporter.collect import Collector, NodeLink
from exporter.discovery import Inventory
from exporter.metrics import SelfMetrics
from exporter.service import Exporter, make_http_server
from exporter.settings import PREFIX, ExporterSettings
from sgcommon.alert import decode_alert
from sgcommon.influx import InfluxWriter
from sgcommon.settings import SettingsError, load_settings
from sgcommon.version import version
from tests.exporter.conftest import FakeClock, FakeHost, container
from tests.exporter.peers import Controller
from tests.exporter.test_influx import Sink

CID = "b" * 64


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


def build(host: FakeHost, clock: FakeClock, *, alerts: AlertSender | None = None, writer: InfluxWriter | None = None) -> Exporter:
    metrics = SelfMetrics()
    collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root,
                          link=NodeLink("eth0", 100.0, "setting"), on_error=metrics.error, clock=clock.time, mono=clock.mono)
    inventory = Inventory("worker-1")
    inventory.replace({CID: container(CID, pid=50, cpu_limit=1.0)})
    return Exporter(collector, inventory, interval=1.0, alerts=alerts, writer=writer, self_metrics=metrics, mono=clock.mono)


def test_a_breaching_tick_alerts_is_scraped_and_is_buffered_for_influx(host: FakeHost, clock: FakeClock, controller: Controller) -> None:
    host.add_container(CID, pid=50, usage=100 << 20)
    sink = Sink()
    alerts = AlertSender(controller.url, token=None, thresholds=Thresholds(), min_gap=0.5)
    writer = InfluxWriter(sink, flush_interval=60)
    exporter = build(host, clock, alerts=alerts, writer=writer)
    exporter.tick()
    clock.advance(1.0)
    host.set_cpu(CID, 900_000_000)  # 90 % of its one CPU
    exporter.tick()
    ((_, body),) = controller.wait_for(1)
    assert decode_alert(body).metrics["cpu"] == pytest.approx(90.0)
    alerts.close()
    writer.close()
    assert [line.split(" ")[0] for line in sink.lines] == [  # the first tick has no rates yet
        f"container_metrics,node=worker-1,service_name=web,container_id={CID},task_id=task-1",
        "node_metrics,node=worker-1",
    ]


def test_metrics_and_healthz_are_served_over_http(host: FakeHost, clock: FakeClock) -> None:
    host.add_container(CID, pid=50)
    exporter = build(host, clock)
    server = make_http_server(exporter, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as stale:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        stale.value.close()
        assert stale.value.code == 503
        exporter.tick()
        clock.advance(1.0)
        exporter.tick()
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:
            assert json.loads(resp.read()) == {"status": "ok", "node": "worker-1", "containers": 1}
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = resp.read().decode()
        assert f'swarmguard_container_cpu_percent{{container_id="{CID}"' in text
        assert "swarmguard_exporter_containers 1.0" in text
        clock.advance(10.0)
        with pytest.raises(urllib.error.HTTPError) as late:
            urllib.request.urlopen(f"{base}/healthz", timeout=5)
        late.value.close()
        assert late.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/nope", timeout=5)
        missing.value.close()
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_plain_environment_names_yaml_and_cli_layer_in_order(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("interval: 2\nport: 9200\nnet_iface: eth9\ncpu_threshold: 70\n")
    env = {"NET_IFACE": "enp5s0f0", "INFLUXDB_URL": "http://influxdb:8086", "EXPORTER_PORT": "9300",
           "CONTROLLER_URL": "http://10.99.0.1:5000", "NODE_NAME": "worker-2"}
    s = load_settings(ExporterSettings, prefix=PREFIX, yaml_path=str(config), env=env, overrides={"cpu_threshold": "60"})
    assert (s.interval, s.port, s.net_iface, s.cpu_threshold) == (2.0, 9300, "enp5s0f0", 60.0)
    assert (s.influxdb_url, s.controller_url, s.node_name) == ("http://influxdb:8086", "http://10.99.0.1:5000", "worker-2")


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as exc:
        load_settings(ExporterSettings, prefix=PREFIX, env={"EXPORTER_INTERVAL": "0", "EXPORTER_CPU_THRESHOLD": "120"})
    assert "interval" in str(exc.value) and "cpu_threshold" in str(exc.value)


def test_the_command_refuses_bad_settings_with_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "http"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarmguard-exporter: --port: expected an integer") and err.count("\n") == 1


def test_an_unreadable_secret_file_stops_the_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("ALERT_TOKEN_FILE", str(tmp_path / "missing"))
    monkeypatch.delenv("ALERT_TOKEN", raising=False)
    assert main(["--port", "0", "--listen-address", "127.0.0.1", "--proc-root", str(tmp_path)]) == 2
    assert "ALERT_TOKEN_FILE" in capsys.readouterr().err


def test_collection_keeps_its_interval_while_influx_hangs(host: FakeHost) -> None:
    host.add_container(CID, pid=50)
    release = threading.Event()
    writer = InfluxWriter(lambda lines: release.wait(), buffer_size=50, batch_size=1, flush_interval=0.01)
    metrics = SelfMetrics()
    collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root,
                          link=NodeLink("eth0", 100.0, "setting"), on_error=metrics.error)
    inventory = Inventory("worker-1")
    inventory.replace({CID: container(CID, pid=50)})
    exporter = Exporter(collector, inventory, interval=0.05, writer=writer, self_metrics=metrics).start()
    try:
        time.sleep(1.5)
    finally:
        exporter.stop()
        release.set()
        writer.close(timeout=1)
        collector.close()
    (family,) = [f for f in metrics.registry.collect() if f.name == "swarmguard_exporter_collection_seconds"]
    count = next(smp.value for smp in family.samples if smp.name.endswith("_count"))
    assert count >= 20, f"only {count} ticks in 1.5 s at 0.05 s"  # 30 expected; a loop blocked on InfluxDB makes ~1
    (lag,) = [f for f in metrics.registry.collect() if f.name == "swarmguard_exporter_tick_lag_seconds"]
    lags = next(smp.value for smp in lag.samples if smp.name.endswith("_count"))
    assert lags in (count, count + 1)  # one per tick (the last may be counted before its sweep ends)
    assert writer.pending() <= 50 and writer.stats.dropped > 0  # bounded: the oldest lines went


@pytest.mark.parametrize("path", ["/metrics?x=%ff%fe", "/metrics?" + "a=1&" * 500, "/%00", "/metrics/../healthz", "/\u00e9"])
def test_odd_paths_and_query_strings_never_break_the_http_server(host: FakeHost, clock: FakeClock, path: str) -> None:
    exporter = build(host, clock)
    server = make_http_server(exporter, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=5) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("utf-8", "surrogateescape"))
            reply = conn.makefile("rb").readline()
        assert reply.split()[1] in (b"200", b"400", b"404", b"503"), reply
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5) as resp:
            assert resp.status == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()


def test_version_prints_the_name_and_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"swarmguard-exporter {version()}\n"
