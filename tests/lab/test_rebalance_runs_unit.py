"""The rebalance lab tool's pure parts (labkit/rebalance_lab.py): which worker each run stops, and
the probe's failed requests split by phase. No lab."""
from __future__ import annotations

from typing import Any

import pytest

from labkit.rebalance_lab import failures_by_phase, format_table, next_worker, parse_args

WORKERS = ["worker-1", "worker-2", "worker-3"]


def _row(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"node": "worker-1", "actions": list(actions)}


def test_rotate_stops_one_worker_after_the_other() -> None:
    rows: list[dict[str, Any]] = []
    chosen = []
    for _ in range(5):
        chosen.append(next_worker(WORKERS, rows, order="rotate"))
        rows.append(_row({"action": "rebalance", "result": "success", "node_to": "worker-3"}))
    assert chosen == ["worker-1", "worker-2", "worker-3", "worker-1", "worker-2"]


def test_last_target_stops_the_worker_the_previous_rebalance_placed_its_task_on() -> None:
    rows = [_row({"action": "rebalance", "result": "rejected", "node_to": "worker-3"},
                 {"action": "rebalance", "result": "success", "node_to": "worker-2"})]
    assert next_worker(WORKERS, [], order="last-target") == "worker-1"
    assert next_worker(WORKERS, rows, order="last-target") == "worker-2"


def test_last_target_takes_the_next_worker_in_turn_when_the_previous_run_moved_nothing() -> None:
    rows = [_row({"action": "rebalance", "result": "rejected", "node_to": None}), _row()]
    assert next_worker(WORKERS, rows, order="last-target") == "worker-3"
    unknown = [_row({"action": "rebalance", "result": "success", "node_to": "manager"})]
    assert next_worker(WORKERS, unknown, order="last-target") == "worker-2"


def test_an_unknown_stop_order_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown stop order 'random'"):
        next_worker(WORKERS, [], order="random")


def test_failed_requests_are_split_into_outage_rebalance_and_after() -> None:
    records = [{"ts": t, "ok": ok} for t, ok in
               [(1.0, False), (2.0, True), (9.9, False), (10.0, False), (14.0, False), (15.0, False), (20.0, False),
                (21.0, True)]]
    assert failures_by_phase(records, back=10.0, balanced_at=15.0) == {
        "failed_outage": 2, "failed_rebalance": 2, "failed_after_balanced": 2}


def test_a_run_never_balanced_counts_every_failure_after_the_return_as_the_rebalance() -> None:
    records = [{"ts": 5.0, "ok": False}, {"ts": 50.0, "ok": False}, {"ts": 500.0, "ok": False}]
    assert failures_by_phase(records, back=10.0, balanced_at=None) == {
        "failed_outage": 1, "failed_rebalance": 2, "failed_after_balanced": 0}


def test_the_table_shows_the_failures_of_each_phase() -> None:
    row = {"node": "worker-2", "skew_before": 2, "skew_after": 1, "back_to_balanced_s": 10.5, "ready_to_balanced_s": 4.0,
           "failed": 3, "requests": 900, "failed_outage": 3, "failed_rebalance": 0, "failed_after_balanced": 0,
           "failed_after_return": 0, "moves": 1, "max_moves_per_task": 1, "moved_again": 0, "watched_s": 90}
    table = format_table([row], 60.0)
    assert "3/0/0" in table and "yes" in table.splitlines()[1]


def test_the_command_line_takes_a_stop_order_and_refuses_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["--stop", "last-target"]).stop == "last-target"
    assert parse_args([]).stop == "rotate"
    with pytest.raises(SystemExit):
        parse_args(["--stop", "random"])
    assert "invalid choice" in capsys.readouterr().err
