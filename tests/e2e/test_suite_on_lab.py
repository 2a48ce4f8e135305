"""CI's short suite on the lab (docs/scenarios.md): reactive baseline, scenario 1 and scenario 2 once each,
judged by the issue's criteria from the files the suite saved (about 8 minutes on a warm lab)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import labinfo, report, suite

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


@pytest.fixture(scope="module")
def suite_out(lab: labinfo.Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suite")
    suite.Suite(lab, out, 1, short=True).run()
    errors = {p.name: json.loads(p.read_text()).get("error") for p in out.glob("*-error.json")}
    assert not errors, errors
    return out


@pytest.fixture(scope="module")
def short_suite(suite_out: Path) -> list[report.Run]:
    return report.load_files(sorted(suite_out.glob("*.json")))


def proactive(runs: list[report.Run], scenario: str) -> list[report.ProactiveRun]:
    return [r for r in runs if isinstance(r, report.ProactiveRun) and r.scenario == scenario]


def test_scenario_1_migrates_to_another_node_with_no_failed_request(short_suite: list[report.Run]) -> None:
    [run] = proactive(short_suite, "scenario1")
    action = run.primary
    assert action is not None and action.result == "success", run.actions
    assert run.node_after not in (None, run.node_before) and action.node_to == run.node_after
    assert action.timeline.t5 is not None and action.timeline.t6 is not None
    assert run.probe.requests > 0 and run.probe.failures == 0, run.probe


def test_scenario_2_scales_up_with_no_failed_request(short_suite: list[report.Run], suite_out: Path) -> None:
    [run] = proactive(short_suite, "scenario2")
    [record] = json.loads((suite_out / "scenario2.json").read_text())["records"]
    # on a failure: any other action the controller took, and what the run saw instead of a scale-up
    why = {k: record.get(k) for k in ("other_actions", "no_scale_up", "load")}
    assert any(a.action == "scale_up" and a.result == "success" for a in run.actions), (run.actions, why)
    assert run.probe.requests > 0 and run.probe.failures == 0, run.probe


def test_the_reactive_baseline_has_downtime(short_suite: list[report.Run]) -> None:
    [run] = [r for r in short_suite if isinstance(r, report.ReactiveRun)]
    assert run.downtime_s > 0 and run.failed_requests > 0
