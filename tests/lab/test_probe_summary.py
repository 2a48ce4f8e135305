"""The probe's pure parts: summary maths, the fixed-rate loop, argument checks."""
from __future__ import annotations

import pytest

from labkit import probe


def rec(ts: float, ok: bool, latency: float = 0.01, address: str = "10.0.0.2") -> probe.Record:
    return {"ts": ts, "ok": ok, "status": 200 if ok else None, "latency": latency,
            "address": address if ok else None, "error": None if ok else "ConnectionRefusedError"}


def test_a_steady_run_has_no_downtime_and_a_gap_of_one_interval() -> None:
    summary = probe.summarize([rec(10 + i * 0.1, True) for i in range(50)])
    assert summary["requests"] == 50
    assert summary["failures"] == 0
    assert summary["total_downtime"] == 0
    assert summary["longest_gap"] == pytest.approx(0.1)
    assert summary["addresses"] == {"10.0.0.2": 50}


def test_downtime_runs_from_the_first_failure_to_the_next_success() -> None:
    records = [rec(1.0, True), rec(1.1, False), rec(1.2, False), rec(1.3, False), rec(1.7, True), rec(1.8, True)]
    summary = probe.summarize(records)
    assert summary["failures"] == 3
    assert summary["total_downtime"] == pytest.approx(0.6)
    assert summary["longest_gap"] == pytest.approx(0.7)
    assert summary["downtime_periods"][0]["failures"] == 3


def test_separate_outages_add_up_and_records_are_ordered_first() -> None:
    records = [rec(3.0, True), rec(1.0, True), rec(2.5, False), rec(1.5, False), rec(2.0, True)]
    summary = probe.summarize(records)
    assert [p["start"] for p in summary["downtime_periods"]] == [1.5, 2.5]
    assert summary["total_downtime"] == pytest.approx(0.5 + 0.5)


def test_an_outage_lasting_to_the_end_counts_until_the_last_failure_returned() -> None:
    records = [rec(1.0, True), rec(1.1, False, latency=1.0), rec(2.1, False, latency=1.0)]
    assert probe.summarize(records)["total_downtime"] == pytest.approx(2.0)


def test_an_empty_run_summarises_to_zeros() -> None:
    summary = probe.summarize([])
    assert (summary["requests"], summary["failures"], summary["total_downtime"]) == (0, 0, 0)
    assert summary["first_ts"] is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_loop_keeps_a_fixed_rate_and_skips_ticks_missed_by_a_slow_request() -> None:
    clock = FakeClock()
    started: list[float] = []

    def request(host: str, port: int, path: str, *, timeout: float) -> probe.Record:
        started.append(clock.now)
        assert (host, port, path) == ("web", 8080, "/health")
        clock.now += 0.35 if len(started) == 3 else 0.01
        return rec(clock.now, True)

    records = probe.run("http://web:8080/health", interval=0.1, duration=1.0, timeout=1.0,
                        emit=lambda r: None, stopped=lambda: False, clock=clock, sleep=clock.sleep,
                        request=request)
    assert started[:4] == pytest.approx([0.0, 0.1, 0.2, 0.6])
    assert len(records) == len(started) == 7


def test_the_loop_stops_when_asked() -> None:
    clock = FakeClock()
    emitted: list[probe.Record] = []
    probe.run("http://web/health", interval=0.1, duration=60, timeout=1.0, emit=emitted.append,
              stopped=lambda: len(emitted) >= 3, clock=clock, sleep=clock.sleep,
              request=lambda *a, **k: rec(clock.now, True))
    assert len(emitted) == 3


@pytest.mark.parametrize("argv", [["--interval", "0"], ["--duration", "-1"], ["--target", "web:8080"]])
def test_bad_probe_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        probe.parse_args(argv)


def test_a_request_to_a_closed_port_fails_without_raising() -> None:
    from tests.support import free_port

    record = probe.probe_once("127.0.0.1", free_port(), "/health", timeout=1.0)
    assert record["ok"] is False
    assert "ConnectionRefused" in record["error"]
    assert record["address"] == "127.0.0.1"
