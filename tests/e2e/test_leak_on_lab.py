"""Scenario 3 and the fast leak on the lab, one run each with the shipped (predictive) rules.

CI's short suite leaves both out: one run of each rule variant of scenario 3 takes about 5 minutes
with the controller restarts, more than the ~4 minutes allowed. These two runs take about 3.
`tests/scripts/stress_scenario3 --runs 5` and `tests/scripts/fast_leak --runs 5` are the full
measurements (docs/scenarios.md).
"""
from __future__ import annotations

import pytest

from labkit import fastleak, labinfo, labreset, scenario3

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


@pytest.fixture(scope="module")
def known_state(lab: labinfo.Lab) -> labinfo.Lab:
    labreset.reset(lab)
    return lab


def test_a_slow_leak_is_moved_before_it_crosses_the_threshold_with_no_failed_request(known_state: labinfo.Lab) -> None:
    [run] = scenario3.run_variants(known_state, scenario3.Settings(settle=0), 1, variants_=("predictive",))
    timeline = run["leak"]
    [action] = run["actions"]
    assert action["result"] == "success" and action["rule"] == "migrate-before-memory-threshold", action
    assert run["node_after"] not in (None, run["node_before"])
    assert timeline["lead_time"] is not None and timeline["lead_time"] >= 0, timeline
    assert timeline["predicted_crossing"] is not None and not timeline["oom"]
    assert run["probe"]["requests"] > 0 and run["probe"]["failures"] == 0, run["probe"]


def test_a_fast_leak_of_a_users_service_is_moved_with_no_failed_request(known_state: labinfo.Lab) -> None:
    [run] = fastleak.run_many(known_state, fastleak.Settings(), 1)
    [action] = run["actions"]
    assert action["result"] == "success" and action["rule"] == "migrate-before-oom-fast", action
    assert run["probe"]["requests"] > 0 and run["probe"]["failures"] == 0, run["probe"]
    timeline = run["leak"]
    assert not timeline["oom"], timeline  # Swarm stopped the old container before the limit
    assert timeline["t5"] is not None and timeline["t_cross"] is not None and timeline["t5"] < timeline["t_cross"], timeline
