"""The condition language: what it computes, in both scopes, and how it treats missing data."""
from __future__ import annotations

import pytest

from controller.model import ContainerMetrics, NodeMetrics
from controller.rules import ContainerEnv, ExprError, ServiceEnv, compile_condition

THRESHOLDS = {"cpu_high": 75.0, "mem_high": 80.0, "net_low": 35.0, "net_high": 65.0}


def sample(ts: float = 100.0, **figures: float) -> ContainerMetrics:
    values = {"cpu": 10.0, "mem": 10.0, "mem_mb": 64.0, "net": 10.0, "net_rx": 1.0, "net_tx": 1.0}
    values.update(figures)
    return ContainerMetrics("node-1", "web", f"c-{ts}", "task", ts, **values)


def container(text: str, *history: ContainerMetrics, node: NodeMetrics | None = None,
              replicas: int | None = 2) -> bool:
    condition = compile_condition(text, scope="container", thresholds=THRESHOLDS)
    return condition.holds(ContainerEnv(history[-1], history, node, replicas))


def service(text: str, *samples: ContainerMetrics, replicas: int | None = 3) -> bool:
    condition = compile_condition(text, scope="service", thresholds=THRESHOLDS)
    return condition.holds(ServiceEnv(samples, replicas))


@pytest.mark.parametrize(("cpu", "mem", "net", "expected"), [
    (90, 10, 5, True), (10, 90, 5, True), (90, 90, 5, True), (90, 90, 50, False), (10, 10, 5, False),
    (75, 10, 5, False),
])
def test_scenario_one_condition_follows_the_spec_truth_table(cpu: float, mem: float, net: float,
                                                             expected: bool) -> None:
    text = "(cpu > cpu_high or mem > mem_high) and net < net_low"
    assert container(text, sample(cpu=cpu, mem=mem, net=net)) is expected


@pytest.mark.parametrize(("cpu", "mem", "net", "expected"), [
    (90, 90, 70, True), (90, 90, 60, False), (90, 70, 70, False), (70, 90, 70, False),
])
def test_scenario_two_condition_follows_the_spec_truth_table(cpu: float, mem: float, net: float,
                                                             expected: bool) -> None:
    text = "cpu > cpu_high and mem > mem_high and net > net_high"
    assert container(text, sample(cpu=cpu, mem=mem, net=net)) is expected


def test_arithmetic_follows_python_precedence_and_unary_minus() -> None:
    s = sample(cpu=10, mem=4)
    assert container("cpu + mem * 2 == 18", s)
    assert container("(cpu + mem) * 2 == 28", s)
    assert container("-cpu + 12 == 2 and +mem == 4", s)
    assert container("cpu / mem == 2.5 and cpu - mem - 1 == 5", s)


def test_chained_comparisons_hold_only_if_every_link_holds() -> None:
    assert container("0 <= cpu < 50 <= mem_mb", sample(cpu=20, mem_mb=64))
    assert not container("0 <= cpu < 50 <= mem_mb", sample(cpu=20, mem_mb=40))
    assert container("1 < 2 != 3", sample())


def test_not_inverts_a_condition() -> None:
    assert container("not cpu > cpu_high", sample(cpu=10))
    assert not container("not (cpu > cpu_high)", sample(cpu=90))


def test_division_by_zero_makes_the_condition_false_even_under_not() -> None:
    assert not container("cpu / mem > 1", sample(cpu=10, mem=0))
    assert not container("not (cpu / mem > 1)", sample(cpu=10, mem=0))


def test_window_functions_use_the_last_n_samples_of_the_container() -> None:
    history = (sample(1, cpu=100), sample(2, cpu=10), sample(3, cpu=20), sample(4, cpu=30))
    assert container("avg(cpu, 3) == 20", *history)
    assert container("max(cpu, 3) == 30 and min(cpu, 3) == 10 and sum(cpu, 2) == 50", *history)
    assert container("max(cpu, 4) == 100", *history)


def test_a_window_longer_than_the_history_uses_what_there_is() -> None:
    assert container("avg(cpu, 5) == 15", sample(1, cpu=10), sample(2, cpu=20))


def test_node_metrics_are_readable_and_missing_or_stale_nodes_make_the_condition_false() -> None:
    node = NodeMetrics("node-1", 100.0, cpu=95.0, mem=50.0, net=1.0)
    assert container("node_cpu > 90 and node_mem == 50", sample(), node=node)
    assert not container("node_cpu > 90", sample(), node=None)
    stale = NodeMetrics("node-1", 100.0, cpu=95.0, mem=50.0, net=1.0, stale=True)
    assert not container("node_cpu > 90", sample(), node=stale)
    assert not container("not node_cpu > 90", sample(), node=None)


def test_replicas_is_the_services_replica_count_and_missing_for_global_services() -> None:
    assert container("replicas == 2", sample(), replicas=2)
    assert not container("replicas >= 0", sample(), replicas=None)


def test_service_aggregates_run_over_the_services_containers() -> None:
    samples = (sample(1, cpu=10, mem=50), sample(2, cpu=20, mem=60), sample(3, cpu=60, mem=10))
    assert service("sum(cpu) == 90 and avg(cpu) == 30 and max(mem) == 60 and min(mem) == 10", *samples)
    assert service("containers == 3 and replicas == 3", *samples)


def test_the_spec_scale_down_formula_compares_total_usage_with_one_replica_fewer() -> None:
    text = "sum(cpu) < cpu_high * (replicas - 1) and sum(mem) < mem_high * (replicas - 1)"
    idle = (sample(1, cpu=20, mem=30), sample(2, cpu=20, mem=30), sample(3, cpu=20, mem=30))
    assert service(text, *idle, replicas=3)  # 60 < 150 and 90 < 160
    busy = (sample(1, cpu=60), sample(2, cpu=60), sample(3, cpu=40))
    assert not service(text, *busy, replicas=3)  # 160 >= 150
    assert not service(text, sample(1, cpu=0, mem=0), replicas=1)  # never below one replica


def test_aggregates_of_no_containers_make_the_condition_false() -> None:
    assert not service("avg(cpu) < 10", replicas=2)
    assert service("containers == 0", replicas=2)


def test_explain_lists_each_figure_the_condition_used() -> None:
    condition = compile_condition("avg(cpu, 2) > cpu_high and net < net_low", scope="container",
                                  thresholds=THRESHOLDS)
    history = (sample(1, cpu=80, net=5), sample(2, cpu=90, net=5))
    env = ContainerEnv(history[-1], history, None, 1)
    assert condition.explain(env) == "avg(cpu, 2)=85, cpu_high=75, net=5, net_low=35"


def test_thresholds_are_folded_into_constants_at_compile_time() -> None:
    thresholds = dict(THRESHOLDS)
    condition = compile_condition("cpu > cpu_high", scope="container", thresholds=thresholds)
    thresholds["cpu_high"] = 0.0
    env = ContainerEnv(sample(cpu=50), (sample(cpu=50),), None, 1)
    assert not condition.holds(env)


@pytest.mark.parametrize(("text", "message"), [
    ("cpu", "must be a comparison"),
    ("cpu > 1 and mem", "'and' needs a comparison, got a number"),
    ("(cpu > 1) + 2 > 0", "'+' needs a number, got a comparison"),
    ("avg(cpu) > 1", "takes a metric and a window of samples"),
    ("avg(cpu, 0) > 1", "window must be a whole number of samples from 1 to 60"),
    ("avg(cpu, 2.5) > 1", "window must be a whole number"),
    ("avg(node_cpu, 2) > 1", "takes a container metric"),
    ("avg > 1", "avg is a function"),
    ("containers > 1", "unknown name 'containers'"),
    ("cpu / 0 > 1", "division by a constant zero"),
    ("cpu > 1e999", "out of range"),
    ("cpu > True", "only numbers are"),
    ("", "condition is empty"),
    ("cpu >", "syntax error"),
])
def test_mistakes_in_container_conditions_are_explained(text: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_condition(text, scope="container", thresholds=THRESHOLDS)
    assert any(message in error for error in caught.value.errors), caught.value.errors


@pytest.mark.parametrize(("text", "message"), [
    ("cpu > 1", "needs an aggregate in a service-scope rule"),
    ("avg(cpu, 3) > 1", "takes one metric"),
    ("node_cpu > 1", "unknown name 'node_cpu'"),
])
def test_mistakes_in_service_conditions_are_explained(text: str, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_condition(text, scope="service", thresholds=THRESHOLDS)
    assert any(message in error for error in caught.value.errors), caught.value.errors


def test_every_unknown_name_is_reported_not_just_the_first() -> None:
    with pytest.raises(ExprError) as caught:
        compile_condition("cpuu > 1 and memm > 2", scope="container", thresholds=THRESHOLDS)
    assert len(caught.value.errors) == 2


# -- NaN, infinities and overflow: a figure that is not a finite number is a missing value ---------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("value", [NAN, INF, -INF])
@pytest.mark.parametrize("text", [
    "cpu > 50", "cpu < 50", "cpu == cpu", "cpu != cpu", "not cpu > 50", "not cpu < 50", "not (cpu == cpu)",
    "cpu > 50 or mem > 1", "mem > 1 or cpu > 50", "not (mem > 100 and cpu > 50)", "not (cpu > 50 and mem > 100)",
    "0 <= cpu < 100", "mem < 0 < cpu", "not 0 < mem < cpu", "cpu * 0 == 0", "cpu - cpu == 0", "-cpu < 0",
    "avg(cpu, 2) > 0", "not max(cpu, 2) > 0", "min(cpu, 2) < 1e300",
])
def test_a_non_finite_metric_anywhere_makes_the_whole_condition_false(value: float, text: str) -> None:
    history = (sample(1, cpu=10.0), sample(2, cpu=value, mem=5.0))
    assert container(text, *history) is False


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_a_non_finite_node_metric_or_aggregate_input_makes_the_condition_false(value: float) -> None:
    node = NodeMetrics("node-1", 100.0, cpu=value, mem=50.0, net=1.0)
    assert not container("not node_cpu > 90", sample(), node=node)
    assert not service("not sum(cpu) > 10", sample(1, cpu=5), sample(2, cpu=value))
    assert not service("containers == 2 or avg(mem) > 0", sample(1, mem=value), sample(2))


def test_without_non_finite_figures_or_and_not_behave_as_usual() -> None:
    assert container("cpu > 50 or mem > 1", sample(cpu=10, mem=5))
    assert container("not (cpu > 50 and mem > 100)", sample(cpu=10, mem=5))


def test_explain_shows_a_non_finite_figure_as_not_available() -> None:
    condition = compile_condition("cpu > cpu_high or mem / 0.5 > 1", scope="container", thresholds=THRESHOLDS)
    env = ContainerEnv(sample(cpu=NAN, mem=1e308), (sample(cpu=NAN, mem=1e308),), None, 1)
    assert condition.holds(env) is False
    assert condition.explain(env) == "cpu=n/a, cpu_high=75, mem=1e+308"


@pytest.mark.parametrize("text", ["cpu * 1e308 > 0", "cpu * 1e308 * 10 > 0", "-cpu * 1e308 < 0",
                                  "cpu + 1e308 + 1e308 > 0", "cpu / 1e-308 > 0", "not cpu * 1e308 > 0",
                                  "sum(mem, 2) > 0", "avg(mem, 2) - avg(mem, 2) * 2 < 0 and cpu * 1e308 > 0"])
def test_arithmetic_that_overflows_at_run_time_is_a_missing_value(text: str) -> None:
    history = (sample(1, mem=1.7e308), sample(2, cpu=10.0, mem=1.7e308))
    assert container(text, *history) is False


def test_an_average_whose_sum_overflows_is_still_the_average() -> None:
    history = (sample(1, mem=1.5e308), sample(2, mem=1.5e308))
    assert container("avg(mem, 2) == 1.5e308", *history)
    assert service("avg(mem) == 1.5e308", *history)


def test_division_by_a_figure_that_is_zero_is_a_missing_value_even_under_not_and_or() -> None:
    assert not container("cpu / mem > 1 or cpu > 0", sample(cpu=10, mem=0))
    assert not container("not (cpu / (mem - mem) > 1)", sample(cpu=10, mem=3))


@pytest.mark.parametrize("value", [None, "12", True, 10**400, [1.0]])
def test_a_metric_that_is_not_a_number_is_a_missing_value_not_an_exception(value: object) -> None:
    s = sample(cpu=10.0)._replace(cpu=value)  # type: ignore[arg-type]  # not a number, on purpose
    assert container("cpu > 1 or mem > 1", s) is False
    assert container("avg(cpu, 1) > 1", s) is False


def test_a_huge_replica_count_is_still_a_number() -> None:
    assert container("replicas > 1e18", sample(), replicas=2**64)


@pytest.mark.parametrize(("thresholds", "message"), [
    ({"limit": NAN}, "threshold 'limit' is not a finite number"),
    ({"limit": INF}, "threshold 'limit' is not a finite number"),
    ({"limit": 10**400}, "threshold 'limit' is not a finite number"),
    ({"limit": 1e308, "more": 1e308}, "limit + more is out of range"),
])
def test_thresholds_that_are_not_finite_or_overflow_together_are_refused(thresholds: dict[str, float],
                                                                         message: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_condition("cpu > limit + more" if "more" in thresholds else "cpu > limit", scope="container",
                          thresholds=thresholds)
    assert any(message in error for error in caught.value.errors), caught.value.errors


def test_a_huge_integer_literal_is_refused_like_1e309() -> None:
    for text in ("cpu > " + "9" * 400, "cpu > 1e309", "cpu > -1e309"):
        with pytest.raises(ExprError, match="out of range"):
            compile_condition(text, scope="container", thresholds=THRESHOLDS)
