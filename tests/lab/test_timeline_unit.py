"""labkit/timeline.py: a migration's T4->T5 and T5->T6 split by the nodes' container events."""
from __future__ import annotations

import time
from typing import Any

from labkit import timeline
from tests.fakes.engine import EngineProfile, FakeEngine

RECORD = {"t0": 100.0, "t1": 101.0, "t2": 101.003, "t3": 101.0033, "t4": 101.004, "t5": 103.0, "t6": 106.9}


def container_event(action: str, cid: str, at: float) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "Actor": {"ID": cid, "Attributes": {"name": "x"}},
            "time": int(at), "timeNano": int(at * 1e9)}


def test_the_first_event_of_each_wanted_action_is_taken_at_its_nanosecond_time() -> None:
    events = [container_event("exec_create: curl", "c", 101.2), container_event("start", "c", 101.9),
              container_event("health_status: healthy", "c", 102.6), container_event("health_status: healthy", "c", 104.0)]
    assert timeline.first_times(events, timeline.NEW_EVENTS) == {"start": 101.9, "healthy": 102.6}


def test_the_apps_serving_line_is_found_in_its_log_and_other_lines_are_ignored() -> None:
    log = ('not json at all\n{"ts":102.2,"msg":"starting"}\n2026-12-01T16:00:00Z {"ts":102.4,"level":"info",'
           '"msg":"serving","port":8080}\n{"ts":103.0,"msg":"serving"}\n')
    assert timeline.serving_time(log) == 102.4
    assert timeline.serving_time('{"ts":1,"msg":"stopped","note":"serving"}') is None


def test_the_parts_add_up_to_t4_t5_and_t5_t6_and_an_unknown_end_gives_none() -> None:
    points = timeline.marks(RECORD, {"create": 101.5, "start": 102.0, "serving": 102.45, "healthy": 102.8},
                            {"kill": 105.1, "die": 105.2})
    parts = timeline.breakdown(points)
    assert parts["T4->T5"] == round(sum(parts[p] for p in ("schedule", "start", "health", "seen_up")), 3)  # type: ignore[misc]
    assert parts["health"] == round(parts["boot"] + parts["probe"], 3)  # type: ignore[operator]
    assert parts["T5->T6"] == round(sum(parts[p] for p in ("to_sigterm", "exit", "seen_down")), 3)  # type: ignore[misc]
    assert (parts["T0->T1"], parts["exit"]) == (1.0, 0.1)
    without_old = timeline.breakdown(timeline.marks(RECORD, {}, {}))
    assert without_old["exit"] is None and without_old["T5->T6"] == 3.9


def test_the_parts_are_read_from_the_two_nodes_engines_and_a_dead_engine_is_named(engine_mode: EngineProfile) -> None:
    with FakeEngine("worker-1", profile=engine_mode) as old_node, FakeEngine("worker-2", profile=engine_mode) as new_node:
        now = time.time()
        record = {**RECORD, "t4": now - 3.0, "t5": now - 1.5, "t6": now - 0.2}
        for action, at in (("create", now - 2.6), ("start", now - 2.3), ("health_status: healthy", now - 1.7)):
            new_node.emit_event(container_event(action, "new1", at))
        new_node.emit_event(container_event("start", "other", now - 2.2))  # another container: not ours
        for action, at in (("kill", now - 0.8), ("die", now - 0.7), ("kill", now - 0.5)):
            old_node.emit_event(container_event(action, "old1", at))
        sockets = {"worker-1": old_node.base_url, "worker-2": new_node.base_url}
        found = timeline.engine_breakdown(sockets, record, new=("worker-2", "new1"), old=("worker-1", "old1"))
        gone = timeline.engine_breakdown({**sockets, "worker-1": "tcp://127.0.0.1:9"}, record,
                                         new=("worker-2", "new1"), old=("worker-1", "old1"))
    parts = found["parts"]
    assert found["errors"] == []
    assert (parts["schedule"], parts["start"], parts["health"], parts["seen_up"]) == (0.4, 0.3, 0.6, 0.2)
    assert (parts["to_sigterm"], parts["exit"], parts["seen_down"]) == (0.7, 0.1, 0.5)
    assert gone["parts"]["health"] == 0.6 and gone["parts"]["exit"] is None
    assert len(gone["errors"]) == 1 and "worker-1" in gone["errors"][0]


def test_the_parts_table_has_a_line_per_run_and_median_min_max_lines() -> None:
    rows = [{**timeline.breakdown(timeline.marks(RECORD, {}, {})), "failed": n} for n in (0, 2, 0)]
    text = timeline.format_parts(rows).splitlines()
    assert [line.split()[0] for line in text] == ["run", "1", "2", "3", "med", "min", "max"]
    assert text[0].split()[1:4] == ["T0->T1", "T1->T4", "T4->T5"] and text[0].split()[-1] == "failed"
    assert text[2].split()[-1] == "2" and text[4].split()[-1] == "0" and text[6].split()[-1] == "2"
    assert text[1].split()[3] == "1.996" and text[1].split()[4] == "-"


def test_scenario_1_rows_take_the_engine_parts_and_the_probes_failures_or_the_record_alone() -> None:
    from labkit import scenario1

    with_engine = {"actions": [RECORD], "probe": {"failures": 1},
                   "engine": {"parts": {**timeline.breakdown(timeline.marks(RECORD, {}, {})), "exit": 0.1}}}
    without = {"actions": [RECORD], "probe": {"failures": 0}}  # a result file from before the engine parts
    rows = scenario1.parts_rows([with_engine, without])
    assert (rows[0]["exit"], rows[0]["failed"]) == (0.1, 1)
    assert (rows[1]["exit"], rows[1]["T4->T5"], rows[1]["failed"]) == (None, 1.996, 0)
