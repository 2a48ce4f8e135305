"""The results report: input validation, statistics, criteria, Markdown, JSON, charts, test_results lines."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from controller.events import mttr_seconds
from tests.exporter.test_influx import export, victoria  # noqa: F401  (the victoria-metrics fixture)
from tests.report import samples
from tests.support import free_port
from labkit import report as rp

REPO = Path(__file__).resolve().parents[2]


def runs_of(*docs: dict[str, Any]) -> list[rp.Run]:
    return [run for doc in docs for run in rp.load_document(doc)]


def status(report: rp.Report, starts: str) -> rp.Criterion:
    """The success criterion whose name starts so."""
    (found,) = [c for c in report.criteria if c.name.startswith(starts)]
    return found


def target(report: rp.Report, starts: str) -> rp.Criterion:
    """The target figure whose name starts so."""
    (found,) = [c for c in report.targets if c.name.startswith(starts)]
    return found


def write_docs(folder: Path, docs: list[dict[str, Any]]) -> list[Path]:
    paths = []
    for i, doc in enumerate(docs):
        path = folder / f"in{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- statistics

def test_spread_is_median_min_max_of_the_values_seen() -> None:
    assert rp.spread([3.0, None, 1.0, 2.0]) == rp.Spread(3, 2.0, 1.0, 3.0)
    assert rp.spread([4.0, 1.0]).median == 2.5
    assert rp.spread([None]) == rp.Spread(0, None, None, None)


def test_percentiles_interpolate_between_ranks_so_a_small_sample_p99_stays_under_its_max() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert rp.percentile(values, 50) == 2.5
    assert rp.percentile(values, 99) == pytest.approx(3 + 0.97)
    assert rp.percentile(values, 0) == 1.0 and rp.percentile(values, 100) == 4.0
    assert rp.percentiles([0.2]) == rp.Percentiles(1, 0.2, 0.2)
    assert rp.percentiles([None]) == rp.Percentiles(0, None, None)


@pytest.mark.parametrize("values, q", [([], 50), ([1.0], 101), ([1.0], -1)])
def test_a_percentile_of_nothing_or_out_of_range_is_refused(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        rp.percentile(values, q)


def test_the_ratio_is_proactive_over_reactive_and_unknown_when_reactive_is_zero_or_missing() -> None:
    assert rp.ratio(3.5, 7.0) == 0.5
    assert rp.ratio(0.0, 7.0) == 0.0
    assert rp.ratio(1.0, 0.0) is None and rp.ratio(None, 7.0) is None and rp.ratio(1.0, None) is None


# ---------------------------------------------------------------- summaries

def test_scenario_summaries_use_the_primary_action_timeline_and_the_probe() -> None:
    report = rp.build_report(runs_of(*samples.full_set()))
    by = {s.scenario: s for s in report.scenarios}
    assert list(by) == ["reactive-crash", "scenario1", "scenario2"]
    s1 = by["scenario1"]
    assert (s1.mttr_t5.median, s1.mttr_t5.min, s1.mttr_t5.max) == (5.0, 4.0, 6.0)
    assert (s1.mttr_t6.median, s1.mttr.median) == (7.0, 7.0)  # migrate: mttr_seconds is T0 -> T6
    assert s1.alert_latency.p50 == pytest.approx(0.02) and s1.decision_latency.p99 == pytest.approx(0.01)
    s2 = by["scenario2"]
    assert s2.mttr.median == 3.5 and s2.mttr_t6.n == 0  # T0 -> T5 of the scale-up
    assert s2.alert_latency.n == 2  # the scale-downs have no alert: not counted
    crash = by["reactive-crash"]
    assert (crash.mttr.median, crash.mttr.min, crash.mttr.max) == (7.1, 6.9, 7.4)
    assert crash.failed_requests.median == 60


def test_ratios_pair_every_proactive_scenario_with_every_reactive_mode() -> None:
    docs = samples.full_set() + [samples.baseline_file(samples.reactive(20.0, mode="node-loss", downtime=19.0),
                                                       mode="node-loss")]
    report = rp.build_report(runs_of(*docs))
    ratios = {(r.proactive, r.reactive): r for r in report.ratios}
    assert set(ratios) == {(p, r) for p in ("scenario1", "scenario2") for r in ("reactive-crash", "reactive-node-loss")}
    assert ratios["scenario1", "reactive-crash"].mttr == pytest.approx(7.0 / 7.1)
    assert ratios["scenario2", "reactive-node-loss"].mttr == pytest.approx(3.5 / 20.0)
    assert ratios["scenario1", "reactive-node-loss"].downtime == 0.0


# ---------------------------------------------------------------- criteria

def test_every_criterion_passes_on_a_clean_suite_run() -> None:
    report = rp.build_report(runs_of(*samples.full_set()))
    assert [c for c in report.criteria if c.status != "pass"] == []
    assert report.passed
    assert status(report, "Scenario 1: 0 failed").detail == "3 of 3 runs"


def test_one_failed_probe_request_fails_scenario_1_and_names_the_run() -> None:
    runs = runs_of({"records": [samples.scenario1(), samples.scenario1(failures=2, downtime=0.3), samples.scenario1()]})
    report = rp.build_report(runs)
    assert status(report, "Scenario 1: 0 failed") == rp.Criterion(
        "Scenario 1: 0 failed probe requests in every run", "fail", "not in run 2 of 3")
    assert status(report, "Scenario 1: downtime 0").status == "fail"
    assert not report.passed


@pytest.mark.parametrize("run", [
    samples.scenario1(node_after="worker-1"),  # came back on the same node
    samples.scenario1(result="failed"),
    samples.scenario1(t5=None),  # never healthy
], ids=["same node", "failed", "never healthy"])
def test_a_replacement_not_healthy_on_another_node_fails_scenario_1(run: dict[str, Any]) -> None:
    report = rp.build_report(runs_of(run))
    assert status(report, "Scenario 1: the replacement").status == "fail"


def test_scenario_2_fails_without_a_scale_up_or_without_the_scale_down_back_to_one() -> None:
    stuck = samples.scenario2(replicas_after=2)
    no_down = samples.scenario2(scale_down=False)
    no_up = samples.scenario2()
    no_up["actions"] = no_up["actions"][1:]
    report = rp.build_report(runs_of({"records": [stuck, no_down, no_up]}))
    assert status(report, "Scenario 2: scaled down").detail == "not in run 1, 2 of 3"
    assert status(report, "Scenario 2: scaled up").detail == "not in run 3 of 3"
    assert status(report, "Scenario 2: 0 failed").status == "pass"


def test_missing_scenarios_checks_and_baseline_are_no_data_not_a_pass() -> None:
    report = rp.build_report(runs_of(samples.scenario1()))
    assert status(report, "Scenario 2: 0 failed").status == "no data"
    assert status(report, "Reactive baseline").status == "no data"
    assert target(report, "Scenario 2: per-replica CPU").status == "no data"
    assert status(report, "Concurrent test").status == "no data"
    assert not report.passed


def test_a_failed_check_fails_its_criterion_with_its_details() -> None:
    report = rp.build_report(runs_of(samples.check("node_failure", passed=False, details="controller crashed"),
                                     samples.check("node_failure")))
    found = status(report, "Node-failure")
    assert (found.status, found.detail) == ("fail", "1 of 2 passed: controller crashed")
    assert "worker's engine stopped" in found.name  # named by what it checks


def test_the_targets_fail_on_slow_alerts_a_slow_migration_and_downtime_but_do_not_decide_passed() -> None:
    docs = [samples.baseline_file(samples.reactive(5.0)),
            samples.scenario1(t1=0.1, t2=1.6, t3=1.7, t4=1.8, t5=11.0, t6=12.0),
            samples.scenario1(t0=samples.T0 + 100, failures=0, downtime=0.0),
            samples.scenario2(failures=0), samples.check(), samples.check("node_failure")]
    report = rp.build_report(runs_of(*docs))
    assert target(report, "Alert latency").status == "fail"
    assert target(report, "Alert latency").detail == f"{rp.percentile([1.5, 0.02, 0.02], 99):.3f} s (limit 1 s)"
    assert target(report, "Decision latency").status == "pass"
    assert target(report, "Scenario 1: migrate: median MTTR < 10 s").detail == "9.000 s (limit 10 s)"
    assert target(report, "Scenario 1: migrate: MTTR at most half").detail == f"{9.0 / 5.0:.3f} (limit 0.5)"
    assert target(report, "Scenario 1: migrate: MTTR at most half").status == "fail"
    assert target(report, "Scenario 2: scale up: MTTR at most half").detail == f"{3.0 / 5.0:.3f} (limit 0.5)"
    assert target(report, "Downtime < 3 s").status == "pass"
    assert report.passed  # the success criteria alone decide


def test_downtime_target_needs_90_percent_of_proactive_runs_under_3_s() -> None:
    runs = [samples.scenario1(t0=samples.T0 + i, downtime=d, failures=1 if d else 0) for i, d in enumerate([0.0] * 9 + [4.0])]
    assert target(rp.build_report(runs_of({"records": runs})), "Downtime").detail == "90% of 10 runs"
    runs[0] = samples.scenario1(downtime=3.0, failures=1)
    assert target(rp.build_report(runs_of({"records": runs})), "Downtime").status == "fail"


def test_an_uneven_load_split_after_a_scale_up_fails_its_target() -> None:
    even, uneven = samples.scenario2(), samples.scenario2(t0=samples.T0 + 500)
    uneven["steps"][0]["cpu_per_replica"] = [70.0, 10.0]
    report = rp.build_report(runs_of({"records": [even, uneven]}))
    assert target(report, "Scenario 2: per-replica CPU") == rp.Criterion(
        "Scenario 2: per-replica CPU within 25% of the mean after every scale-up", "fail",
        "1 of 2 steps even; uneven: 70.0, 10.0")
    assert target(rp.build_report(runs_of(even)), "Scenario 2: per-replica CPU").status == "pass"


def test_latencies_are_pooled_over_every_proactive_action() -> None:
    report = rp.build_report(runs_of(samples.scenario1(t1=0.1, t2=0.3), *(samples.scenario2(t0=samples.T0 + i) for i in (1, 2))))
    expected = rp.percentiles([0.2, 0.02, 0.02])
    assert report.alert_latency.n == 3
    assert (report.alert_latency.p50, report.alert_latency.p99) == pytest.approx((expected.p50, expected.p99))
    assert report.decision_latency.n == 3  # the scale-downs (no alert, no T2) are not counted
    assert status(report, "Alert latency T2-T1 and decision").status == "pass"


# ---------------------------------------------------------------- Markdown and JSON

def test_the_markdown_has_a_row_per_scenario_the_ratios_and_a_line_per_criterion() -> None:
    report = rp.build_report(runs_of(*samples.full_set()))
    md = rp.to_markdown(report)
    assert "| Scenario 1: migrate | 3 | 7.00 (6.00-8.00) | 5.00 (4.00-6.00) | 7.00 (6.00-8.00) | 0.000 (0.000-0.000) " \
           "| 0 (0-0) | 0.020 / 0.020 | 0.010 / 0.010 |" in md
    assert "| Reactive: crash | 3 | 7.10 (6.90-7.40) | - | - |" in md
    assert f"| Scenario 1: migrate | Reactive: crash | {7.0 / 7.1:.3f} | 0.000 |" in md
    assert sum(line.startswith("- **PASS**") for line in md.splitlines()) == len(report.criteria) + sum(
        c.status == "pass" for c in report.targets)
    assert f"- **FAIL** {target(report, 'Scenario 1: migrate: MTTR at most half').name}" in md
    assert "| 1 | scale_up | 2 | 38.0, 36.0 | 37.0 | 1.0 |" in md
    assert "| node_failure | pass |" in md


def test_a_failing_criterion_shows_in_the_markdown_heading_and_line() -> None:
    md = rp.to_markdown(rp.build_report(runs_of(samples.scenario1(failures=1))))
    assert "## Success criteria: NOT all pass" in md
    assert "- **FAIL** Scenario 1: 0 failed probe requests in every run: not in run 1 of 1" in md


def test_the_report_json_is_itself_an_input_that_gives_back_the_same_runs_and_report() -> None:
    runs = runs_of(*samples.full_set())
    doc = json.loads(json.dumps(rp.to_json(rp.build_report(runs))))
    again = rp.load_document(doc)
    assert again == runs
    assert rp.to_json(rp.build_report(again)) == doc
    assert doc["passed"] is True and doc["scenarios"][1]["mttr_t5"] == {"n": 3, "median": 5.0, "min": 4.0, "max": 6.0}


def test_an_action_record_survives_its_as_dict_form() -> None:
    record = rp.action_from_dict(samples.action(t6=None))
    assert rp.action_from_dict(record.as_dict()) == record
    assert mttr_seconds(record) == 4.0


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("doc, message", [
    ({"kind": "proactive", "scenario": "scenario1", "actions": []}, "probe is missing"),
    ({"kind": "proactive", "scenario": "scenario3", "probe": samples.probe()}, "scenario: expected one of scenario1"),
    ({"kind": "proactive", "scenario": "scenario1", "probe": samples.probe(failures=5, requests=2)},
     "failures \\(5\\) > requests \\(2\\)"),
    ({"kind": "proactive", "scenario": "scenario1", "probe": samples.probe(),
      "actions": [samples.action() | {"t5": "soon"}]}, "actions\\[0\\]: t5: expected a number, got 'soon'"),
    ({"kind": "check", "test": "concurrent", "passed": "yes"}, "passed: expected true or false"),
    ({"kind": "whatever"}, "kind: expected one of reactive, proactive, check"),
    (samples.baseline_file(samples.reactive() | {"failed_requests": -1}), "iterations\\[0\\]: failed_requests: expected a whole number"),
    ({"something": 1}, "not a result document"),
    ({"kind": "proactive", "scenario": "scenario1", "probe": samples.probe(downtime=-1.0)},
     "probe: total_downtime: expected >= 0"),
])
def test_a_malformed_document_is_refused_with_the_place_and_the_reason(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(rp.RecordError, match=message):
        rp.load_document(doc, "f.json")


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    good, bad = write_docs(tmp_path, [samples.check(), {"kind": "check", "test": "x", "passed": True}])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(rp.RecordError) as caught:
        rp.load_files([good, bad, broken])
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{bad}: test: expected one of") and lines[1].startswith(str(broken))


# ---------------------------------------------------------------- files and the command line

def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_command_writes_markdown_json_and_both_charts_from_saved_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert rp.main(["--input", *map(str, write_docs(tmp_path, samples.full_set())), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["migration_timeline.png", "mttr_downtime.png", "report.json", "report.md"]
    for chart in ("migration_timeline.png", "mttr_downtime.png"):
        width, height = png_size(out / chart)
        assert width >= 600 and height >= 300
    assert json.loads((out / "report.json").read_text())["passed"] is True
    assert (out / "report.md").read_text().startswith("# SwarmGuard test results")


def test_the_timeline_chart_shows_the_median_migration() -> None:
    from labkit.report_charts import typical_migration

    runs = runs_of({"records": [samples.scenario1(t0=samples.T0 + 100 * i, t6=t6) for i, t6 in enumerate((9.0, 5.0, 7.0))]})
    chosen = typical_migration(rp.build_report(runs))
    assert chosen is not None and mttr_seconds(chosen) == 7.0


def test_without_a_migration_only_the_comparison_chart_is_drawn(tmp_path: Path) -> None:
    from labkit.report_charts import draw_charts

    paths = draw_charts(rp.build_report(runs_of(samples.baseline_file(samples.reactive()))), tmp_path)
    assert [p.name for p in paths] == ["mttr_downtime.png"] and png_size(paths[0])[0] > 0


def test_bad_input_writes_nothing_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bad,) = write_docs(tmp_path, [{"kind": "check", "passed": True}])
    out = tmp_path / "report"
    assert rp.main(["--input", str(bad), "--out", str(out)]) == 2
    assert not out.exists()
    assert f"{bad}: test is missing" in capsys.readouterr().err


def test_check_mode_exits_1_when_a_criterion_fails(tmp_path: Path) -> None:
    paths = write_docs(tmp_path, [samples.scenario1(failures=3)])
    assert rp.main(["--input", *map(str, paths), "--out", str(tmp_path / "r")]) == 0
    assert rp.main(["--input", *map(str, paths), "--out", str(tmp_path / "r"), "--check"]) == 1


def test_the_wrapper_script_runs_the_module(tmp_path: Path) -> None:
    paths = write_docs(tmp_path, [samples.check()])
    done = subprocess.run([str(REPO / "tests/scripts/report"), "--input", *map(str, paths), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "**PASS** Concurrent test: three services stressed at once" in done.stdout


# ---------------------------------------------------------------- test_results

def test_test_results_lines_have_one_point_per_run_with_its_tags_and_fields() -> None:
    runs = runs_of(samples.baseline_file(samples.reactive(7.25, broke_at=1_800_000_000.5), samples.reactive(None)),
                   samples.scenario1(t0=1_800_000_100.0, t5=4.0, t6=6.5),
                   samples.scenario2(t0=1_800_000_200.0, failures=2), samples.check())
    assert rp.test_results_lines(runs) == [
        "test_results,scenario=reactive-crash,test_case=reactive mttr_seconds=7.25,downtime_seconds=7.0,failed_requests=60i 1800000000500",
        "test_results,scenario=reactive-crash,test_case=reactive downtime_seconds=7.0,failed_requests=60i 1799999400000",
        "test_results,scenario=scenario1,test_case=proactive mttr_seconds=6.5,downtime_seconds=0.0,failed_requests=0i 1800000100000",
        "test_results,scenario=scenario2,test_case=proactive mttr_seconds=3.0,downtime_seconds=0.0,failed_requests=2i 1800000200000",
    ]
    assert rp.test_results_lines(runs[:1], precision="s")[0].endswith(" 1800000000")


def test_a_run_without_an_action_has_no_time_and_no_point() -> None:
    run = samples.scenario1()
    run["actions"] = []
    assert rp.test_results_lines(runs_of(run)) == []


def test_write_results_raises_when_the_server_is_not_there() -> None:
    with pytest.raises(rp.WriteError, match="0 of 1 test_results lines written"):
        rp.write_results(f"http://127.0.0.1:{free_port()}", runs_of(samples.scenario1()), timeout=10)


@pytest.mark.real
def test_write_results_lands_in_victoria_metrics_with_its_tags(victoria: str) -> None:  # noqa: F811
    now = round(time.time() - 60, 3)  # within the sink's retention (1 day) and not in the future
    runs = runs_of(samples.baseline_file(samples.reactive(7.25, broke_at=now - 30)),
                   samples.scenario1(t0=now, t5=4.0, t6=6.5))
    assert rp.write_results(f"{victoria}/api/v2/write?org=o&bucket=b", runs, token="t") == 2
    rows = export(victoria, '{__name__=~"test_results_.*"}')
    by = {(row["metric"]["__name__"], row["metric"]["scenario"]): row for row in rows}
    assert sorted(by) == sorted((f"test_results_{field}", scenario) for scenario in ("reactive-crash", "scenario1")
                                for field in ("mttr_seconds", "downtime_seconds", "failed_requests"))
    mttr = by["test_results_mttr_seconds", "scenario1"]
    assert mttr["metric"] == {"__name__": "test_results_mttr_seconds", "scenario": "scenario1", "test_case": "proactive"}
    assert mttr["values"] == [6.5] and mttr["timestamps"] == [round(now * 1000)]
    assert by["test_results_mttr_seconds", "reactive-crash"]["values"] == [7.25]
    assert by["test_results_failed_requests", "reactive-crash"]["values"] == [60]
    assert by["test_results_downtime_seconds", "reactive-crash"]["metric"]["test_case"] == "reactive"


def short_suite_docs() -> list[dict[str, Any]]:
    """What the short suite saves: everything of a full run but the two checks."""
    return [d for d in samples.full_set() if d.get("kind") != "check"]


def test_a_short_suite_that_passed_all_it_ran_passes_and_shows_the_checks_as_not_run() -> None:
    report = rp.build_report(runs_of(*short_suite_docs()), not_run=rp.CHECKS)
    assert report.passed and report.headline == "all that ran pass (2 not run)"
    assert status(report, "Concurrent test").status == "not run"
    assert status(report, "Node-failure test").status == "not run"
    md = rp.to_markdown(report)
    assert "## Success criteria: all that ran pass (2 not run)" in md and "**NOT RUN** Concurrent test" in md


def test_a_check_without_a_result_that_was_meant_to_run_still_fails() -> None:
    report = rp.build_report(runs_of(*short_suite_docs()))
    assert status(report, "Concurrent test").status == "no data" and not report.passed
    failed = rp.build_report(runs_of(*short_suite_docs(), samples.check(passed=False)), not_run=rp.CHECKS)
    assert status(failed, "Concurrent test").status == "fail" and not failed.passed  # a result beats "not run"


def test_the_scenario_2_runs_table_shows_every_replica_step() -> None:
    report = rp.build_report(runs_of(*samples.full_set()))
    md = rp.to_markdown(report)
    section = md.split("## Scenario 2: scale up: runs")[1].split("##")[0]
    assert "| 1 -> 2 -> 1 |" in section and "| 1 -> 1 |" not in section
    no_steps = dict(samples.scenario2(), steps=[])
    [run] = runs_of({"records": [no_steps]})
    assert isinstance(run, rp.ProactiveRun) and rp.replica_steps(run) == "1 -> 2 -> 1"  # from the actions
    stuck = dict(samples.scenario2(scale_down=False, replicas_after=2), steps=[])
    [run] = runs_of({"records": [stuck]})
    assert isinstance(run, rp.ProactiveRun) and rp.replica_steps(run) == "1 -> 2"
    # a step record measured while the replica was going away says 0: the controller's count wins
    odd = samples.scenario2()
    odd["steps"][1]["replicas"] = 0
    [run] = runs_of({"records": [odd]})
    assert isinstance(run, rp.ProactiveRun) and rp.replica_steps(run) == "1 -> 2 -> 1"
    only_steps = dict(samples.scenario2(), actions=[])
    [run] = runs_of({"records": [only_steps]})
    assert isinstance(run, rp.ProactiveRun) and rp.replica_steps(run) == "1 -> 2 -> 1"  # from the steps


def test_no_text_of_the_report_names_an_internal_document() -> None:
    md = rp.to_markdown(rp.build_report(runs_of(*samples.full_set())))
    assert not re.search(r"issue [0-9]|PRD|spec [0-9]", md), md
    assert not re.search(r"issue [0-9]|PRD|spec [0-9]", rp.parse_args.__doc__ or "")
