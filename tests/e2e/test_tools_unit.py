"""The end-to-end tools' pure parts: controller answers parsed, latencies derived, records the report
accepts, the concurrent test's service spec and verdict, and scenario 2's adapter. No lab needed."""
from __future__ import annotations

import itertools
import sys
import types
from typing import Any

import pytest

import labkit
from labkit import controller_api as api
from labkit import mttr, report, scenario1, suite

RECORD = {"id": "a1", "action": "migrate", "service": "swarmguard_web-stress", "rule": "migrate-on-container-problem",
          "result": "success", "node_from": "worker-1", "node_to": "worker-2", "container_id": "c" * 64,
          "replicas_before": 1, "replicas_after": 1, "reason": "", "error": None, "dry_run": False,
          "t0": 100.0, "t1": 100.25, "t2": 100.26, "t3": 100.3, "t4": 100.31, "t5": 104.5, "t6": 107.0}
PROBE = {"requests": 300, "failures": 0, "longest_gap": 0.2, "total_downtime": 0.0, "downtime_periods": [],
         "median_latency": 0.003, "max_latency": 0.05, "addresses": {"10.200.0.5": 300}}


def test_a_sample_is_read_from_prometheus_text_and_a_missing_one_is_none() -> None:
    text = ("# HELP swarmguard_controller_exporters_up x\n# TYPE swarmguard_controller_exporters_up gauge\n"
            "swarmguard_controller_exporters_up 3.0\nswarmguard_controller_exporters_up_total 9\n"
            'swarmguard_x{node="worker-1"} 2.5\n')
    assert api.metric_value(text, "swarmguard_controller_exporters_up") == 3.0
    assert api.metric_value(text, "swarmguard_x", 'node="worker-1"') == 2.5
    assert api.metric_value(text, "swarmguard_controller_exporters") is None


def test_new_records_leave_out_the_seen_ones_and_keep_the_asked_action_oldest_first() -> None:
    records = [dict(RECORD, id="new2", t0=5.0), dict(RECORD, id="old"), dict(RECORD, id="new1", t0=2.0),
               dict(RECORD, id="scale", action="scale_up")]
    found = api.new_records(records, {"old"}, action="migrate", service=RECORD["service"])
    assert [r["id"] for r in found] == ["new1", "new2"]
    assert api.new_records(records, {"old"}, service="other") == []


def test_eventually_returns_the_first_truthy_value_and_times_out_on_the_injected_clock() -> None:
    answers = iter([None, [], "done"])
    assert api.eventually(lambda: next(answers), timeout=5, what="x", sleep=lambda s: None) == "done"
    ticks = itertools.count(0, 10)
    with pytest.raises(api.WaitTimeout, match="timed out after 15 s waiting for the thing"):
        api.eventually(lambda: None, timeout=15, what="the thing", clock=lambda: next(ticks), sleep=lambda s: None)


def test_the_latencies_are_derived_from_the_timeline_and_missing_ends_give_none() -> None:
    d = mttr.derived(RECORD)
    assert d == {"alert": pytest.approx(0.01), "decision": pytest.approx(0.04), "action": pytest.approx(4.19),
                 "t0_t5": pytest.approx(4.5), "t0_t6": pytest.approx(7.0)}
    assert mttr.derived(dict(RECORD, t6=None))["t0_t6"] is None


def test_the_printed_timeline_is_relative_to_t0() -> None:
    text = mttr.format_record(RECORD)
    assert "worker-1 -> worker-2" in text and "+4.500 s" in text and "MTTR T0->T6" in text and "7.000 s" in text


def test_the_scenario_1_stress_has_cpu_and_memory_and_no_network() -> None:
    path = scenario1.stress_path(scenario1.Settings(cpu=90, memory=400, ramp=5, hold=60))
    assert path == "/stress/combined?cpu=90&memory=400&duration=60&ramp=5"


def test_a_scenario_1_run_is_a_record_the_report_takes_and_judges() -> None:
    run = scenario1.result_record(RECORD, PROBE, node_before="worker-1", node_after="worker-2")
    [loaded] = report.load_document(run)
    built = report.build_report([loaded])
    [summary] = built.scenarios
    assert summary.mttr_t6.median == pytest.approx(7.0) and summary.failed_requests.median == 0
    statuses = {c.name: c.status for c in built.criteria}
    assert statuses["Scenario 1: the replacement healthy on another node in every run"] == "pass"
    same_node = scenario1.result_record(RECORD, PROBE, node_before="worker-1", node_after="worker-1")
    broken = report.build_report(report.load_document(dict(same_node, probe=dict(PROBE, failures=2))))
    statuses = {c.name: c.status for c in broken.criteria}
    assert statuses["Scenario 1: 0 failed probe requests in every run"] == "fail"


def test_the_scenario_1_table_shows_nodes_spans_and_failures() -> None:
    run = scenario1.result_record(RECORD, dict(PROBE, failures=1), node_before="worker-1", node_after="worker-3")
    row = scenario1.format_table([run]).splitlines()[1]
    assert "worker-1 -> worker-3" in row and "7.000" in row and "1/300" in row


WEB = {"Spec": {"Name": "swarmguard_web-stress", "Labels": {"com.docker.stack.namespace": "swarmguard"},
                "TaskTemplate": {"ContainerSpec": {"Image": "10.99.0.1:5000/stressapp@sha256:ab",
                                                   "Labels": {"com.docker.stack.namespace": "swarmguard", "x": "1"},
                                                   "Env": ["STRESS_NETWORK_PEER=web-stress:8081", "A=1"]},
                                 "Placement": {"Constraints": ["node.role == worker", "node.hostname!=worker-1"]},
                                 "Networks": [{"Target": "net0", "Aliases": ["web-stress"]}], "ForceUpdate": 2},
                "UpdateConfig": {"Order": "start-first"}}}


def test_a_concurrent_service_is_web_stress_under_its_own_name_alias_and_labels() -> None:
    spec = suite.clone_spec(WEB, "sgi-conc-b", "net1", env=["STRESS_NETWORK_PEER=sgi-conc-sink:8081"])
    template = spec["task_template"]
    assert spec["name"] == "sgi-conc-b" and spec["labels"]["swarmguard.enable"] == "true"
    assert template["Networks"] == [{"Target": "net1", "Aliases": ["sgi-conc-b"]}]
    assert template["ContainerSpec"]["Labels"] == {"x": "1"}
    assert template["ContainerSpec"]["Env"] == ["A=1", "STRESS_NETWORK_PEER=sgi-conc-sink:8081"]
    assert template["Placement"]["Constraints"] == ["node.role == worker"]
    assert spec["endpoint_spec"] == {"Mode": "dnsrr"} and spec["mode"] == {"Replicated": {"Replicas": 1}}
    assert WEB["Spec"]["TaskTemplate"]["Networks"][0]["Aliases"] == ["web-stress"]  # the original untouched
    assert "swarmguard.enable" not in suite.clone_spec(WEB, "sink", "net1", enable=False)["labels"]


def test_the_concurrent_test_passes_only_with_both_migrations_and_the_scale_up() -> None:
    a = dict(RECORD, id="1", service="sgi-conc-a")
    c = dict(RECORD, id="2", service="sgi-conc-c")
    b = dict(RECORD, id="3", service="sgi-conc-b", action="scale_up", replicas_before=1, replicas_after=2)
    ok, details = suite.concurrent_verdict([a, b, c])
    assert ok and "sgi-conc-b: scale_up replicas 1->2" in details and "sgi-conc-a: migrate worker-1->worker-2" in details
    ok, details = suite.concurrent_verdict([a, dict(c, result="timeout"), b])
    assert not ok and "sgi-conc-c: no successful migrate (timeout)" in details


def test_the_suite_runs_scenario_2_once_per_iteration_on_its_lab_and_keeps_each_record_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labs: list[Any] = []

    def run_scenario2(options: Any = None, *, lab: Any = None, say: Any = print) -> dict[str, Any]:
        assert options is None  # each run calibrates its own hold rate
        labs.append(lab)
        return {"kind": "proactive", "scenario": "scenario2", "run": len(labs)}

    fake = types.SimpleNamespace(run_scenario2=run_scenario2)
    monkeypatch.setitem(sys.modules, "labkit.scenario2", fake)
    monkeypatch.setattr(labkit, "scenario2", fake, raising=False)
    lab = object()
    assert [r["run"] for r in suite.scenario2_runs(lab, 3)] == [1, 2, 3]  # type: ignore[arg-type]
    assert labs == [lab, lab, lab]
    assert suite.scenario2_once(lab)["run"] == 4  # type: ignore[arg-type]


def test_a_suite_argument_error_is_refused_and_short_means_one_iteration() -> None:
    with pytest.raises(SystemExit):
        suite.parse_args(["--iterations", "0"])
    assert suite.parse_args(["--short", "--iterations", "5"]).iterations == 1


def test_lifting_exclusions_removes_only_swarmguards_constraints_and_its_label(engine_mode) -> None:
    from controller.actions.ownership import EXCLUSIONS_LABEL
    from sgcommon.engine import connect
    from tests.fakes.engine import FakeEngine, Timing

    with FakeEngine("manager-1", workers=("worker-1", "worker-2", "worker-3"), timing=Timing(0.01, 0.01, 0.01),
                    profile=engine_mode) as engine:
        engine.create_service({
            "Name": "app", "Labels": {EXCLUSIONS_LABEL: '{"worker-1":1.0,"worker-2":2.0}', "keep": "1"},
            "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}, "Placement": {"Constraints": [
                "node.role==worker", "node.hostname!=worker-1", "node.hostname!=worker-2", "node.hostname!=worker-3"]}},
            "Mode": {"Replicated": {"Replicas": 1}}})
        client = connect(engine.base_url, timeout=5)
        try:
            assert scenario1.lift_exclusions(client, "app") == ["worker-1", "worker-2"]
            assert scenario1.lift_exclusions(client, "app") == []
        finally:
            client.close()
        spec = engine.service_spec("app")
        engine.assert_no_unknown_routes()
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.role==worker", "node.hostname!=worker-3"]
    assert spec["Labels"] == {"keep": "1"}
