"""Rebalancing on the lab, one run (the 5-run figures come from `tests/scripts/rebalance_test`).

A worker stops and comes back; the rebalance rule (enabled for the test by labkit/rebalance_lab.py)
must bring the 4-replica web-stress back to a skew of at most 1 within 60 s of the node's return,
with no failed probe request and no task moved twice while it is watched. The lab is restored
afterwards (all workers up, web-stress at its replica count, the rule file gone) even on failure.
Needs the stack deployed from this checkout (its controller reads this checkout's rules/)."""
from __future__ import annotations

import pytest

from labkit import labinfo
from labkit.rebalance_lab import Settings, format_table, ok, run

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def test_after_a_worker_comes_back_the_service_is_rebalanced_within_a_minute_without_a_failed_request(
        lab: labinfo.Lab, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(runs=1, watch=75.0, watch_last=75.0)
    rows = run(lab, settings, log=lambda text: None)
    with capsys.disabled():
        print("\n" + format_table(rows, settings.goal))
    [row] = rows
    assert row["skew_before"] >= 2  # the outage made the skew the rule is for
    assert ok(row, settings.goal), row
    assert row["moves"] >= 1 and all(a["action"] == "rebalance" for a in row["actions"]), row["actions"]
