"""Rule files and conditions fuzzed with hypothesis: nothing but RuleError ever comes out.

Generated YAML text (fragments of YAML syntax, tags, anchors, control characters, numbers
too large for a float) and generated trees (dumped Python structures of any type, shared
and self-referencing ones included, and rule-shaped mappings with fuzzed field values) go
through `load_rules`, `check-rules` and the hot reloader; generated conditions are compiled
and evaluated on generated metric values (NaN and infinities included).

The example budget is fixed (max_examples) and, when CI=true, the examples are derived from
the test itself (derandomize) so a CI run is repeatable. Run with
`--hypothesis-show-statistics` to see how many examples each test ran.
"""
from __future__ import annotations

import datetime
import io
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from controller import check_rules
from controller.model import ContainerMetrics, NodeMetrics
from controller.reload import RuleWatcher
from controller.rules import ContainerEnv, ExprError, RuleError, ServiceEnv, compile_condition, load_rules
from controller.rules.expr import CONTAINER_METRICS, FUNCTIONS, NODE_METRICS

CI = os.environ.get("CI") == "true"


def budget(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=CI, database=None if CI else settings().database,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


GOOD = """thresholds:
  cpu_high: 75
rules:
  - name: good
    when: cpu > cpu_high
    action: migrate
"""

# -- generated YAML text ----------------------------------------------------------------------------

FRAGMENTS = [
    "rules:", "thresholds:", "\n", "\n  ", "\n    ", "  ", "- ", ": ", "name: ", "when: ", "action: ", "scope: ",
    "for: ", "cooldown: ", "priority: ", "labels: ", "services: ", "max_replicas: ", "exclusion_ttl: ", "enabled: ",
    "description: ", "cpu > 1", "cpu > cpu_high", "avg(cpu, 3) > 1", "migrate", "scale_up", "scale_down", "service",
    "cpu_high: ", "r", "x", "&a ", "&b ", "*a", "*b", "!!python/name:os.system ", "!!python/object/apply:os.system ",
    "!!python/object:os.system ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!str ", "!!binary ", "!!set ",
    "!!omap ", "!!pairs ", "!!timestamp ", "!!map ", "!!seq ", "!foo ", "!<tag:x.org,2000:y> ", "!", "<<: ", "? ",
    "---\n", "...\n", "%YAML 1.1\n", "%TAG !e! tag:e.com,2000:\n", "[", "]", "{", "}", ", ", "|\n  ", ">\n  ", "'",
    '"', '"\\x00"', '"\\ud800"', '"\\a"', '"\\n"', "\x00", "\x07", "\x1b", "\t", "\r", "\x85", "\u2028", "\ufeff",
    "\ud800", "é", "1e999", "-1e999", "1.0e+999", "9" * 400, "9" * 5000, "59:" * 50 + "1", ".nan", ".inf", "-.inf",
    "0x1F", "0o17", "0b101", "1_000", "yes", "no", "on", "off", "~", "null", "true", "2001-12-14", "2001-13-45",
    "30s", "1e308h", "9" * 40 + "ms", "# c", "=", "abc", "abc ", "'a\n'", "[" * 80, "]" * 80, "{a: " * 70,
]
yaml_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map("".join)


def holes(draw: st.DrawFn) -> str:
    """A well-formed rule file with fuzz in the values, so generation reaches the field readers."""
    fill = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)).map(lambda s: s.replace("\n", " "))
    keys = ["name", "when", "action", "scope", "for", "cooldown", "priority", "labels", "services", "enabled",
            "description", "max_replicas", "min_replicas", "exclusion_ttl", "colour"]
    lines = ["thresholds:", f"  cpu_high: {draw(fill)}", f"  {draw(fill)}: {draw(fill)}", "rules:"]
    for _ in range(draw(st.integers(1, 3))):
        lines.append(f"  - name: {draw(fill)}")
        for key in draw(st.lists(st.sampled_from(keys), max_size=6, unique=True)):
            lines.append(f"    {key}: {draw(fill)}")
    return "\n".join(lines) + "\n"


templated = st.composite(holes)()


# -- generated trees, dumped to YAML --------------------------------------------------------------

def self_referencing(value: Any) -> Any:
    box: list[Any] = [value]
    box.append(box)
    return box


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.binary(max_size=8),
    st.dates(), st.datetimes(), st.sampled_from(["cpu > 1", "migrate", "30s", "cpu_high", "*", "web-*"]),
)
hashable = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10),
                     st.sampled_from(["rules", "thresholds", "name", "when", "action", "labels", "<<"]))
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hashable, inner, max_size=4),
        st.tuples(inner, inner), st.frozensets(hashable, max_size=3), inner.map(self_referencing),
        inner.map(lambda v: [v, v, v]),  # shared: dumped as an anchor and aliases
    ),
    max_leaves=25,
)
rule_shaped = st.fixed_dictionaries(
    {"name": st.one_of(st.just("r"), trees), "when": st.one_of(st.just("cpu > 1"), trees),
     "action": st.one_of(st.sampled_from(["migrate", "scale_up", "scale_down"]), trees)},
    optional={key: trees for key in ("scope", "for", "cooldown", "priority", "labels", "services", "enabled",
                                       "description", "max_replicas", "min_replicas", "exclusion_ttl", "extra")},
)
files = st.one_of(
    trees,
    st.fixed_dictionaries({"rules": st.lists(st.one_of(rule_shaped, trees), max_size=3)},
                          optional={"thresholds": st.one_of(st.dictionaries(hashable, scalars, max_size=4), trees)}),
)


def dumped(tree: Any) -> str:
    """`tree` as YAML text; the full Dumper writes Python tags (!!python/tuple, ...) for Python types."""
    try:
        return yaml.dump(tree, Dumper=yaml.Dumper, allow_unicode=True)
    except (yaml.YAMLError, RecursionError, ValueError):  # a structure even PyYAML cannot write
        return "rules: []\n"


# -- properties -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "r.yml"


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


def loads_or_refuses(path: Path) -> None:
    """The one property of load_rules: a RuleSet, or a RuleError whose messages name the file."""
    try:
        ruleset = load_rules([str(path)])
    except RuleError as exc:
        assert exc.errors
        assert all(e.startswith(f"{path}:") and e.isprintable() and len(e) < 1000 for e in exc.errors), exc.errors
    else:
        assert ruleset.files == (str(path),)


@budget(1500)
@given(text=st.one_of(yaml_text, templated))
def test_load_rules_on_any_yaml_text_gives_rules_or_a_rule_error(place: Path, text: str) -> None:
    write(place, text)
    loads_or_refuses(place)


@budget(800)
@given(tree=files)
def test_load_rules_on_any_dumped_tree_gives_rules_or_a_rule_error(place: Path, tree: Any) -> None:
    write(place, dumped(tree))
    loads_or_refuses(place)


@budget(400)
@given(text=st.one_of(yaml_text, templated, files.map(dumped)))
def test_check_rules_on_any_input_prints_file_line_messages_and_exits_0_or_1(place: Path, text: str) -> None:
    write(place, text)
    out = io.StringIO()
    code = check_rules.run([str(place)], out=out)
    lines = out.getvalue().splitlines()
    assert code in (0, 1)
    if code == 0:
        assert lines == ["OK: 1 rule in 1 file"] or re.fullmatch(r"OK: \d+ rules? in 1 file", lines[0]), lines
    else:
        assert lines[-1].startswith("FAILED: ") and all(line.startswith(f"{place}:") for line in lines[:-1]), lines


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuleWatcher, Path, CollectorRegistry]]:
    directory = tmp_path_factory.mktemp("watched")
    write(directory / "a.yml", GOOD)
    registry = CollectorRegistry()
    yield RuleWatcher(str(directory), registry=registry), directory, registry


@budget(300)
@given(text=st.one_of(yaml_text, templated, files.map(dumped)))
def test_the_reloader_never_raises_and_keeps_the_last_good_rules(
        watched: tuple[RuleWatcher, Path, CollectorRegistry], text: str) -> None:
    watcher, directory, registry = watched
    before = watcher.current()
    write(directory / "b.yml", text)
    os.utime(directory / "b.yml", ns=(0, os.stat(directory / "b.yml").st_mtime_ns + 1_000_000))
    took = watcher.check_now()
    ok = registry.get_sample_value("swarmguard_rules_last_reload_success")
    if took:
        assert ok == 1 and watcher.current() is not before
    else:
        assert ok == 0 and watcher.current() is before
    (directory / "b.yml").unlink()
    watcher.check_now()  # back to a.yml alone
    assert [rule.name for rule in watcher.current().rules] == ["good"]


# -- conditions -----------------------------------------------------------------------------------

TOKENS = list(CONTAINER_METRICS + NODE_METRICS + FUNCTIONS) + [
    "replicas", "containers", "limit", "big", "(", ")", ",", "+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=",
    "and", "or", "not", "0", "1", "3", "0.5", "1e308", "1e-308", "1e309", "9" * 320, "%", "**", "//", "~", "[",
    "]", ".", ":", "lambda", "_x", "__import__", "'s'", "True", "None", "\x00", "\ud800", "\n", "é",
]
conditions = st.one_of(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join), st.text(max_size=60))
figures = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**1100), 2**1100),
                    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]))
thresholds = st.dictionaries(st.sampled_from(["limit", "big", "cpu_high"]), figures, max_size=3)


def explained_figures(text: str) -> list[str]:
    return [part.split("=", 1)[1] for part in text.split(", ") if "=" in part]


@budget(3000)
@given(text=conditions, scope=st.sampled_from(["container", "service"]), limits=thresholds,
       values=st.lists(figures, min_size=9, max_size=9), replicas=st.one_of(st.none(), st.integers(0, 2**70)),
       now=st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)))
def test_any_condition_compiles_or_is_refused_and_never_raises_when_evaluated(
        text: str, scope: str, limits: dict[str, float], values: list[float], replicas: int | None,
        now: datetime.datetime) -> None:
    try:
        condition = compile_condition(text, scope=scope, thresholds=limits)
    except ExprError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        return
    ts = now.timestamp()
    first = ContainerMetrics("n", "s", "c1", "t", ts, values[0], values[1], values[2], values[3], values[4], values[5])
    second = ContainerMetrics("n", "s", "c2", "t", ts + 1, values[3], values[4], values[5], values[6], values[7],
                              values[8])
    node = NodeMetrics("n", ts, values[6], values[7], values[8])
    env: Any = (ContainerEnv(second, (first, second), node, replicas) if scope == "container"
                else ServiceEnv((first, second), replicas))
    holds = condition.holds(env)
    explained = condition.explain(env)
    assert holds in (True, False) and isinstance(explained, str)
    if holds:  # a condition only holds on figures that all exist and are finite
        assert "n/a" not in explained_figures(explained), explained
        assert all(v not in ("nan", "inf", "-inf") for v in explained_figures(explained)), explained


# -- threshold overrides ----------------------------------------------------------------------------

override_text = st.one_of(st.text(max_size=30), st.lists(st.sampled_from(
    ["cpu_high", "CPU_HIGH", "=", " ", "\n", "\t", "80", "-1e3", "1e999", "nan", "inf", "1_000", "\u0663", "\u212a",
     "\x00", "\udcff", "x"]), max_size=6).map("".join))


@budget(600)
@given(env=st.dictionaries(st.one_of(override_text, override_text.map(lambda s: "SWARMGUARD_THRESHOLD_" + s)),
                           override_text, max_size=4),
       args=st.lists(override_text, max_size=4))
def test_threshold_overrides_from_any_environment_and_arguments_give_numbers_or_a_rule_error(
        env: dict[str, str], args: list[str]) -> None:
    from controller.rules import merge_overrides
    try:
        merged = merge_overrides(env, args)
    except RuleError as exc:
        assert exc.errors and all(e.isprintable() for e in exc.errors), exc.errors
        return
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) and math.isfinite(value) for name, value in merged.items())
    out = io.StringIO()
    assert check_rules.check([str(Path(__file__).resolve().parents[2] / "rules")], env=env, thresholds=args,
                             out=out) in (0, 1)
