"""The leak runs' arithmetic and requests, without a lab: labkit/leak.py, scenario3.py, fastleak.py."""
from __future__ import annotations

import json

import pytest

from labkit import fastleak, leak, scenario3, sink

T = 1_800_000_000.0


def climb(start: float = 40.0, per_s: float = 1.0, n: int = 30, t0: float = T) -> list[tuple[float, float]]:
    return [(t0 + i, start + per_s * i) for i in range(n)]


def test_victoria_metrics_export_lines_become_sorted_points() -> None:
    text = "\n".join(json.dumps({"metric": {"__name__": "x"}, "values": values, "timestamps": stamps})
                     for values, stamps in (([2.0, 1.0], [2000, 1000]), ([3.0], [3000])))
    assert sink.parse_points(text + "\n\n") == [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]


def test_an_observed_crossing_is_interpolated_between_the_samples_around_it() -> None:
    points = climb(per_s=3.0)  # 40, 43, ... 79 at +13 s, 82 at +14 s
    assert leak.crossing(points, 80.0, after=T) == (pytest.approx(T + 13 + 1 / 3), True)


def test_a_container_stopped_before_the_level_gets_its_crossing_extrapolated_from_the_climb() -> None:
    points = [(T - 10 + i, 40.0) for i in range(10)] + climb(n=25)  # flat, then +1 %/s up to 64 %
    t, observed = leak.crossing(points, 80.0, after=T)
    assert not observed and t == pytest.approx(T + 40.0)


def test_a_plateau_after_the_climb_does_not_flatten_the_extrapolated_crossing() -> None:
    # The stress stopped at 64 % (its SIGTERM) and the container lived on for 20 s at that level.
    points = climb(n=25) + [(T + 25 + i, 64.0) for i in range(20)]
    t, observed = leak.crossing(points, 80.0, after=T)
    assert not observed and t == pytest.approx(T + 40.0)


def test_no_samples_after_the_start_give_no_crossing() -> None:
    assert leak.crossing(climb(), 80.0, after=T + 100) == (None, False)


def test_the_predicted_crossing_is_the_rules_line_at_its_decision() -> None:
    points = [(T - 30 + i, 40.0) for i in range(30)] + climb(n=30)
    # At T + 25 the 30 s window holds 5 flat samples and 25 climbing ones: the line is a little flatter.
    predicted = leak.predicted_crossing(points, 80.0, at=T + 25, window=30.0)
    assert predicted is not None and T + 40 < predicted < T + 42
    assert leak.predicted_crossing(points, 80.0, at=T + 25, window=5.0) == pytest.approx(T + 40.0)


def test_docker_times_are_read_to_the_nanosecond_and_the_zero_time_is_none() -> None:
    assert leak.parse_docker_time("2027-01-15T08:00:00.123456789Z") == pytest.approx(1800000000.123456789)
    assert leak.parse_docker_time("2027-01-15T09:00:00.5+01:00") == pytest.approx(1800000000.5)
    assert leak.parse_docker_time("0001-01-01T00:00:00Z") is None
    assert leak.parse_docker_time("yesterday") is None


def test_a_timeline_gives_the_lead_time_and_the_oom_kill() -> None:
    action = {"t0": T + 24.0, "t3": T + 25.0, "t5": T + 27.0, "t6": T + 30.0}
    points = climb(n=31)
    t = leak.timeline(action, points, metric="mem", level=80.0, started=T, window=30.0,
                      fate={"oom": True, "finished_at": T + 31.0})
    assert t["t_cross"] == pytest.approx(T + 40.0) and not t["t_cross_observed"]
    assert t["lead_time"] == pytest.approx(13.0) and t["oom"] and t["oom_at"] == T + 31.0
    assert t["peak"] == 70.0 and not t["limit_reached"]
    none = leak.timeline(None, points, metric="mem", level=80.0, started=T, window=30.0, fate={"known": False})
    assert none["lead_time"] is None and none["predicted_crossing"] is None and not none["oom"]


def test_scenario_3_asks_the_stress_app_for_a_leak_from_40_percent_or_a_cpu_ramp() -> None:
    s = scenario3.Settings()
    assert scenario3.stress_path(s, limit_mb=512.0, in_use_mb=36.0) == \
        "/stress/leak?rate=5.120&start=168.8&duration=180"
    cpu = scenario3.Settings(metric="cpu")
    assert scenario3.stress_path(cpu, limit_mb=512.0, in_use_mb=36.0) == \
        "/stress/cpu?start=40&target=100&ramp=60&duration=60"
    assert (s.threshold, cpu.threshold, scenario3.Settings(level=90.0).threshold) == (80.0, 75.0, 90.0)


def run(variant: str, lead: float | None) -> dict:
    return {"variant": variant, "leak": {"lead_time": lead}}


def test_the_lead_goal_counts_only_predictive_runs_with_lead_time_at_least_zero() -> None:
    runs = [run("predictive", 3.0), run("predictive", 0.0), run("predictive", -0.5), run("predictive", 4.0),
            run("predictive", 2.0), run("threshold", -3.0)]
    assert scenario3.lead_goal(runs) == (True, "lead time >= 0 in 4 of 5 predictive runs")
    runs[1] = run("predictive", None)
    assert scenario3.lead_goal(runs) == (False, "lead time >= 0 in 3 of 5 predictive runs")
    assert scenario3.lead_goal([run("threshold", 1.0)])[0] is False


def test_the_firing_rules_window_is_read_from_its_reason() -> None:
    assert fastleak.rule_window("mem > trend_from and predict(mem, 10s, 5s) - 8 * predict_se(mem, 10s, 5s) > 100", 30.0) == 5.0
    assert fastleak.rule_window("predict(cpu, 10s, 2m) > 75", 30.0) == 120.0
    assert fastleak.rule_window("(cpu > cpu_high or mem > mem_high) and net < net_low", 30.0) == 30.0


def test_the_users_service_is_start_first_opted_in_with_a_healthcheck_and_a_256_mb_limit() -> None:
    spec = fastleak.service_spec("net-id", fastleak.Settings())
    template = spec["task_template"]
    assert template["Resources"]["Limits"]["MemoryBytes"] == 256 << 20
    assert template["ContainerSpec"]["Healthcheck"]["Interval"] == 1_000_000_000
    assert spec["update_config"]["Order"] == "start-first" and spec["labels"]["swarmguard.enable"] == "true"
    assert template["Networks"] == [{"Target": "net-id", "Aliases": ["sgi-fastleak"]}]
    compile(fastleak.SERVER, "server", "exec")  # the one-liner is valid Python


@pytest.mark.parametrize(("result", "failures", "oom", "ok"), [
    ("success", 0, False, True), ("success", 1, False, False), ("success", 0, True, False), ("timeout", 0, False, False),
])
def test_a_fast_leak_run_passes_only_when_moved_cleanly(result: str, failures: int, oom: bool, ok: bool) -> None:
    record = {"actions": [{"result": result}], "probe": {"failures": failures}, "leak": {"oom": oom}}
    assert fastleak.passed(record) is ok
    assert fastleak.passed({"actions": [], "probe": {"failures": 0}, "leak": {"oom": False}}) is False


def test_the_noisy_loads_are_60_plus_minus_15_percent_of_the_limit() -> None:
    from labkit import noise

    s = noise.Settings()
    assert noise.stress_path("cpu", s, limit_mb=512.0, in_use_mb=36.0) == \
        "/stress/cpu?target=60&noise=15&duration=600&step=1&seed=1"
    assert noise.stress_path("mem", s, limit_mb=512.0, in_use_mb=36.0) == \
        "/stress/memory?target=271.2&noise=76.8&duration=600&step=1&seed=1"


def test_decisions_are_counted_per_rule_on_the_noisy_services_only() -> None:
    from labkit import noise

    records = [{"service": "sgi-noise-cpu", "rule": "migrate-before-cpu-threshold"},
               {"service": "sgi-noise-mem", "rule": "migrate-on-container-problem"},
               {"service": "swarmguard_web-stress", "rule": "migrate-before-oom"}]
    assert noise.count(records, list(noise.NAMES.values())) == {"migrate-before-cpu-threshold": 1,
                                                                "migrate-on-container-problem": 1}
