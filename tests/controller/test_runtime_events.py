"""Action records: kept for /events, counted, and written as line protocol."""
from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry

from controller.events import ControllerMetrics, EventLog, mttr_seconds, to_line
from controller.model import ActionRecord, Result, Timeline


def record(rid: str = "a1", **timeline: float) -> ActionRecord:
    times = timeline or {"t0": 100.0, "t1": 100.25, "t2": 100.5, "t3": 100.75, "t4": 101.0, "t5": 104.0, "t6": 106.5}
    return ActionRecord(id=rid, action="migrate", service="web app", rule="scenario,1", result=Result.SUCCESS,
                        timeline=Timeline(**times), node_from="worker-1", node_to='worker "2"')


class ListSink:
    precision = "ms"

    def __init__(self, *, fail: bool = False) -> None:
        self.lines: list[str] = []
        self.fail = fail

    def write(self, points: Iterable[str]) -> None:
        if self.fail:
            raise RuntimeError("buffer closed")
        self.lines.extend(points)


def test_a_record_becomes_one_recovery_events_point_with_escaped_tags_and_every_timing() -> None:
    assert to_line(record(), at=106.5, precision="ms") == (
        r"recovery_events,action=migrate,result=success,rule=scenario\,1,service=web\ app "
        "t0=100.0,t1=100.25,t2=100.5,t3=100.75,t4=101.0,t5=104.0,t6=106.5,"
        r'mttr_seconds=6.5,alert_latency=0.25,decision_latency=0.25,node_from="worker-1",node_to="worker \"2\"" '
        "106500"
    )


def test_timings_not_reached_are_left_out_of_the_point() -> None:
    line = to_line(record(t0=10.0, t3=11.0), at=11.0, precision="s")
    assert line.endswith(" t0=10.0,t3=11.0,node_from=\"worker-1\",node_to=\"worker \\\"2\\\"\" 11")
    assert mttr_seconds(record(t0=10.0, t3=11.0)) is None


def test_mttr_is_from_t0_to_the_later_of_t5_and_t6() -> None:
    assert mttr_seconds(record(t0=1.0, t5=4.0)) == 3.0
    assert mttr_seconds(record(t0=1.0, t5=4.0, t6=9.0)) == 8.0


def test_recording_keeps_counts_and_writes_each_record() -> None:
    registry = CollectorRegistry()
    sink = ListSink()
    log = EventLog(ControllerMetrics(registry), keep=2, sink=sink)
    for rid in ("a1", "a2", "a3"):
        log.record(record(rid))
    assert [e["id"] for e in log.recent(10)] == ["a3", "a2"]
    assert log.recent(1)[0]["mttr_seconds"] == 6.5
    assert registry.get_sample_value("swarmguard_controller_actions_total",
                                     {"action": "migrate", "result": "success"}) == 3
    assert len(sink.lines) == 3 and sink.lines[0].endswith(" 106500")


def test_a_sink_that_fails_loses_no_record(caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog(ControllerMetrics(CollectorRegistry()), sink=ListSink(fail=True))
    log.record(record())
    assert [e["id"] for e in log.recent(5)] == ["a1"]
    assert any(r.getMessage() == "recovery event not written to InfluxDB" for r in caplog.records)
