"""The report's scenario 3 and fast-leak parts: the timeline table, the lead-time criterion, the chart."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit import report as rp
from tests.report import samples
from tests.report.test_report import png_size, write_docs


def runs_of(*docs: dict) -> list[rp.Run]:
    return [run for i, doc in enumerate(docs) for run in rp.load_document(doc, f"doc{i}")]


def test_scenario_3_passes_when_four_of_five_predictive_runs_lead() -> None:
    leads = [4.0, 6.5, 0.0, 5.2, -1.0]
    runs = runs_of({"records": [samples.leak_run(t0=samples.T0 + 1000 * i, lead=lead) for i, lead in enumerate(leads)]})
    [lead] = [c for c in rp.build_report(runs).criteria if "lead time" in c.name]
    assert (lead.status, lead.detail) == ("pass", "4 of 5 runs")


def test_scenario_3_fails_when_two_of_five_predictive_runs_are_late() -> None:
    leads = [4.0, -0.1, 3.0, -2.0, 5.0]
    runs = runs_of({"records": [samples.leak_run(t0=samples.T0 + 1000 * i, lead=lead) for i, lead in enumerate(leads)]})
    report = rp.build_report(runs)
    [lead] = [c for c in report.criteria if "lead time" in c.name]
    assert (lead.status, lead.detail) == ("fail", "3 of 5 runs") and not report.passed


def test_threshold_runs_are_shown_but_not_judged_by_the_lead_time() -> None:
    runs = runs_of({"records": [samples.leak_run("scenario3-threshold", lead=-3.0)]})
    report = rp.build_report(runs)
    assert not [c for c in report.criteria if "Scenario 3" in c.name]
    assert "Scenario 3: slow leak, threshold rule: timeline" in rp.to_markdown(report)


def test_a_fast_leak_run_with_an_oom_kill_fails_its_criterion() -> None:
    runs = runs_of({"records": [samples.leak_run("fastleak", level=100.0, lead=1.0),
                                samples.leak_run("fastleak", t0=samples.T0 + 9000, level=100.0, lead=-0.5, oom=True)]})
    [fast] = [c for c in rp.build_report(runs).criteria if c.name.startswith("Fast leak")]
    assert (fast.status, fast.detail) == ("fail", "not in run 2 of 2")


def test_inputs_without_leak_runs_get_no_leak_criteria() -> None:
    report = rp.build_report(runs_of(*samples.full_set()))
    assert not [c for c in report.criteria if "leak" in c.name.lower() or "Scenario 3" in c.name] and report.passed


def test_the_timeline_table_gives_times_after_the_climbs_start_and_marks_extrapolated_crossings() -> None:
    runs = runs_of({"records": [samples.leak_run(lead=5.0), samples.leak_run(t0=samples.T0 + 9000, lead=2.0, observed=True)]})
    text = rp.to_markdown(rp.build_report(runs))
    rows = [line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")][-2:]
    # started = T0 - 30: T0 +30.00, T5 +33.00, T_cross +38.00 (extrapolated) / +35.00 (observed)
    assert "| 38.00 (ext.) |" in rows[0] and "| 30.00 |" in rows[0] and "| 33.00 |" in rows[0] and "| +5.00 |" in rows[0]
    assert "| 35.00 |" in rows[1] and "(ext.)" not in rows[1]


def test_a_negative_lead_time_is_valid_input_but_a_non_number_is_not() -> None:
    doc = samples.leak_run(lead=-4.0)
    assert runs_of(doc)[0].leak.lead_time == -4.0  # type: ignore[union-attr]
    doc["leak"]["lead_time"] = "soon"
    with pytest.raises(rp.RecordError, match=r"leak: lead_time: expected a number"):
        runs_of(doc)


def test_the_report_round_trips_leak_runs_through_its_json(tmp_path: Path) -> None:
    report = rp.build_report(runs_of({"records": [samples.leak_run()]}))
    again = rp.load_document(rp.to_json(report), "report.json")
    assert again == list(report.runs)


def test_leak_runs_get_their_own_chart(tmp_path: Path) -> None:
    docs = [{"records": [samples.leak_run("scenario3-threshold", lead=-3.0), samples.leak_run(t0=samples.T0 + 7000),
                         samples.leak_run("fastleak", t0=samples.T0 + 9000, level=100.0, oom=True, lead=-1.0)]}]
    out = tmp_path / "report"
    assert rp.main(["--input", *map(str, write_docs(tmp_path, docs)), "--out", str(out)]) == 0
    width, height = png_size(out / "leak_timeline.png")
    assert width >= 600 and height >= 150
    assert json.loads((out / "report.json").read_text())["records"][0]["leak"]["lead_time"] == -3.0
