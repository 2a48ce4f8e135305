"""The baseline's pure parts: statistics, the outage's end, Swarm timestamps, arguments."""
from __future__ import annotations

import datetime as dt

import pytest

from labkit import baseline


def it(downtime: float, failed: int, healthy: float | None = 6.0) -> baseline.Iteration:
    return baseline.Iteration(mode="crash", node="worker-1", broke_at=0.0, task_started_s=5.0,
                              task_healthy_s=healthy, first_ok_s=7.0, downtime_s=downtime, failed_requests=failed)


def test_stats_give_median_min_and_max_per_metric() -> None:
    summary = baseline.stats([it(7.0, 60), it(9.0, 80), it(8.0, 70)])
    assert summary["downtime_s"] == {"median": 8.0, "min": 7.0, "max": 9.0, "n": 3}
    assert summary["failed_requests"]["median"] == 70


def test_stats_skip_metrics_that_were_not_seen() -> None:
    summary = baseline.stats([it(7.0, 60, healthy=None), it(9.0, 80, healthy=8.0)])
    assert summary["task_healthy_s"] == {"median": 8.0, "min": 8.0, "max": 8.0, "n": 1}


def test_the_table_has_a_row_per_iteration_and_per_statistic() -> None:
    iterations = [it(7.0, 60), it(9.0, 80)]
    table = baseline.format_table(iterations, baseline.stats(iterations)).splitlines()
    assert len(table) == 1 + 2 + 3
    assert table[-1].split()[0] == "max"
    assert "9.00" in table[-1]


def test_the_first_success_counts_only_after_the_last_failure() -> None:
    records = [{"ts": t, "ok": ok} for t, ok in [(0.5, True), (1.1, False), (1.2, True), (1.3, False), (1.9, True)]]
    assert baseline.first_ok_after_outage(records, since=1.0) == 1.9
    assert baseline.first_ok_after_outage(records[:1], since=1.0) is None


def test_swarm_timestamps_keep_their_nanoseconds() -> None:
    expected = dt.datetime(2026, 11, 28, 1, 2, 3, tzinfo=dt.timezone.utc).timestamp() + 0.123456789
    assert baseline.parse_timestamp("2026-11-28T01:02:03.123456789Z") == pytest.approx(expected, abs=1e-6)
    assert baseline.parse_timestamp("2026-11-28T01:02:03Z") == pytest.approx(expected - 0.123456789)


@pytest.mark.parametrize("argv", [["--iterations", "0"], ["--mode", "reboot"], ["--interval", "0"]])
def test_bad_baseline_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        baseline.parse_args(argv)


def test_baseline_results_go_under_results_by_default() -> None:
    args = baseline.parse_args(["--mode", "node-loss", "--iterations", "5"])
    assert args.output.parent.name == "results"
    assert args.output.name.startswith("baseline-node-loss-")
