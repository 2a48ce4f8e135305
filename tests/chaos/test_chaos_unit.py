"""The chaos tooling's own parts without the lab: the flood's alerts and its open-loop sender against a
local server, the histogram arithmetic, the 400-answering sink against the project's InfluxDB writer,
the command line and the tables."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit import chaos, chaos_cases, chaos_lab, flood
from sgcommon.alert import decode_alert
from sgcommon.influx import InfluxTarget, open_writer


def test_every_flood_alert_is_valid_and_under_every_threshold() -> None:
    for k in (0, 1, 49, 50, 12345):
        alert = decode_alert(flood.alert_body(k, time.time()))
        assert alert.service == flood.SERVICE
        assert max(alert.metrics["cpu"], alert.metrics["mem"], alert.metrics["net"]) < 35
    ids = {decode_alert(flood.alert_body(k, 1.0)).container_id for k in range(200)}
    assert len(ids) == flood.CONTAINERS


class Counting(BaseHTTPRequestHandler):
    """Answers 200 to the first `ok` POSTs, then 429 with Retry-After; counts them."""

    protocol_version = "HTTP/1.1"
    seen = 0
    ok = 30
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with Counting.lock:
            Counting.seen += 1
            status = 200 if Counting.seen <= Counting.ok else 429
        body = b'{"status":"ok"}'
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    Counting.seen = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/alert"
    httpd.shutdown()
    httpd.server_close()


def test_the_flood_sends_on_schedule_over_keep_alive_connections_and_counts_every_answer(server: str) -> None:
    sender = flood.Flood(server, "t", rate=100, duration=0.5, connections=4, timeout=5)
    summary = asyncio.run(sender.run(drain=10))
    assert summary["scheduled"] == 50 and summary["answered"] == 50 and summary["unsent"] == 0
    assert summary["statuses"] == {"200": 30, "429": 20}
    assert summary["retry_after"] == {"1": 20}
    assert summary["accepted_2xx"] == 30 and not summary["errors"]
    assert summary["latency_ms"]["p50"] is not None and sum(summary["answers_each_second"]) == 50


def test_a_refused_connection_is_counted_as_an_error_not_an_answer() -> None:
    sender = flood.Flood(f"http://127.0.0.1:{chaos_lab.free_port()}/alert", "t", rate=50, duration=0.1,
                         connections=2, timeout=1)
    summary = asyncio.run(sender.run(drain=5))
    assert summary["answered"] == 0 and sum(summary["errors"].values()) == summary["scheduled"]


def test_the_quantile_of_a_histogram_between_two_readings_is_the_bucket_holding_it() -> None:
    before = [(0.001, 90.0), (0.01, 100.0), (0.1, 100.0), (float("inf"), 100.0)]
    after = [(0.001, 180.0), (0.01, 199.0), (0.1, 200.0), (float("inf"), 200.0)]
    assert chaos_lab.quantile(before, after, 0.5) == 0.001
    assert chaos_lab.quantile(before, after, 0.99) == 0.01
    assert chaos_lab.quantile(before, after, 1.0) == 0.1
    assert chaos_lab.quantile(after, after, 0.99) is None  # nothing observed in between


def test_the_exporter_histogram_is_read_from_its_exposition() -> None:
    text = "\n".join([
        "# HELP swarmguard_exporter_tick_lag_seconds x", "# TYPE swarmguard_exporter_tick_lag_seconds histogram",
        'swarmguard_exporter_tick_lag_seconds_bucket{le="0.001"} 3.0',
        'swarmguard_exporter_tick_lag_seconds_bucket{le="+Inf"} 4.0',
        "swarmguard_exporter_tick_lag_seconds_count 4.0", "swarmguard_exporter_tick_lag_seconds_sum 0.5", ""])
    assert chaos_lab.buckets(text, "swarmguard_exporter_tick_lag_seconds") == [(0.001, 3.0), (float("inf"), 4.0)]
    assert chaos_lab.value(text, "swarmguard_exporter_tick_lag_seconds_count") == 4.0
    assert chaos_lab.value(None, "anything") is None


def test_worker_numbers_come_from_the_lab_host_names_only() -> None:
    assert chaos_lab.worker_number("worker-3") == 3
    for name in ("vm", "worker-", "manager-1", "worker-x"):
        with pytest.raises(ValueError):
            chaos_lab.worker_number(name)


def test_the_rejecting_sink_gets_each_batch_of_the_project_writer_once_and_the_writer_drops_it() -> None:
    sink = chaos_cases.RejectingSink("127.0.0.1")
    try:
        writer = open_writer(InfluxTarget(sink.url, "o", "b"), token=None, flush_interval=0.05, batch_size=2)
        for i in range(6):
            writer.write([f"m v={i} {i}"])
            time.sleep(0.08)
        writer.close(timeout=2)
    finally:
        sink.close()
    firsts = [batch[0] for batch in sink.batches]
    assert firsts and len(firsts) == len(set(firsts))  # never the same batch twice
    assert writer.stats.rejected_batches == len(sink.batches) and writer.stats.failed_batches == 0
    assert sum(len(b) for b in sink.batches) == writer.stats.rejected_lines == 6


def test_the_command_line_takes_cases_by_name_or_all() -> None:
    assert chaos.parse_args(["--case", "all"]).cases == list(chaos.CASES)
    assert chaos.parse_args([]).cases == list(chaos.CASES)
    assert chaos.parse_args(["--case", "worker-cut", "--case", "sink-down", "--runs", "3"]).cases == ["worker-cut", "sink-down"]
    with pytest.raises(SystemExit):
        chaos.parse_args(["--case", "nope"])
    with pytest.raises(SystemExit):
        chaos.parse_args(["--runs", "0"])


def test_the_tables_show_each_run_and_the_spread_of_failed_requests_per_case() -> None:
    def rec(case: str, run: int, failures: int, ok: bool) -> dict[str, object]:
        return {"case": case, "run": run, "ok": ok, "did": "x" * 300, "state_after": "clean",
                "probe": {"failures": failures, "requests": 100}, "checks": []}

    records = [rec("worker-cut", 1, 170, True), rec("worker-cut", 2, 190, True), rec("controller-kill", 1, 0, False)]
    table = chaos.format_table(records)
    assert "170/100" in table and "NO" in table and "…" in table
    lines = chaos.summary(records).splitlines()
    assert "180 (170-190)" in lines[1] and "2/2" in lines[1]
    assert "0 (0-0)" in lines[2] and "0/1" in lines[2]


def test_results_are_saved_with_the_command(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    chaos.save(path, [{"case": "x", "run": 1}], ["--case", "x"])
    doc = json.loads(path.read_text())
    assert doc["command"] == ["tests/scripts/chaos", "--case", "x"] and doc["runs"][0]["case"] == "x"
