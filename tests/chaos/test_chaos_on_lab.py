"""Faults on the real lab, the CI short path: one run of the cases that show SwarmGuard acting
through a fault, with the outages shortened so the whole file stays within a few minutes. Each
case's checks hold (labkit/chaos_cases.py: no action left half-done, the reason recorded, nothing
lost) and, where SwarmGuard was acting, no request failed. Every case restores the lab (links up,
engines and sink running, the stack deployed, labels clean) even when it fails.

The slower and more disruptive cases (a worker's engine killed, the manager's engine restarted, a
worker cut off for 30 s, the sink down for the full 60 s) and repeated runs belong to
`tests/scripts/chaos`, which prints their figures (docs/chaos.md). Run under the lab lock:
`flock /tmp/swarmguard-lab.lock .venv/bin/python -m pytest -m chaos tests/chaos`.
"""
from __future__ import annotations

from typing import Any

import pytest

from labkit import chaos, chaos_cases, labinfo

pytestmark = [pytest.mark.swarm, pytest.mark.chaos]


def short(ctx: chaos_cases.Ctx) -> None:
    """CI's shorter fault: the sink down 20 s instead of 60 (the script keeps 60)."""
    ctx.sink_outage = 20.0


def run(name: str) -> dict[str, Any]:
    """One run of a case; the caller holds the lab lock (pytest runs under it)."""
    record = chaos.run_case(chaos.CASES[name], 1, build=False, lock=None, tune=short)
    print(f"    did: {record.get('did')}\n    after: {record.get('state_after')}\n    probe: {record.get('probe')}")
    assert "restore_error" not in record, record["restore_error"]
    assert "error" not in record, record.get("traceback")
    assert record["checks"], "the case checked nothing"
    failed = [f"{c['name']}: {c['detail']}" for c in record["checks"] if not c["ok"]]
    assert not failed, failed
    return record


def no_failed_request(record: dict[str, Any]) -> None:
    probe = record["probe"]
    assert probe["requests"] > 0, "the probe sent nothing"
    assert probe["failures"] == 0, f"{probe['failures']}/{probe['requests']} failed: {probe['downtime_periods']}"


def test_a_controller_killed_mid_migration_is_restarted_reconciles_and_runs_nothing_twice(lab: labinfo.Lab) -> None:
    no_failed_request(run("controller-kill"))


def test_an_operator_update_undoing_the_migration_ends_the_waiting_action_at_once(lab: labinfo.Lab) -> None:
    record = run("operator-update")  # its checks hold no failed request while SwarmGuard acted, before the change
    assert record["figures"]["failed_before_change"] == 0


def test_the_metrics_sink_down_keeps_collection_on_time_memory_bounded_and_writing_resumes(lab: labinfo.Lab) -> None:
    run("sink-down")


def test_an_alert_flood_gets_no_server_error_and_the_controller_memory_stays_bounded(lab: labinfo.Lab) -> None:
    record = run("alert-flood")
    assert record["figures"]["flood"]["answered"] == record["figures"]["flood"]["scheduled"]
