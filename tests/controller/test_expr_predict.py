"""predict() and predict_se(): the trend of a container's samples, checked when the file loads,
never raising when the rule runs (docs/rules.md, "Trends")."""
from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from controller.model import ContainerMetrics
from controller.rules import ContainerEnv, ExprError, compile_condition
from controller.rules.expr import MAX_TREND_WINDOW, trend_samples

THRESHOLDS = {"mem_high": 80.0, "cpu_high": 75.0, "net_low": 35.0, "trend_from": 50.0}


def sample(ts: float, mem: float = 40.0, cpu: float = 10.0) -> ContainerMetrics:
    return ContainerMetrics("node-1", "web", "c1", "task", ts, cpu=cpu, mem=mem, mem_mb=64.0, net=1.0, net_rx=0.0, net_tx=0.0)


def climb(n: int = 31, *, start: float = 40.0, per_s: float = 1.0, t0: float = 1000.0, dt: float = 1.0) -> list[ContainerMetrics]:
    return [sample(t0 + i * dt, mem=start + per_s * i * dt) for i in range(n)]


def check(text: str) -> None:
    compile_condition(text, scope="container", thresholds=THRESHOLDS)


def holds(text: str, history: Sequence[ContainerMetrics]) -> bool:
    condition = compile_condition(text, scope="container", thresholds=THRESHOLDS)
    return condition.holds(ContainerEnv(history[-1], history, None, 1))


def explain(text: str, history: Sequence[ContainerMetrics]) -> str:
    condition = compile_condition(text, scope="container", thresholds=THRESHOLDS)
    return condition.explain(ContainerEnv(history[-1], history, None, 1))


def test_predict_extrapolates_the_line_from_the_newest_sample() -> None:
    history = climb()  # 40 % at t0, +1 % a second: 70 % at the newest sample
    assert explain("predict(mem, 10s, 20s) > 0", history) == "predict(mem, 10s, 20s)=80"
    assert holds("predict(mem, 10s, 20s) > 79.9", history) and not holds("predict(mem, 10s, 20s) > 80.1", history)
    assert holds("predict(mem, 0s, 20s) == mem", history)


def test_durations_take_every_unit_of_the_rule_file() -> None:
    history = climb(n=200, per_s=0.1)
    assert explain("predict(mem, 500ms, 1m) > 0", history) == "predict(mem, 500ms, 1m)=59.95"
    assert explain("predict(mem, 2 s, 90s) > 0", history) == "predict(mem, 2 s, 90s)=60.1"


def test_the_window_is_left_open_and_reaches_back_from_the_newest_sample() -> None:
    # An outlier exactly one window before the newest sample is left out (as PromQL's ranges do).
    history = [sample(990.0, mem=0.0)] + [sample(1000.0 + i, mem=50.0) for i in range(11)]
    assert explain("predict(mem, 10s, 20s) > 0", history) == "predict(mem, 10s, 20s)=50"


@pytest.mark.parametrize("history", [
    [sample(1000.0), sample(1010.0)],  # two samples: no line
    [sample(1000.0 + i) for i in range(5)],  # five samples over 4 s: under half of a 20 s window
])
def test_too_few_samples_make_the_figure_missing_and_the_condition_false(history: list[ContainerMetrics]) -> None:
    assert not holds("predict(mem, 10s, 20s) > 0", history)
    assert not holds("not predict(mem, 10s, 20s) > 1000", history)
    assert "predict(mem, 10s, 20s)=n/a" in explain("predict(mem, 10s, 20s) > 0", history)


def test_a_nan_or_infinite_sample_in_the_window_makes_the_trend_missing() -> None:
    for bad in (math.nan, math.inf):
        history = climb()
        history[-5] = sample(history[-5].ts, mem=bad)
        assert not holds("predict(mem, 10s, 20s) > 0", history)
        assert not holds("not predict(mem, 10s, 20s) > 1000", history)
        assert not holds("predict_se(mem, 10s, 20s) >= 0", history)


def test_an_overflowing_trend_is_missing_not_an_error() -> None:
    history = [sample(1000.0 + i, mem=1e307 * i) for i in range(10)]
    assert not holds("predict(mem, 300s, 10s) > 0", history)


def test_predict_se_is_zero_on_a_straight_line_and_grows_with_the_scatter() -> None:
    assert holds("predict_se(mem, 10s, 30s) < 0.000001", climb())
    noisy = [sample(1000.0 + i, mem=60.0 + (15.0 if i % 2 else -15.0)) for i in range(31)]
    assert holds("predict_se(mem, 10s, 30s) > 3", noisy)
    # the line minus its standard errors: a confident climb holds, noise around 60 % does not
    assert holds("predict(mem, 10s, 30s) - 3 * predict_se(mem, 10s, 30s) > mem_high - 1", climb())
    assert not holds("predict(mem, 10s, 30s) - 3 * predict_se(mem, 10s, 30s) > mem_high", noisy)


def test_without_a_window_it_is_three_times_the_horizon_and_at_least_ten_seconds() -> None:
    history = climb(n=60)
    assert compile_condition("predict(mem, 10s) > 0", scope="container", thresholds=THRESHOLDS).window == trend_samples(30.0)
    assert compile_condition("predict(mem, 1s) > 0", scope="container", thresholds=THRESHOLDS).window == trend_samples(10.0)
    assert compile_condition("predict(mem, 5m) > 0", scope="container", thresholds=THRESHOLDS).window == \
        trend_samples(MAX_TREND_WINDOW)
    assert explain("predict(mem, 10s) > 0", history) == "predict(mem, 10s)=109"


def test_a_short_window_draws_its_line_through_sub_second_reads_and_never_through_one_a_second() -> None:
    # The exporter reads a fast memory climb every 0.25 s (exporter/follow.py): four reads span 0.75 s,
    # over half of a 1.4 s window. Samples a second apart put at most two in it: no line.
    reads = climb(n=8, start=20.0, per_s=12.0, dt=0.25)
    assert explain("predict(mem, 10s, 1400ms) > 0", reads[-4:]) == "predict(mem, 10s, 1400ms)=161"  # 41 % + 10 s x 12 %/s
    assert explain("predict(mem, 10s, 1400ms) > 0", climb(n=10, per_s=12.0)) == "predict(mem, 10s, 1400ms)=n/a"
    # the engine hands a short window enough of the newest samples to hold a second of such reads
    assert trend_samples(1.4) >= 5 and trend_samples(1.0) >= 5


def test_the_condition_asks_the_engine_for_two_samples_a_second_of_the_longest_window() -> None:
    condition = compile_condition("avg(cpu, 3) > 1 and predict(mem, 10s, 30s) > 1 and predict(cpu, 5s, 5s) > 1",
                                  scope="container", thresholds=THRESHOLDS)
    assert condition.window == 61


@pytest.mark.parametrize(("text", "message"), [
    ("predict(mem, 10) > 1", "the horizon must be a duration such as 10s"),
    ("predict(mem, 10s, 30) > 1", "the window must be a duration such as 10s"),
    ("predict(mem, -5s) > 1", "the horizon must be a duration"),
    ("predict(mem, 301s) > 1", "the horizon 301s is out of range (0 s to 300 s)"),
    ("predict(mem, 10s, 500ms) > 1", "the window 500ms is out of range (1 s to 120 s)"),
    ("predict(mem, 10s, 3m) > 1", "the window 3m is out of range"),
    ("predict(mem) > 1", "takes a metric, a horizon and optionally a window"),
    ("predict(mem, 1s, 5s, 5s) > 1", "takes a metric, a horizon and optionally a window"),
    ("predict(node_mem, 10s) > 1", "takes a container metric"),
    ("predict(mem_high, 10s) > 1", "takes a container metric"),
    ("predict(mem, horizon=10s) > 1", "takes no keyword arguments"),
    ("predict(mem, cpu_high) > 1", "the horizon must be a duration"),
    ("cpu > 10s", "a duration (10s) is allowed only as the horizon or window"),
    ("avg(cpu, 3s) > 1", "the window is a number of samples (e.g. avg(cpu, 3)), not a duration"),
    ("predict > 1", "predict is a function: call it"),
    ("predict(mem, 10s)", "condition must be a comparison"),
    ("forecast(mem, 10s) > 1", "functions are avg, max, min, sum, predict, predict_se"),
])
def test_mistakes_are_refused_when_the_file_is_loaded(text: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        check(text)
    assert any(message in error for error in caught.value.errors), caught.value.errors


def test_a_trend_needs_a_container_history_so_service_rules_refuse_it() -> None:
    with pytest.raises(ExprError, match="works in container-scope rules only"):
        compile_condition("predict(mem, 10s) > 1", scope="service", thresholds=THRESHOLDS)


def test_a_number_glued_to_other_letters_is_still_a_syntax_error() -> None:
    for text in ("cpu > 10sec", "cpu > 10x", "predict(mem, 1e3s) > 1"):
        with pytest.raises(ExprError, match="syntax error"):
            check(text)


class CountingHistory(Sequence[ContainerMetrics]):
    """A history that counts how often the engine walks it."""

    def __init__(self, samples: list[ContainerMetrics]) -> None:
        self.samples, self.reads = samples, 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        self.reads += 1
        return self.samples[index]

    def __len__(self) -> int:
        return len(self.samples)


def test_a_false_guard_first_spares_the_history_and_the_fit() -> None:
    built: list[int] = []
    condition = compile_condition("mem > trend_from and predict(mem, 10s, 30s) > mem_high", scope="container",
                                  thresholds=THRESHOLDS)
    low = climb(start=10.0)  # 40 % at the newest sample: under trend_from
    assert not condition.holds(ContainerEnv(low[-1], lambda: built.append(1) or low, None, 1))
    assert built == []
    high = climb(start=60.0)
    assert condition.holds(ContainerEnv(high[-1], lambda: built.append(1) or high, None, 1)) and built == [1]


def test_predict_and_predict_se_share_one_fit_per_container_and_call() -> None:
    history = CountingHistory(climb())
    condition = compile_condition("predict(mem, 10s, 30s) - 2 * predict_se(mem, 10s, 30s) > 1 "
                                  "and predict(mem, 5s, 30s) > 1", scope="container", thresholds=THRESHOLDS)
    env = ContainerEnv(history.samples[-1], history, None, 1)
    assert condition.holds(env)
    reads = history.reads
    assert condition.holds(env) and history.reads == reads  # the second call reuses the env's fit
    assert env.fits is not None and list(env.fits) == [("mem", 30.0)]


def test_the_short_cut_keeps_a_missing_figure_anywhere_false() -> None:
    history = [sample(1000.0 + i, mem=60.0) for i in range(3)]  # too few samples for a 20 s window
    assert not holds("mem > 50 and predict(mem, 10s, 20s) > 1", history)
    assert not holds("predict(mem, 10s, 20s) > 1 or mem > 50", history)  # `or` still looks at every part
    assert not holds("not (mem > 70 and predict(mem, 10s, 20s) > 1)", history)  # under `not`: no short cut
