"""The shared InfluxDB writer: bounded, batched, oldest dropped first, flushed on close."""
from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from influxdb_client import Point

from exporter.lineproto import sweep_lines
from sgcommon.influx import InfluxTarget, InfluxWriter, open_writer, parse_target
from tests.exporter.samples import CID, sample, sweep
from tests.support import free_port, unavailable


class Sink:
    """A send function that records batches and fails while `down` is set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.down = False
        self.calls = threading.Condition()

    def __call__(self, lines: list[str]) -> None:
        with self.calls:
            self.calls.notify_all()
            if self.down:
                raise ConnectionError("influx down")
            self.batches.append(list(lines))

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.batches for line in batch]


def test_points_and_strings_are_sent_in_batches_and_flushed_on_close() -> None:
    sink = Sink()
    writer = InfluxWriter(sink, batch_size=2, flush_interval=60)
    writer.write(["m v=1i 1", Point("recovery_events").tag("service", "web").field("seconds", 5.5).time(2, write_precision="ms")])
    writer.write(["m v=3i 3"])
    writer.close()
    assert sink.batches == [["m v=1i 1", "recovery_events,service=web seconds=5.5 2"], ["m v=3i 3"]]
    assert (writer.stats.written, writer.stats.dropped) == (3, 0)


def test_a_full_buffer_drops_the_oldest_lines_and_counts_them() -> None:
    sink = Sink()
    writer = InfluxWriter(sink, buffer_size=3, batch_size=100, flush_interval=60)
    writer.write([f"m v={i}i {i}" for i in range(5)])
    assert writer.pending() == 3 and writer.stats.dropped == 2
    writer.close()
    assert sink.lines == ["m v=2i 2", "m v=3i 3", "m v=4i 4"]


def test_lines_survive_an_outage_and_are_sent_when_influx_is_back() -> None:
    sink = Sink()
    sink.down = True
    writer = InfluxWriter(sink, buffer_size=4, batch_size=2, flush_interval=0.01, max_backoff=0.02)
    writer.write(["a 1", "b 2"])
    with sink.calls:
        assert sink.calls.wait(timeout=5)
    writer.write(["c 3", "d 4", "e 5"])  # 5 lines, room for 4: the oldest goes
    sink.down = False
    deadline = time.monotonic() + 5
    while len(sink.lines) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.close()
    assert sink.lines == ["b 2", "c 3", "d 4", "e 5"]
    assert writer.stats.dropped == 1 and writer.stats.failed_batches >= 1


def test_write_never_waits_for_a_hung_server() -> None:
    release = threading.Event()
    writer = InfluxWriter(lambda lines: release.wait(), buffer_size=100, batch_size=1, flush_interval=60)
    writer.write(["a 1"])  # the writer thread is now stuck in the send
    writes = threading.Thread(target=lambda: [writer.write([f"b {i}"]) for i in range(1000)])
    writes.start()
    writes.join(timeout=30)
    stuck = writes.is_alive()
    release.set()
    writer.close()
    assert not stuck, "write() blocked while the server hung"
    assert writer.stats.dropped >= 900


def test_writes_after_close_are_dropped_and_counted() -> None:
    writer = InfluxWriter(Sink(), flush_interval=60)
    writer.close()
    writer.write(["late 1"])
    assert writer.stats.dropped == 1


def test_a_bad_record_type_is_refused_clearly() -> None:
    writer = InfluxWriter(Sink(), flush_interval=60)
    with pytest.raises(TypeError, match="Point or a line-protocol string"):
        writer.write([{"measurement": "m"}])  # type: ignore[list-item]
    writer.close()


@pytest.mark.parametrize(("url", "expected"), [
    ("http://influxdb:8086", InfluxTarget("http://influxdb:8086", "swarmguard", "metrics")),
    ("http://10.99.0.1:8086/api/v2/write?org=o&bucket=b&precision=s", InfluxTarget("http://10.99.0.1:8086", "o", "b")),
    ("https://h/influx/", InfluxTarget("https://h/influx", "swarmguard", "metrics")),
])
def test_the_url_may_be_a_base_or_the_specs_full_write_url(url: str, expected: InfluxTarget) -> None:
    assert parse_target(url, org="swarmguard", bucket="metrics") == expected


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="INFLUXDB_URL"):
        parse_target("influxdb:8086", org="o", bucket="b")


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    try:
        proc = subprocess.Popen(
            ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'vm'}",
             "-retentionPeriod=1d", "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        unavailable("victoria-metrics not installed (Debian package victoria-metrics)")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("victoria-metrics did not start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def export(url: str, selector: str) -> list[dict]:
    """The series matching `selector`, waiting (up to 10 s) for the ingested data to be searchable."""
    query = urllib.parse.urlencode({"match[]": selector})
    deadline = time.monotonic() + 10
    while True:
        urllib.request.urlopen(f"{url}/internal/force_flush", timeout=5).read()
        with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=5) as resp:
            rows = [json.loads(line) for line in resp.read().decode().splitlines() if line]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.real
def test_a_sweep_written_through_the_influx_client_reads_back_from_victoria_metrics_with_its_tags(victoria: str) -> None:
    now = time.time()
    writer = open_writer(InfluxTarget(victoria, "swarmguard", "metrics"), token="t", flush_interval=60)
    writer.write(sweep_lines(sweep(sample(cpu=42.5, ts=now), ts=now), writer.precision))
    writer.close()
    assert writer.stats.written == 2 and writer.stats.failed_batches == 0
    (row,) = export(victoria, '{__name__="container_metrics_cpu_percent"}')
    assert row["metric"] == {"__name__": "container_metrics_cpu_percent", "node": "worker-1", "service_name": "web",
                             "container_id": CID, "task_id": "task-1"}
    assert row["values"] == [42.5] and row["timestamps"] == [round(now * 1000)]
    (node_row,) = export(victoria, '{__name__="node_metrics_memory_percent"}')
    assert node_row["metric"]["node"] == "worker-1" and node_row["values"] == [60.0]
