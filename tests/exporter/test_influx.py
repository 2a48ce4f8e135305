"""The shared InfluxDB writer: bounded, batched, oldest dropped first, flushed on close."""
from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exporter.lineproto import sweep_lines
from sgcommon.influx import InfluxTarget, InfluxWriter, SinkUnavailable, open_writer, parse_target
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


def test_lines_are_sent_in_batches_and_flushed_on_close() -> None:
    sink = Sink()
    writer = InfluxWriter(sink, batch_size=2, flush_interval=60)
    writer.write(["m v=1i 1", "recovery_events,service=web seconds=5.5 2\n"])
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
    with pytest.raises(TypeError, match="expected a line-protocol string"):
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


def start_victoria(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """victoria-metrics on loopback `port`, data under tmp_path (kept across restarts), once healthy."""
    try:
        proc = subprocess.Popen(
            ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'vm'}",
             "-retentionPeriod=1d", "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        unavailable("victoria-metrics not installed (Debian package victoria-metrics)")
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_victoria(proc)
                pytest.fail("victoria-metrics did not start")
            time.sleep(0.1)


def stop_victoria(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_victoria(tmp_path, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_victoria(proc)


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


# --- answers of a real HTTP sink: what is dropped, what is retried ------------------------------


class HttpSink:
    """A local /api/v2/write that answers each POST with the next scripted (status, headers), then
    204; `hang` makes it accept and never answer."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.bodies: list[str] = []
        self.attempts = 0
        self.hang = threading.Event()
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.hang.is_set():
                    time.sleep(3)  # longer than the writer's timeout
                    return
                with outer.cond:
                    outer.attempts += 1
                    status, headers = outer.script.pop(0) if outer.script else (204, {})
                    if status < 300:
                        outer.bodies.append(gzip.decompress(body).decode())
                    outer.cond.notify_all()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.target = InfluxTarget(f"http://127.0.0.1:{self.server.server_address[1]}", "o", "b")

    @property
    def lines(self) -> list[str]:
        return [line for body in self.bodies for line in body.splitlines()]

    def wait(self, check: Callable[[], bool], timeout: float = 10) -> bool:
        with self.cond:
            return self.cond.wait_for(check, timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.close()


def fast_writer(target: InfluxTarget, **options: Any) -> InfluxWriter:
    return open_writer(target, token="t", timeout=0.5, flush_interval=0.02, max_backoff=0.1, batch_size=2, **options)


def test_a_batch_refused_with_400_is_dropped_counted_and_the_queue_goes_on(http_sink: HttpSink) -> None:
    http_sink.script = [(400, {})]
    writer = fast_writer(http_sink.target)
    writer.write(["bad 1", "bad 2", "good 3", "good 4"])
    assert http_sink.wait(lambda: len(http_sink.lines) == 2)
    writer.close()
    assert http_sink.lines == ["good 3", "good 4"]
    assert (writer.stats.rejected_batches, writer.stats.rejected_lines, writer.stats.failed_batches) == (1, 2, 0)
    assert writer.stats.written == 2


@pytest.mark.parametrize("answer", [(429, {"Retry-After": "0"}), (500, {}), (503, {}), (408, {})],
                         ids=["429", "500", "503", "408"])
def test_a_batch_answered_429_or_5xx_is_retried_until_it_is_written(http_sink: HttpSink, answer: tuple[int, dict[str, str]]) -> None:
    http_sink.script = [answer, answer]
    writer = fast_writer(http_sink.target)
    writer.write(["a 1", "b 2"])
    assert http_sink.wait(lambda: len(http_sink.lines) == 2)
    writer.close()
    assert http_sink.lines == ["a 1", "b 2"] and http_sink.attempts == 3
    assert (writer.stats.failed_batches, writer.stats.rejected_batches, writer.stats.written) == (2, 0, 2)


def test_retry_after_sets_the_least_back_off() -> None:
    sink_calls: list[float] = []

    def send(lines: list[str]) -> None:
        sink_calls.append(time.monotonic())
        if len(sink_calls) == 1:
            raise SinkUnavailable("HTTP 429", retry_after=0.5)

    writer = InfluxWriter(send, flush_interval=0.01, max_backoff=5, batch_size=1)
    writer.write(["a 1"])
    deadline = time.monotonic() + 5
    while len(sink_calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.close()
    assert len(sink_calls) == 2 and sink_calls[1] - sink_calls[0] >= 0.45


def test_a_sink_that_never_answers_or_is_not_there_keeps_the_lines_for_later(http_sink: HttpSink) -> None:
    http_sink.hang.set()
    writer = fast_writer(http_sink.target, buffer_size=3)
    writer.write(["a 1", "b 2"])
    deadline = time.monotonic() + 10
    while writer.stats.failed_batches < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer.stats.failed_batches >= 1  # the time-out counts as a failure, retried
    writer.write(["c 3", "d 4"])  # room for 3: the oldest is dropped, memory stays bounded
    http_sink.hang.clear()
    assert http_sink.wait(lambda: len(http_sink.lines) >= 3)
    writer.close()
    assert http_sink.lines == ["b 2", "c 3", "d 4"] and writer.stats.dropped == 1
    closed = fast_writer(InfluxTarget(f"http://127.0.0.1:{free_port()}", "o", "b"))  # nothing listening
    closed.write(["x 1"])
    deadline = time.monotonic() + 5
    while closed.stats.failed_batches < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    closed.close(timeout=1)
    assert closed.stats.failed_batches >= 2 and closed.stats.rejected_batches == 0


def test_a_long_outage_never_overflows_the_back_off() -> None:
    calls: list[int] = []

    def send(lines: list[str]) -> None:
        calls.append(len(lines))
        raise ConnectionError("down")

    writer = InfluxWriter(send, flush_interval=1e-9, max_backoff=0.001, batch_size=1)
    writer.write(["a 1"])
    deadline = time.monotonic() + 10
    while len(calls) < 1100 and time.monotonic() < deadline:  # 2^1100 would overflow a float
        time.sleep(0.01)
    alive = writer._thread.is_alive()
    writer.close(timeout=1)
    assert len(calls) >= 1100 and alive


@pytest.mark.real
def test_writing_resumes_after_victoria_metrics_is_stopped_and_started_again(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    vm = start_victoria(tmp_path, port)
    writer = open_writer(InfluxTarget(url, "swarmguard", "metrics"), token="t", flush_interval=0.1, max_backoff=0.5,
                         timeout=1.0)
    try:
        now = time.time()
        writer.write([f"outage_probe,phase=before v=1 {round(now * 1000)}"])
        assert export(url, '{__name__="outage_probe_v",phase="before"}')
        stop_victoria(vm)
        writer.write([f"outage_probe,phase=during v=2 {round(now * 1000) + 1}"])
        deadline = time.monotonic() + 10
        while writer.stats.failed_batches < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.stats.failed_batches >= 2 and writer.pending() == 1
        vm = start_victoria(tmp_path, port)
        (row,) = export(url, '{__name__="outage_probe_v",phase="during"}')
        assert row["values"] == [2]
    finally:
        writer.close()
        stop_victoria(vm)
    assert writer.stats.rejected_batches == 0 and writer.stats.written == 2
