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
