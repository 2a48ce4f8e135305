"""Scenario 2's parts that need no lab: the ssh command and options, env edits, events, sink parsing, load split,
the calibrated hold rate (fake generators and a fake sink).

The ssh generator itself (through a stand-in ssh) is in test_ssh_generator.py."""
from __future__ import annotations

import dataclasses
import json
import shlex
import threading
import types
from pathlib import Path

import pytest
import requests

from sgcommon.engine import EngineError
from labkit import labinfo, report, scenario2, sink


def test_the_ssh_command_quotes_every_argument_and_sends_the_program_on_stdin() -> None:
    args = scenario2.loadgen_args(target="http://svc:8080/api/data?a=1&b=2", rps=25, ramp=30, hold=120, ramp_down=30)
    cmd = scenario2.ssh_command("alpine-1", args, program_size=1234)
    assert cmd[0] == "ssh" and cmd[-2:-1] == ["alpine-1"] and cmd[-3] == "-T"
    assert all(flag == "-o" for flag in cmd[1:-3:2])
    assert {"BatchMode=yes", "ConnectTimeout=10", "ServerAliveInterval=5"} <= set(cmd[2:-3:2])
    remote = shlex.split(cmd[-1])
    assert remote[:5] == ["python3", "-u", "-c", scenario2.BOOTSTRAP, "1234"]
    assert remote[5:] == [*args, "--stop-on-eof"]
    assert remote[remote.index("--rps") + 1] == "25.0"
    assert "'http://svc:8080/api/data?a=1&b=2'" in cmd[-1]
    # one line without `!`: csh-style login shells refuse a newline inside quotes
    assert "\n" not in cmd[-1] and "!" not in cmd[-1]


def test_an_ssh_configuration_file_goes_to_ssh_as_its_first_option(tmp_path: Path) -> None:
    cmd = scenario2.ssh_command("h1", [], program_size=1, config=tmp_path / "ssh_config")
    assert cmd[:3] == ["ssh", "-F", str(tmp_path / "ssh_config")]


@pytest.mark.parametrize("host", ["", "-oProxyCommand=x", "a b", "h\n"])
def test_a_host_that_ssh_would_read_as_an_option_or_two_words_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="ssh host"):
        scenario2.ssh_command(host, [], program_size=1)


def test_the_orchestrator_with_ssh_hosts_splits_the_rate_over_them_and_builds_no_container(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n")
    args = scenario2.parse_orchestrator_args(["--ssh-hosts", "alpine-1, alpine-2", "--rps", "100",
                                              "--ssh-config", str(config)])
    gens = scenario2.orchestrator_generators(args)
    assert [g.name for g in gens] == ["alpine-1", "alpine-2"]
    assert all(isinstance(g, scenario2.SshGenerator) for g in gens)
    assert gens[0].command[:3] == ["ssh", "-F", str(config)]
    remote = shlex.split(gens[0].command[-1])
    assert remote[remote.index("--rps") + 1] == "50.0"


def test_the_prds_alpine_nodes_option_names_the_same_ssh_hosts() -> None:
    assert scenario2.parse_orchestrator_args(["--alpine-nodes", "alpine-1,alpine-2"]).hosts == ["alpine-1", "alpine-2"]


@pytest.mark.parametrize("argv, message", [
    (["--ssh-config", "/nonexistent"], "--ssh-config needs --ssh-hosts"),
    (["--ssh-hosts", "a", "--ssh-config", "/nonexistent/ssh_config"], "no file"),
    (["--ssh-hosts", "a,-oProxyCommand=x"], "--ssh-hosts"),
])
def test_orchestrator_ssh_options_that_cannot_work_are_refused(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        scenario2.parse_orchestrator_args(argv)
    assert message in capsys.readouterr().err


def test_scenario_2_with_ssh_hosts_runs_one_generator_on_each_with_an_equal_share(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n")
    args = scenario2.parse_scenario_args(["--alpine-nodes", "a1,a2,a3,a4", "--ssh-config", str(config), "--rps", "400"])
    opt = scenario2.Scenario2Options(rps=args.rps, ssh_hosts=args.hosts, ssh_config=str(args.ssh_config))
    lab = labinfo.Lab(host_socket="unix:///nonexistent.sock", node_sockets={})
    gens = scenario2.scenario_generators(opt, lab)
    assert [g.name for g in gens] == ["a1", "a2", "a3", "a4"]
    assert all(isinstance(g, scenario2.SshGenerator) and g.command[:3] == ["ssh", "-F", str(config)] for g in gens)
    remote = shlex.split(gens[0].command[-1])
    assert remote[remote.index("--rps") + 1] == "100.0"
    json.dumps(vars(opt))  # the options go into the JSON result as they are


def test_thresholds_become_the_controllers_override_variables() -> None:
    assert scenario2.threshold_env({"net_high": 0.02, "net_low": 1}) == {
        "SWARMGUARD_THRESHOLD_NET_HIGH": "0.02", "SWARMGUARD_THRESHOLD_NET_LOW": "1.0"}


def test_env_edits_replace_add_and_remove_and_keep_everything_else() -> None:
    env = ["A=1", "SWARMGUARD_THRESHOLD_NET_HIGH=5", "B=x=y"]
    edited = scenario2.env_edit(env, set_={"SWARMGUARD_THRESHOLD_NET_HIGH": "0.02", "C": "3"}, unset=["A"])
    assert edited == ["B=x=y", "SWARMGUARD_THRESHOLD_NET_HIGH=0.02", "C=3"]
    assert scenario2.env_values(edited, ["B", "A", "C"]) == {"B": "x=y", "A": None, "C": "3"}


def test_new_records_of_the_service_are_taken_oldest_first_scale_actions_apart_from_the_rest() -> None:
    events = [
        {"id": "3", "service": scenario2.SERVICE, "action": "scale_down", "t0": 30.0},
        {"id": "2", "service": scenario2.SERVICE, "action": "scale_up", "t0": 20.0},
        {"id": "9", "service": "other", "action": "scale_up", "t0": 25.0},
        {"id": "8", "service": scenario2.SERVICE, "action": "migrate", "t0": 22.0},
        {"id": "1", "service": scenario2.SERVICE, "action": "scale_up", "t0": 10.0},
    ]
    scale, other = scenario2.new_actions(events, {"1"}, scenario2.SERVICE)
    assert [e["id"] for e in scale] == ["2", "3"]
    assert [e["id"] for e in other] == ["8"]


def test_timings_are_the_spans_between_the_records_timestamps() -> None:
    record = {"t0": 100.0, "t1": 100.2, "t2": 100.21, "t3": 100.25, "t4": 100.3, "t5": 101.8, "t6": None}
    assert scenario2.timings(record) == {"t0_t5": 1.8, "t0_t6": None, "alert_t2_t1": 0.01,
                                         "decision_t3_t2": 0.04, "action_t5_t4": 1.5}


EXPORT = "\n".join(json.dumps(doc) for doc in [
    {"metric": {"__name__": "container_metrics_cpu_percent", "container_id": "aaa", "node": "worker-1"},
     "values": [80, 82, 40], "timestamps": [100_000, 101_000, 110_000]},
    {"metric": {"__name__": "container_metrics_cpu_percent", "container_id": "bbb", "node": "worker-2"},
     "values": [35, 39], "timestamps": [111_000, 109_000]},
]) + "\n"


def test_the_sinks_export_becomes_one_sorted_series_per_container() -> None:
    series = {s.container_id: s for s in sink.parse_series(EXPORT)}
    assert series["aaa"].node == "worker-1" and series["aaa"].points[0] == (100.0, 80.0)
    assert series["bbb"].points == [(109.0, 39.0), (111.0, 35.0)]
    assert scenario2.window_means(list(series.values()), start=105, end=115) == {"aaa": 40.0, "bbb": 37.0}
    assert scenario2.window_means(list(series.values()), start=99, end=101.5) == {"aaa": 81.0}


def test_the_load_split_compares_each_replica_with_the_total_before_over_the_replicas() -> None:
    split = scenario2.load_split(80.0, [42.0, 36.0])
    assert split == {"expected_each": 40.0, "mean": 39.0, "max_deviation": 4.0, "max_over_min": 1.17}
    assert scenario2.load_split(None, [10.0, 30.0])["expected_each"] == 20.0
    assert scenario2.load_split(50.0, [])["mean"] is None


def test_steps_take_the_cpu_after_the_new_replica_settled_and_the_total_at_the_breach() -> None:
    series = sink.parse_series(EXPORT)
    actions = [{"action": "scale_up", "result": "success", "t0": 100.5, "t3": 101.5, "t5": 104.0},
               {"action": "scale_up", "result": "failed", "t0": 120.0, "t5": None}]
    opt = scenario2.Scenario2Options(settle=5.0, window=10.0)
    steps = scenario2._steps(actions, series, opt, load_end=200.0)
    assert len(steps) == 1
    assert steps[0]["window"] == [109.0, 119.0]
    assert steps[0]["cpu_per_replica"] == [40.0, 37.0] and steps[0]["replicas"] == 2
    assert steps[0]["cpu_before_total"] == 81.0 and steps[0]["cpu_after_total"] == 77.0
    assert steps[0]["split"]["expected_each"] == 40.5


def generator_lines(name: str, ts0: int, oks: list[int]) -> scenario2.GeneratorRun:
    gen = scenario2.GeneratorRun(name)
    for i, ok in enumerate(oks):
        gen.take(json.dumps({"second": i, "ts": ts0 + i + 0.4, "target_rps": 10.0, "sent": ok, "ok": ok, "failed": 0,
                             "missed": 0, "latency_p50": 0.01, "latency_max": 0.02, "addresses": {"10.0.0.5": ok},
                             "errors": {}}))
    gen.take(json.dumps({"summary": {"target_rps": 10.0, "planned": sum(oks), "sent": sum(oks), "ok": sum(oks),
                                     "failed": 0, "missed": 0, "hold_achieved_rps": 9.5, "addresses": {"10.0.0.5": sum(oks)},
                                     "errors": {}}}))
    return gen


def test_generators_are_merged_by_wall_clock_second_and_their_summaries_added() -> None:
    a, b = generator_lines("gen-1", 1000, [10, 10]), generator_lines("gen-2", 1001, [9, 8])
    rows = scenario2.merge_seconds([a.lines, b.lines])
    assert [(r["ts"], r["ok"], r["target_rps"]) for r in rows] == [(1000, 10, 10.0), (1001, 19, 20.0), (1002, 8, 10.0)]
    total = scenario2.load_outcome([a, b])
    assert (total["generators"], total["ok"], total["hold_achieved_rps"], total["target_rps"]) == (2, 37, 19.0, 20.0)
    assert total["addresses"] == {"10.0.0.5": 37}


def test_a_generator_that_printed_no_summary_fails_the_run_instead_of_counting_as_zero() -> None:
    silent = scenario2.GeneratorRun("gen-2")
    silent.take(b"Traceback (most recent call last):")
    with pytest.raises(EngineError, match="gen-2"):
        scenario2.load_outcome([generator_lines("gen-1", 1000, [5]), silent])


def test_the_result_record_is_one_the_report_accepts() -> None:
    probe = {"requests": 900, "failures": 0, "longest_gap": 0.2, "total_downtime": 0.0}
    load = {"ok": 12000, "failed": 0}
    record = {
        "kind": "proactive", "scenario": "scenario2", "replicas_before": 1, "replicas_after": 1,
        "probe": scenario2.probe_block(probe, load),
        "actions": [{"id": "a1", "action": "scale_up", "service": scenario2.SERVICE, "rule": "scale-up-on-traffic",
                     "result": "success", "replicas_before": 1, "replicas_after": 2,
                     **{f"t{i}": 100.0 + i * 0.3 for i in range(6)}, "t6": None},
                    {"id": "a2", "action": "scale_down", "service": scenario2.SERVICE, "rule": "scale-down-when-idle",
                     "result": "success", "replicas_before": 2, "replicas_after": 1,
                     **{f"t{i}": 400.0 + i * 0.3 for i in range(7)}}],
        "steps": [{"action": "scale_up", "replicas": 2, "cpu_per_replica": [40.0, 37.0], "split": {}}],
    }
    run = report.record_from_dict(record, "scenario2")
    assert run.probe.requests == 12900 and run.probe.failures == 0
    assert run.primary is not None and run.primary.action == "scale_up"
    assert run.steps[0].cpu_per_replica == (40.0, 37.0)


@pytest.mark.parametrize("argv, message", [
    (["--net-low", "0.5", "--net-high", "0.1"], "--net-low"),
    (["--generators", "0"], "--generators"),
    (["--rps", "-3"], "--rps"),
])
def test_scenario_options_that_cannot_work_are_refused(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        scenario2.parse_scenario_args(argv)
    assert message in capsys.readouterr().err


def test_the_scale_down_is_timed_from_the_load_stopping_to_its_surplus_task_gone() -> None:
    actions = [{"action": "scale_up", "result": "success", "t5": 130.0, "t6": None},
               {"action": "scale_down", "result": "failed", "t5": 300.0, "t6": None},
               {"action": "scale_down", "result": "success", "t5": 390.0, "t6": 392.5}]
    assert scenario2._after(actions, "scale_down", since=200.0) == 192.5
    assert scenario2._after(actions, "scale_up", since=100.0) == 30.0
    assert scenario2._after(actions[:2], "scale_down", since=200.0) is None


def test_thresholds_already_set_are_compared_as_numbers() -> None:
    want = scenario2.threshold_env({"net_high": 3.0, "net_low": 1.0})
    assert scenario2.same_values({"SWARMGUARD_THRESHOLD_NET_HIGH": "3", "SWARMGUARD_THRESHOLD_NET_LOW": "1.0"}, want)
    assert not scenario2.same_values({"SWARMGUARD_THRESHOLD_NET_HIGH": "3", "SWARMGUARD_THRESHOLD_NET_LOW": None}, want)
    assert not scenario2.same_values({"SWARMGUARD_THRESHOLD_NET_HIGH": "x", "SWARMGUARD_THRESHOLD_NET_LOW": "1"}, want)


def test_the_sink_is_read_after_the_last_steps_cpu_window_has_passed() -> None:
    opt = scenario2.Scenario2Options(settle=5.0, window=15.0)
    actions = [{"action": "scale_up", "result": "success", "t5": 100.0},
               {"action": "scale_down", "result": "success", "t5": 300.0},
               {"action": "scale_up", "result": "failed", "t5": 400.0}]
    assert scenario2.windows_end(actions, opt) == 320.0
    assert scenario2.windows_end([], opt) == 0.0


def test_the_served_rate_is_the_generators_latest_seconds_added() -> None:
    assert scenario2.latest_rate([[{"ok": 10}, {"ok": 40}], [{"ok": 55}], []]) == 95.0
    assert scenario2.latest_rate([]) == 0.0


def test_the_memory_stress_waits_for_traffic_and_is_full_with_the_load_and_over_before_the_hold_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Memory climbing with no traffic is what the predictive migrate rules act on: started first,
    # it can get the replica moved instead of scaled.
    calls: list[dict[str, float]] = []
    monkeypatch.setattr(scenario2, "stress_memory", lambda lab, client, **kw: calls.append(kw) or "cid")
    gen = scenario2.GeneratorRun("gen-1")
    gen.take(json.dumps({"second": 1, "ok": 30}))
    timer = threading.Timer(0.6, lambda: (calls.append({"traffic": 1.0}), gen.take(json.dumps({"second": 2, "ok": 120}))))
    opt = scenario2.Scenario2Options(rps=400.0, ramp=20.0, hold=45.0, memory_after_rps=100.0)
    timer.start()
    lab = labinfo.Lab(host_socket="unix:///nonexistent.sock", node_sockets={})
    assert scenario2._memory_after_traffic(lab, None, [gen], opt, say=lambda _: None) == "cid"
    traffic, stress = calls
    assert traffic == {"traffic": 1.0}  # the stress came after the generator served 100 req/s
    assert stress == {"megabytes": 400, "ramp": pytest.approx(14.0),  # full when the 20 s ramp (at 120 of 400) is
                      "duration": 43.0}  # held until 2 s before the hold ends


def test_with_little_traffic_the_memory_stress_waits_for_half_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[str] = []
    monkeypatch.setattr(scenario2, "stress_memory", lambda lab, client, **kw: "cid")
    monkeypatch.setattr(scenario2.api, "eventually", lambda check, **kw: waited.append(kw["what"]) or check())
    gen = scenario2.GeneratorRun("gen-1")
    gen.take(json.dumps({"second": 1, "ok": 30}))
    opt = scenario2.Scenario2Options(rps=60.0, memory_after_rps=100.0)
    lab = labinfo.Lab(host_socket="unix:///nonexistent.sock", node_sockets={})
    scenario2._memory_after_traffic(lab, None, [gen], opt, say=lambda _: None)
    assert waited == ["the load to serve 30 req/s before the memory stress starts"]
    # 0 starts it at once, before any second was reported
    scenario2._memory_after_traffic(lab, None, [scenario2.GeneratorRun("gen-2")],
                                    scenario2.Scenario2Options(rps=400.0, memory_after_rps=0.0), say=lambda _: None)
    assert waited[-1] == "the load to serve 0 req/s before the memory stress starts"


class _Logs:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.asked: dict[str, object] = {}

    def service_logs(self, service: str, **kw: object) -> list[bytes]:
        self.asked = {"service": service, **kw}
        return [line.encode() + b"\n" for line in self.lines]


def test_a_run_without_a_scale_up_says_what_the_container_and_the_controller_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Answer:
        def __init__(self, text: str) -> None:
            self.text = text

        def raise_for_status(self) -> None:
            pass

    asked: list[str] = []

    def get(url: str, *, timeout: float, params: dict[str, str]) -> Answer:
        asked.append(params["match[]"])
        values = {"cpu": [60.0, 70.0, 90.0], "memory": [80.0, 84.0, 85.0], "network": []}
        name = params["match[]"].split("_")[2]
        if not values[name]:
            return Answer("")
        return Answer(json.dumps({"metric": {"container_id": "c1"}, "values": values[name],
                                  "timestamps": [1000, 2000, 3000]}))

    monkeypatch.setattr("labkit.sink.requests.get", get)
    logs = _Logs(['{"level":"info","msg":"scrape round"}',
                  '{"level":"info","msg":"decision","rule":"migrate-before-oom"}',
                  '{"level":"warning","msg":"action not started","verdict":"busy"}'])
    out = scenario2.no_scale_up(logs, scenario2.Scenario2Options(), container_id="c1" * 20, start=100.0, end=200.0)
    assert out["figures"] == {"cpu": {"median": 70.0, "max": 90.0, "samples": 3},
                              "mem": {"median": 84.0, "max": 85.0, "samples": 3}, "net": "no samples"}
    assert all('container_id="' + "c1" * 20 + '"' in m for m in asked)
    assert [json.loads(line)["msg"] for line in out["controller_log"]] == ["decision", "action not started"]
    assert logs.asked["service"] == scenario2.CONTROLLER and logs.asked["since"] == 99


def test_a_controller_log_that_cannot_be_read_is_said_not_raised() -> None:
    class Broken:
        def service_logs(self, service: str, **kw: object) -> list[bytes]:
            raise EngineError("no such service")

    [line] = scenario2.controller_log(Broken(), since=0.0)
    assert "could not be read" in line and "no such service" in line


# ------------------------------------------------------------------ the calibrated hold rate

def calibration_lines(ts0: float, oks: list[int]) -> list[dict[str, object]]:
    """One generator's per-second lines, second 0 starting at ts0 (as loadgen.py prints them)."""
    return [{"second": i, "ts": ts0 + i, "target_rps": 100.0, "sent": ok, "ok": ok, "failed": 0, "missed": 0,
             "addresses": {}, "errors": {}} for i, ok in enumerate(oks)]


def test_the_served_rate_is_the_generators_mean_over_the_holds_last_seconds_added_up() -> None:
    # ramp 3 s, hold 12 s: seconds 7..14 are the last 8 s; the ramp's seconds and a short last line are left out
    a = calibration_lines(1000.0, [30, 60, 90] + [100] * 4 + [98, 102] * 4 + [5])
    b = calibration_lines(1000.4, [30, 60, 90] + [100] * 4 + [96] * 8)
    rate, start, end = scenario2.served_rate([a, b], ramp=3, hold=12, tail=8) or (0.0, 0.0, 0.0)
    assert rate == 196.0
    assert (start, end) == (1007.4, 1015.0)  # the seconds both generators reported


def test_no_served_rate_when_a_generator_reported_no_second_of_the_hold() -> None:
    assert scenario2.served_rate([calibration_lines(1000.0, [100] * 15), calibration_lines(1000.0, [30, 60])],
                                 ramp=3, hold=12, tail=8) is None
    assert scenario2.served_rate([], ramp=3, hold=12, tail=8) is None


@pytest.mark.parametrize("cpu_per_rps, idle, rate, clamped", [
    (0.22, 0.0, 400.0, ""),           # ~1.1 ms of CPU a request: 88 / 0.22
    (0.13, 0.0, 680.0, ""),           # ~0.65 ms: the low-cost runs
    (0.13, 3.0, 650.0, ""),           # the idle share is not the requests'
    (0.05, 0.0, 800.0, "clamped to 800"),
    (0.5, 0.0, 250.0, "clamped to 250"),
])
def test_the_hold_rate_puts_the_replica_at_the_target_cpu_rounded_and_clamped(
    cpu_per_rps: float, idle: float, rate: float, clamped: str,
) -> None:
    chosen, note = scenario2.choose_rate(cpu_per_rps, idle=idle)
    assert chosen == rate
    assert (clamped in note) if clamped else note == ""


@pytest.mark.parametrize("cost", [None, 0.0, -0.1])
def test_without_a_cpu_cost_the_hold_rate_falls_back_to_the_fixed_rate_with_the_reason(cost: float | None) -> None:
    chosen, note = scenario2.choose_rate(cost)
    assert chosen == scenario2.FALLBACK_RPS and "no CPU cost measured" in note


def test_the_calibration_divides_the_replicas_cpu_over_the_window_by_the_served_rate() -> None:
    # idle 2 % before the load (t < 1000); 200 req/s served over [1007, 1015); the sample at 1007
    # stands for the second before it (still in the ramp's reach) and the one after 1015 for the stop
    points = [(990.0 + i, 2.0) for i in range(10)] + [(1007.0, 60.0)] + [(1008.0 + i, v) for i, v in
                                                                        enumerate([38, 40, 42, 40, 39, 41, 40])]
    points += [(1016.0, 20.0), (1017.0, 2.0)]
    record = scenario2.calibration_record(asked=200.0, served=(200.0, 1007.0, 1015.0), points=points, load_start=1000.0)
    assert (record["cpu_samples"], record["cpu_median"], record["cpu_idle"]) == (7, 40.0, 2.0)
    assert record["cpu_per_rps"] == 0.19 and record["measured"]
    assert record["chosen_rps"] == 450.0 and record["note"] == ""  # (88 - 2) / 0.19 = 452.6
    assert record["expected_cpu"] == 87.5
    assert "0.19 % per req/s; hold rate 450 req/s" in scenario2.calibration_line(record)


@pytest.mark.parametrize("served, points, reason", [
    (None, [(1010.0, 40.0)], "reported no whole second"),
    ((200.0, 1007.0, 1015.0), [], "no CPU sample"),
    ((200.0, 1007.0, 1015.0), [(1020.0, 40.0)], "no CPU sample"),  # samples only after the window
    ((60.0, 1007.0, 1015.0), [(1010.0, 40.0)], "served 60 of 200"),
])
def test_a_calibration_that_cannot_measure_falls_back_to_the_fixed_rate_and_says_why(
    served: tuple[float, float, float] | None, points: list[tuple[float, float]], reason: str,
) -> None:
    record = scenario2.calibration_record(asked=200.0, served=served, points=points, load_start=1000.0)
    assert record["chosen_rps"] == scenario2.FALLBACK_RPS and not record["measured"]
    assert reason in record["note"] and "the fixed 400 req/s" in record["note"]
    assert reason in scenario2.calibration_line(record)


def test_the_options_have_no_hold_rate_until_one_is_chosen_and_the_memory_stress_follows_it() -> None:
    opt = scenario2.Scenario2Options()
    assert opt.rps is None
    with pytest.raises(ValueError, match="no hold rate"):
        opt.memory_after()
    assert dataclasses.replace(opt, rps=640.0).memory_after() == 100.0
    assert dataclasses.replace(opt, rps=150.0).memory_after() == 75.0
    assert scenario2.parse_scenario_args([]).rps is None and scenario2.parse_scenario_args(["--rps", "300"]).rps == 300.0


class _FakeGenerator(scenario2.GeneratorRun):
    """A generator that prints its seconds (100 req/s each) and summary at start, as loadgen.py would."""

    def __init__(self, name: str, ts0: float) -> None:
        super().__init__(name)
        self.ts0 = ts0

    def start(self) -> _FakeGenerator:
        lines = calibration_lines(self.ts0, [30, 60, 90] + [100] * 15)
        for line in lines:
            self.take(json.dumps(line))
        self.take(json.dumps({"summary": {"target_rps": 100.0, "planned": 1680, "sent": 1680, "ok": 1680, "failed": 0,
                                          "missed": 0, "hold_achieved_rps": 100.0, "addresses": {}, "errors": {}}}))
        return self

    def finish(self, *, timeout: float, stop: bool = False) -> None:
        pass


def fake_calibration_lab(monkeypatch: pytest.MonkeyPatch, sink_points: list[tuple[float, float]] | None,
                         ) -> tuple[list[scenario2.Scenario2Options], list[dict[str, str]]]:
    """scenario2 with a fixed clock (1000 s), one replica, fake generators and a fake sink
    (None: the sink refuses connections). The options the generators were made with, the sink's queries."""
    made: list[scenario2.Scenario2Options] = []
    queries: list[dict[str, str]] = []
    monkeypatch.setattr(scenario2, "time", types.SimpleNamespace(time=lambda: 1000.0))
    monkeypatch.setattr(scenario2, "running_replicas",
                        lambda client: [{"Status": {"ContainerStatus": {"ContainerID": "c" * 64}}}])

    def generators(opt: scenario2.Scenario2Options, lab: labinfo.Lab) -> list[scenario2.GeneratorRun]:
        made.append(opt)
        return [_FakeGenerator("gen-1", 1000.2), _FakeGenerator("gen-2", 1000.5)]

    monkeypatch.setattr(scenario2, "scenario_generators", generators)

    def get(url: str, *, timeout: float, params: dict[str, str]) -> types.SimpleNamespace:
        queries.append(params)
        if sink_points is None:
            raise requests.ConnectionError("connection refused")
        text = json.dumps({"metric": {"container_id": "c" * 64}, "values": [v for _, v in sink_points],
                           "timestamps": [int(t * 1000) for t, _ in sink_points]})
        return types.SimpleNamespace(text=text, raise_for_status=lambda: None)

    monkeypatch.setattr("labkit.sink.requests.get", get)
    return made, queries


def test_the_calibration_runs_a_short_load_without_memory_stress_and_holds_the_rate_its_cpu_cost_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # idle 2 % before the load (and 30 % before that: the previous load is not idle), 40 % over the
    # hold, back to 2 % 3 s after it: 0.19 % per req/s
    points = [(980.0 + i, 30.0) for i in range(10)] + [(990.0 + i, 2.0) for i in range(10)]
    points += [(1001.0 + i, 40.0) for i in range(18)] + [(1019.0 + i, 2.0) for i in range(5)]
    made, queries = fake_calibration_lab(monkeypatch, points)
    said: list[str] = []
    lab = labinfo.Lab(host_socket="unix:///nonexistent.sock", node_sockets={})
    record = scenario2.calibrate(lab, None, scenario2.Scenario2Options(), say=said.append)
    [opt] = made
    assert (opt.rps, opt.ramp, opt.hold, opt.ramp_down) == (200.0, 3.0, 15.0, 0.0)
    assert record["served_rps"] == 200.0 and record["window"] == [1006.5, 1018.2] and record["cpu_samples"] == 11
    assert (record["cpu_median"], record["cpu_idle"], record["cpu_per_rps"]) == (40.0, 2.0, 0.19)
    assert record["chosen_rps"] == 450.0 and record["measured"] and record["container_id"] == "c" * 12
    assert 'container_id="' + "c" * 64 + '"' in queries[0]["match[]"] and float(queries[0]["start"]) == 990.0
    assert "calibrating the hold rate" in said[0] and "hold rate 450 req/s" in said[-1]


def test_a_calibration_whose_sink_does_not_answer_holds_the_fixed_rate_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_calibration_lab(monkeypatch, None)
    said: list[str] = []
    lab = labinfo.Lab(host_socket="unix:///nonexistent.sock", node_sockets={})
    record = scenario2.calibrate(lab, None, scenario2.Scenario2Options(), say=said.append)
    assert record["chosen_rps"] == 400.0 and not record["measured"] and record["served_rps"] == 200.0
    assert "no CPU sample" in record["note"]
    assert any("connection refused" in line for line in said) and "the fixed 400 req/s" in said[-1]
