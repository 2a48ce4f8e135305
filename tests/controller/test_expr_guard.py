"""Condition.guard (the sample-only leading parts of a container condition, compiled over the sample) never
changes a verdict: where it says false, `holds` says false, and the engine decides the same with or
without it. Checked over generated conditions, samples and sample sequences."""
from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, NodeMetrics, ServiceInfo, Snapshot
from controller.rules import ContainerEnv, RuleSet, compile_condition, load_rules
from controller.rules.expr import Condition, ExprError

THRESHOLDS = {"high": 75.0, "low": 35.0, "zero": 0.0}
METRICS = ("cpu", "mem", "mem_mb", "net", "net_rx", "net_tx")
OTHERS = ("node_cpu", "replicas", "max(cpu, 3)", "avg(mem, 2)", "predict(mem, 10s, 5s)")

figure = st.one_of(st.floats(-200, 200), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 75.0]),
                   st.integers(-200, 200))
leaf_sample = st.one_of(st.sampled_from(METRICS + tuple(THRESHOLDS)), st.integers(-100, 100).map(str))
leaf_any = st.one_of(leaf_sample, st.sampled_from(OTHERS))


def numbers(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(leaf, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from("+-*/"), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda x: f"(-{x})")), max_leaves=4)


def conditions(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    compare = st.one_of(
        st.tuples(numbers(leaf), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numbers(leaf)).map(" ".join),
        st.tuples(numbers(leaf), numbers(leaf), numbers(leaf)).map(lambda t: f"{t[0]} < {t[1]} <= {t[2]}"))
    return st.recursive(compare, lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " and ".join(xs) + ")"),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + " or ".join(xs) + ")"),
        inner.map(lambda x: f"not ({x})")), max_leaves=5)


def top_level(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A condition as rules write them: often a top-level `and` whose first parts are cheap."""
    return st.one_of(conditions(leaf), st.lists(conditions(leaf), min_size=2, max_size=4).map(" and ".join))


def sample_of(values: list[float | int], ts: float = 100.0) -> ContainerMetrics:
    return ContainerMetrics("n1", "web", "c1", "t1", ts, *values)  # type: ignore[arg-type]


samples = st.lists(figure, min_size=6, max_size=6)


def compiled(text: str) -> Condition | None:
    try:
        return compile_condition(text, scope="container", thresholds=THRESHOLDS)
    except ExprError:
        return None


@settings(max_examples=200, deadline=None)
@given(text=top_level(leaf_any), values=samples, node_cpu=figure, replicas=st.one_of(st.none(), st.integers(0, 5)))
def test_a_false_guard_means_the_condition_is_false(text: str, values: list[float | int], node_cpu: float,
                                                    replicas: int | None) -> None:
    condition = compiled(text)
    if condition is None or condition.guard is None:
        return
    sample = sample_of(values)
    history = (sample_of(values, 98.0), sample_of(values, 99.0), sample)
    env = ContainerEnv(sample, history, NodeMetrics("n1", 100.0, float(node_cpu), 10.0, 10.0), replicas)
    if not condition.guard(sample):
        assert condition.holds(env) is False


@settings(max_examples=200, deadline=None)
@given(text=top_level(leaf_sample), values=samples)
def test_a_condition_on_the_sample_alone_has_a_guard_that_is_its_verdict(text: str, values: list[float | int]) -> None:
    condition = compiled(text)
    if condition is None:
        return
    assert condition.guard is not None
    sample = sample_of(values)
    assert condition.guard(sample) == condition.holds(ContainerEnv(sample, (sample,), None, 3))


def test_the_guard_is_the_leading_sample_only_parts_of_a_top_level_and() -> None:
    def guarded(text: str) -> bool:
        condition = compile_condition(text, scope="container", thresholds=THRESHOLDS)
        return condition.guard is not None

    assert guarded("mem > high and net < low and predict(mem, 10s, 5s) > 100")
    assert guarded("(cpu > high or mem > high) and net < low")
    assert not guarded("node_cpu > 50 and cpu > high")  # the first part reads the node: no guard
    assert not guarded("replicas > 1 and cpu > high")
    assert not guarded("cpu > high or node_cpu > 50")  # a top-level `or` that reads more than the sample
    assert compile_condition("sum(cpu) > 1", scope="service", thresholds={}).guard is None


def test_a_guard_stops_before_the_first_part_it_cannot_read() -> None:
    condition = compile_condition("cpu > high and node_cpu > 50 and net < low", scope="container",
                                  thresholds=THRESHOLDS)
    assert condition.guard is not None
    calm_net_high = sample_of([90.0, 0.0, 0.0, 90.0, 0.0, 0.0])  # net < low is false, but it is after node_cpu
    assert condition.guard(calm_net_high) is True
    assert condition.guard(sample_of([10.0, 0.0, 0.0, 0.0, 0.0, 0.0])) is False


# --- the engine, with and without guards ----------------------------------------------------------

RULES = """
thresholds: {{high: 75, low: 35, zero: 0}}
rules:
  - name: first
    scope: container
    when: {first}
    for: 2
    action: migrate
    priority: 10
    cooldown: 3s
  - name: second
    scope: container
    when: {second}
    for: 1
    action: scale_up
    priority: 20
    cooldown: 0s
    max_replicas: 10
"""


def unguarded(rules: RuleSet) -> RuleSet:
    return replace(rules, rules=tuple(replace(r, condition=replace(r.condition, guard=None)) for r in rules.rules))


@settings(max_examples=40, deadline=None)
@given(first=top_level(leaf_sample), second=top_level(leaf_any),
       steps=st.lists(st.lists(st.tuples(st.integers(0, 3), samples, st.booleans()), min_size=1, max_size=4),
                      min_size=1, max_size=8))
def test_the_engine_decides_the_same_with_and_without_guards(tmp_path_factory, first: str, second: str,  # type: ignore[no-untyped-def]
                                                             steps: list[list[tuple[int, list[float | int], bool]]]) -> None:
    if compiled(first) is None or compiled(second) is None:
        return
    path = tmp_path_factory.mktemp("rules") / "rules.yml"
    path.write_text(RULES.format(first=first, second=second))
    guarded = load_rules([str(path)])
    plain = unguarded(guarded)
    assert all(r.condition.guard is None for r in plain.rules)
    services = {"web": ServiceInfo("web", 3, {}), "api": ServiceInfo("api", 2, {})}
    states = RuleState(), RuleState()
    latest: dict[str, ContainerMetrics] = {}
    history: dict[str, list[ContainerMetrics]] = {}
    now = 1000.0
    for step in steps:
        now += 1.0
        for k, values, stale in step:
            cid = f"c{k}"
            sample = ContainerMetrics("n1", "web" if k % 2 else "api", cid, f"t{k}", now - 0.5,
                                      *values)._replace(stale=stale)  # type: ignore[arg-type]
            latest[cid] = sample
            history.setdefault(cid, []).append(sample)
        snapshot = Snapshot(dict(latest), {c: tuple(h) for c, h in history.items()}, services,
                            {"n1": NodeMetrics("n1", now, 50.0, 50.0, 50.0)})
        made = [evaluate(rules, snapshot, now, state) for rules, state in zip((guarded, plain), states, strict=True)]
        assert made[0] == made[1]
        assert states[0] == states[1]
