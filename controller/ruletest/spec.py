"""Reads a rule test file (YAML) into a TestFile, strictly, reporting every problem as `file:line: ...`.

A test file names the rule files under test, then lists tests: services, containers and nodes with
their series (controller/ruletest/notation.py), and what must happen: decisions expected at given
times, and time ranges in which a rule must not fire. docs/rules.md ("Testing rules") documents
the format.

The YAML is held to the rule files' own rules (controller/rules/loader.py: plain YAML only, no tags,
bounded nesting, no control characters, at most 1 MiB): this module reuses the loader's reading
and composing (`compose_file`), and the checks of the values both kinds of file hold (labels, whole
numbers, threshold names and values, lists of names: controller/rules/fields.py), and adds only
what a test file holds. Everything that can be checked before the
replay is checked here (names, types, times against the series' length, rule names, actions and
scopes), so a broken test file is exit 2 with its lines, and a replay only ever runs a sound test.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import yaml

from controller.actions.registry import PLUGINS
from controller.model import ServiceInfo
from controller.rules import RuleError, RuleSet, load_rules, parse_duration
from controller.rules.fields import MAX_WHOLE, FieldProblem, label_pairs, names, show, threshold_problem, whole_number
from controller.rules.loader import (  # the rule files' strict YAML reading, shared (see the module docstring)
    _NULL,
    RULE_NAME_RE,
    FileKind,
    RuleFileError,
    _BadValue,
    _Doc,
    _items,
    _tag_problem,
    compose_file,
    read_rule_file,
)
from controller.ruletest.notation import NotationError, Series, parse_series
from sgcommon.metricset import CONTAINER_KEYS, NODE_FIGURES

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # services, containers, nodes
NODE_KEYS = tuple(figure.key for figure in NODE_FIGURES)  # a node series names its own figures: cpu, mem, net
DEFAULT_NODE = "worker-1"
MIN_INTERVAL, MAX_INTERVAL = 0.2, 60.0  # one sample per scrape round: scrape_interval's bounds (controller/settings.py)
MAX_CONTAINERS = 1000  # per test
MAX_WORK = 2_000_000  # container samples per test (about a minute of replay)
MAX_FILE_WORK = 10_000_000  # container samples per file
VIAS = ("alert", "scrape")
TOP_KEYS = ("rule_files", "enable", "thresholds", "interval", "tests")
TEST_KEYS = ("name", "interval", "thresholds", "apply_decisions", "services", "containers", "nodes", "expect",
             "never")
SERVICE_KEYS = ("name", "replicas", "labels", "tasks_per_node", "series", "containers", "nodes", "alerts")
CONTAINER_SPEC_KEYS = ("id", "service", "node", "alerts", "series")
NODE_SPEC_KEYS = ("name", "series")
EXPECT_KEYS = ("at", "decisions")
DECISION_KEYS = ("rule", "service", "container", "action", "t0", "node", "target_replicas", "via")
NEVER_KEYS = ("from", "to", "rule", "service", "container")


class TestFileError(ValueError):
    """A test file is broken; `.errors` lists every problem as `file:line: message`."""

    __test__ = False  # not a pytest test class

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class ContainerSpec:
    id: str
    service: str
    node: str
    series: Mapping[str, Series]  # by metric key; a metric without a series is 0
    alerts: bool  # each sample also arrives as an alert (the alert path)
    length: int  # samples: its longest series, or the test's length if every series is one value


@dataclass(frozen=True)
class NodeSpec:
    name: str
    series: Mapping[str, Series]
    length: int
    line: int


@dataclass(frozen=True)
class Expected:
    """A decision expected at a time; None fields are not checked."""

    rule: str
    service: str
    container: str | None
    action: str | None
    t0: int | None  # step
    node: str | None
    target_replicas: int | None
    via: str | None
    line: int


@dataclass(frozen=True)
class Check:
    """At step `step`, exactly `decisions` (an empty tuple: nothing)."""

    step: int
    decisions: tuple[Expected, ...]
    line: int


@dataclass(frozen=True)
class Never:
    """No decision (of `rule`, on `service`, for `container` where given) from step `first` to `last`."""

    first: int
    last: int
    rule: str | None
    service: str | None
    container: str | None
    line: int


@dataclass(frozen=True)
class RuleTest:
    name: str
    line: int
    interval: float
    rules: RuleSet
    services: Mapping[str, ServiceInfo]
    containers: tuple[ContainerSpec, ...]
    nodes: tuple[NodeSpec, ...]
    checks: tuple[Check, ...]
    nevers: tuple[Never, ...]
    apply_decisions: bool
    steps: int  # samples in the longest series: the replay's length

    __test__ = False  # not a pytest test class

    def time(self, step: int) -> float:
        """Seconds from the first sample to `step`."""
        return step * self.interval


@dataclass(frozen=True)
class TestFile:
    path: str
    tests: tuple[RuleTest, ...]

    __test__ = False


def fmt_time(seconds: float) -> str:
    """A time as the test file writes it: `2s`, `1.5s`, `180s`."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def load_test_file(path: str) -> TestFile:
    """Reads and checks the test file at `path`; raises TestFileError with every problem."""
    errors: list[str] = []
    doc = _compose(path, errors)
    if doc is None:
        raise TestFileError(errors)
    tests = _FileReader(doc, errors).read()
    if errors:
        raise TestFileError(errors)
    return TestFile(path, tuple(tests))


TEST_FILE = FileKind("test file", empty="expected 'rule_files:' and 'tests:'",
                     shape="expected a mapping with rule_files: and tests:")


def _compose(path: str, errors: list[str]) -> _Doc | None:
    try:
        data = read_rule_file(path)
    except RuleFileError as exc:
        errors.append(f"{path}: {str(exc).replace('rule files', 'test files')}")
        return None
    return compose_file(path, data, errors, kind=TEST_FILE)


_RulesKey = tuple[tuple[str, float], ...]  # threshold overrides, sorted


class _Refused:
    """Stands for a value the YAML reader refused (already reported): no field takes it."""


_REFUSED = _Refused()


@dataclass(frozen=True)
class _Field:
    node: yaml.Node
    line: int


class _Reader:
    """Reads YAML nodes with their lines; every problem goes to `errors`."""

    def __init__(self, doc: _Doc, errors: list[str], *, enable: frozenset[str] = frozenset()) -> None:
        self.doc = doc
        self.errors = errors
        self.enable = enable  # rules the file's tests run enabled (`enable:`), whatever their files say

    def error(self, line: int, where: str, message: str) -> None:
        self.errors.append(f"{self.doc.path}:{line}: {where}{message}")

    def line(self, node: yaml.Node) -> int:
        return self.doc.line(node)

    def mapping(self, node: yaml.Node, where: str, allowed: Sequence[str], *,
                required: Sequence[str] = ()) -> dict[str, _Field] | None:
        problem = _tag_problem(node)
        if problem:
            self.error(self.line(node), where, problem)
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(self.line(node), where, f"expected a mapping ({', '.join(allowed)})")
            return None
        fields: dict[str, _Field] = {}
        for key, value_node, line in _items(self.doc, node, self.errors, where=where):
            if key not in allowed:
                self.error(line, where, f"unknown key {show(key)} (allowed: {', '.join(allowed)})")
                continue
            fields[key] = _Field(value_node, line)
        for key in required:
            if key not in fields:
                self.error(self.line(node), where, f"missing {key!r}")
        return fields

    def sequence(self, field: _Field, where: str, what: str) -> list[yaml.Node]:
        node = field.node
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return []
        problem = _tag_problem(node)
        if problem:
            self.error(self.line(node), where, problem)
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.error(field.line, where, f"expected a list of {what}")
            return []
        return list(node.value)

    def value(self, field: _Field, where: str) -> Any:
        try:
            return self.doc.value(field.node)
        except _BadValue as exc:
            self.error(exc.line, where, str(exc))
            return _REFUSED

    # -- typed fields (None: missing or wrong, and reported when wrong) ---------------------------

    def text(self, fields: Mapping[str, _Field], key: str, where: str, *, pattern: re.Pattern[str] = NAME_RE,
             what: str = "a name (letters, digits, _ . -, at most 128)") -> str | None:
        if key not in fields:
            return None
        value = self.value(fields[key], f"{where}{key}: ")
        if value is _REFUSED:
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.error(fields[key].line, where, f"{key} must be {what}, got {show(value)}")
            return None
        return value

    def boolean(self, fields: Mapping[str, _Field], key: str, where: str) -> bool:
        if key not in fields:
            return False
        value = self.value(fields[key], f"{where}{key}: ")
        if type(value) is not bool:
            if value is not _REFUSED:
                self.error(fields[key].line, where, f"{key} must be true or false, got {show(value)}")
            return False
        return value

    def whole(self, fields: Mapping[str, _Field], key: str, where: str, *, minimum: int = 0) -> int | None:
        if key not in fields:
            return None
        value = self.value(fields[key], f"{where}{key}: ")
        if value is _REFUSED:
            return None
        try:
            return whole_number(key, value, minimum=minimum)
        except FieldProblem as exc:
            self.error(fields[key].line, where, str(exc))
            return None

    def seconds(self, fields: Mapping[str, _Field], key: str, where: str) -> float | None:
        """A time or duration: `2s`, `500ms`, `3m`, `1h` or a number of seconds, 0 or more."""
        if key not in fields:
            return None
        value = self.value(fields[key], f"{where}{key}: ")
        if value is _REFUSED:
            return None
        seconds = parse_duration(value) if not isinstance(value, bool) else None
        if seconds is None or seconds < 0:
            self.error(fields[key].line, where,
                       f"{key} must be a time like 2s, 500ms, 3m, 1h or a number of seconds (0 or more), "
                       f"got {show(value)}")
            return None
        return seconds

    def thresholds(self, fields: Mapping[str, _Field], where: str) -> dict[str, float] | None:
        """Threshold overrides (name: number), as `--threshold` gives them; None when any is wrong."""
        if "thresholds" not in fields:
            return {}
        node = fields["thresholds"].node
        where = f"{where}thresholds: "
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return {}
        problem = _tag_problem(node)
        if problem or not isinstance(node, yaml.MappingNode):
            self.error(self.line(node), where, problem or "expected a mapping of threshold name: number")
            return None
        values: dict[str, float] = {}
        ok = True
        for name, value_node, line in _items(self.doc, node, self.errors, where=where):
            value = self.value(_Field(value_node, line), f"{where}{name}: ")
            problem = None if value is _REFUSED else threshold_problem(name, value)
            if value is _REFUSED or problem:
                if problem:
                    self.error(line, where, problem)
                ok = False
            else:
                values[name] = float(value)
        return values if ok else None


    def ruleset(self, paths: list[str], overrides: dict[str, float], cache: dict[_RulesKey, RuleSet | None], *,
                line: int, overrides_line: int, where: str) -> RuleSet | None:
        """The rule files with `overrides`, loaded once per set of overrides. Problems are reported the
        first time, at `line` (at `overrides_line` for a bad override); a set that failed makes every
        test that uses it broken, silently after that."""
        key = tuple(sorted(overrides.items()))
        if key in cache:
            if cache[key] is None:
                self.error_silently()
            return cache[key]
        try:
            cache[key] = loaded = load_rules(paths, overrides=overrides)
        except RuleError as exc:
            cache[key] = None
            for message in exc.errors:
                at = overrides_line if message.startswith("threshold override") else line
                self.error(at, where, f"the rule files do not load: {message}")
            return None
        unknown = sorted(self.enable - {rule.name for rule in loaded.rules})
        if unknown:
            cache[key] = None
            self.error(line, where, f"enable: no rule named {', '.join(unknown)} in the rule files")
            return None
        cache[key] = replace(loaded, rules=tuple(replace(rule, enabled=True) if rule.name in self.enable else rule
                                                 for rule in loaded.rules))
        return cache[key]

    def error_silently(self) -> None:
        """A problem already reported elsewhere."""

    def interval(self, fields: Mapping[str, _Field], where: str, default: float) -> float:
        seconds = self.seconds(fields, "interval", where)
        if seconds is None:
            return default
        if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
            self.error(fields["interval"].line, where, f"interval must be from {fmt_time(MIN_INTERVAL)} to "
                       f"{fmt_time(MAX_INTERVAL)}, got {fmt_time(seconds)}")
            return default
        return seconds


class _FileReader(_Reader):
    """The whole file: rule files, shared settings, then each test."""

    def read(self) -> list[RuleTest]:
        root = self.mapping(self.doc.root, "", TOP_KEYS, required=("rule_files", "tests"))
        if root is None:
            return []
        rule_paths = self.rule_paths(root)
        self.enable = self.enabled_rules(root)
        thresholds = self.thresholds(root, "")
        interval = self.interval(root, "", 1.0)
        rulesets: dict[_RulesKey, RuleSet | None] = {}
        if rule_paths is not None and thresholds is not None:  # reported here even if no test loads them
            line = root["rule_files"].line
            self.ruleset(rule_paths, thresholds, rulesets, line=line,
                         overrides_line=root["thresholds"].line if "thresholds" in root else line, where="rule_files: ")
        tests: list[RuleTest] = []
        names: dict[str, int] = {}
        work = 0
        nodes = self.sequence(root["tests"], "tests: ", "tests") if "tests" in root else []
        for index, node in enumerate(nodes, start=1):
            reader = _TestReader(self.doc, self.errors, index=index, interval=interval, enable=self.enable)
            test = reader.read(node, rule_paths=rule_paths, thresholds=thresholds, rulesets=rulesets)
            if reader.name is not None:
                if reader.name in names:
                    self.error(self.line(node), reader.where, f"a test of this name is already at line "
                               f"{names[reader.name]}")
                names.setdefault(reader.name, self.line(node))
            if test is not None:
                work += test.steps * max(1, len(test.containers))
                if work > MAX_FILE_WORK:
                    self.error(test.line, reader.where, f"the file's tests replay more than {MAX_FILE_WORK} "
                               "container samples in all: split it")
                    return []
                tests.append(test)
        if "tests" in root and not nodes and not self.errors:
            self.error(root["tests"].line, "", "tests: the list is empty")
        return tests

    def enabled_rules(self, root: Mapping[str, _Field]) -> frozenset[str]:
        """`enable:`, rules shipped off (`enabled: false`) that this file's tests run enabled."""
        if "enable" not in root:
            return frozenset()
        field = root["enable"]
        value = self.value(field, "enable: ")
        if value is _REFUSED:
            return frozenset()
        try:
            return frozenset(names("enable", value, what="a list of rule names"))
        except FieldProblem as exc:
            self.error(field.line, "", str(exc))
            return frozenset()

    def rule_paths(self, root: Mapping[str, _Field]) -> list[str] | None:
        if "rule_files" not in root:
            return None
        field = root["rule_files"]
        value = self.value(field, "rule_files: ")
        if value is _REFUSED:
            return None
        try:
            paths = names("rule_files", value, what="a list of rule files or directories")
        except FieldProblem as exc:
            self.error(field.line, "", str(exc))
            return None
        base = os.path.dirname(self.doc.path)  # the file's text holds no NUL (loader._scalar refuses it)
        return [item if os.path.isabs(item) else os.path.join(base, item) for item in paths]


class _TestReader(_Reader):
    """One test: its inputs first (they fix its length), then its checks against that length."""

    def __init__(self, doc: _Doc, errors: list[str], *, index: int, interval: float,
                 enable: frozenset[str] = frozenset()) -> None:
        super().__init__(doc, errors, enable=enable)
        self.name: str | None = None
        self.where = f"test #{index}: "
        self.default_interval = interval
        self.broken = False
        self.service_series: list[tuple[str, Mapping[str, _Field], str]] = []  # services given a `series:`

    def error(self, line: int, where: str, message: str) -> None:
        self.broken = True
        super().error(line, where, message)

    def error_silently(self) -> None:
        self.broken = True

    def read(self, node: yaml.Node, *, rule_paths: list[str] | None, thresholds: dict[str, float] | None,
             rulesets: dict[_RulesKey, RuleSet | None]) -> RuleTest | None:
        fields = self.mapping(node, self.where, TEST_KEYS, required=("name", "services"))
        if fields is None:
            return None
        name = self.text(fields, "name", self.where, pattern=re.compile(r"[^\n]{1,200}"),
                         what="one line of text (at most 200 characters)")
        if name is not None:
            self.name = name
            self.where = f"test {name!r}: "
        line = self.line(node)
        interval = self.interval(fields, self.where, self.default_interval)
        own = self.thresholds(fields, self.where)
        rules = None
        if rule_paths is not None and thresholds is not None and own is not None:
            rules = self.ruleset(rule_paths, {**thresholds, **own}, rulesets, where=self.where, line=line,
                                 overrides_line=fields["thresholds"].line if "thresholds" in fields else line)
        services = self.services(fields)
        containers = self.containers(fields, services)
        nodes = self.nodes(fields, containers)
        steps = max([c.length for c in containers if not _steady(c.series)]
                    + [n.length for n in nodes if not _steady(n.series)] + [1])
        # a container or node whose series are all one value reports that at every step of the test
        containers = [replace(c, length=steps) if _steady(c.series) else c for c in containers]
        nodes = [replace(n, length=steps) if _steady(n.series) else n for n in nodes]
        if not containers and "services" in fields and not self.broken:
            self.error(line, self.where, "no container has a series: give containers (or a service) a series")
        if steps * max(1, len(containers)) > MAX_WORK:
            self.error(line, self.where, f"{len(containers)} containers x {steps} samples is more than {MAX_WORK} "
                       "container samples: make the test smaller")
            return None
        self.check_stale_nodes(containers, nodes, interval)
        context = _Context(rules, services, {c.id: c for c in containers}, steps, interval)
        checks = self.checks(fields, context)
        nevers = self.nevers(fields, context)
        if "expect" not in fields and "never" not in fields:
            self.error(line, self.where, "the test checks nothing: add 'expect:' or 'never:'")
        apply = self.boolean(fields, "apply_decisions", self.where)
        if self.broken or rules is None or name is None:
            return None
        return RuleTest(name=name, line=line, interval=interval, rules=rules, services=MappingProxyType(services),
                        containers=tuple(containers), nodes=tuple(nodes), checks=tuple(checks), nevers=tuple(nevers),
                        apply_decisions=apply, steps=steps)

    # -- inputs ----------------------------------------------------------------------------------

    def services(self, fields: Mapping[str, _Field]) -> dict[str, ServiceInfo]:
        services: dict[str, ServiceInfo] = {}
        for index, node in enumerate(self.sequence(fields["services"], self.where, "services")
                                     if "services" in fields else (), start=1):
            where = f"{self.where}services #{index}: "
            spec = self.mapping(node, where, SERVICE_KEYS, required=("name",))
            if spec is None:
                continue
            name = self.text(spec, "name", where)
            if name is None:
                continue
            where = f"{self.where}service {name}: "
            if name in services:
                self.error(self.line(node), where, "declared twice")
                continue
            replicas = self.replicas(spec, where)
            services[name] = ServiceInfo(name, replicas, MappingProxyType(self.labels(spec, where)),
                                         tasks_per_node=self.tasks_per_node(spec, where, replicas))
            if "series" in spec:
                self.service_series.append((name, spec, where))
            else:
                for key in ("containers", "nodes", "alerts"):
                    if key in spec:
                        self.error(spec[key].line, where, f"{key} applies only with a service 'series:'")
        if "services" in fields and not services and not self.broken:
            self.error(fields["services"].line, self.where, "services: the list is empty")
        return services

    def replicas(self, spec: Mapping[str, _Field], where: str) -> int | None:
        if "replicas" not in spec:
            return 1
        value = self.value(spec["replicas"], f"{where}replicas: ")
        if value == "global":
            return None
        if type(value) is not int or not 0 <= value <= MAX_WHOLE:
            if value is not _REFUSED:
                self.error(spec["replicas"].line, where,
                           f"replicas must be a whole number from 0 to {MAX_WHOLE} or 'global', got {show(value)}")
            return 1
        return value

    def tasks_per_node(self, spec: Mapping[str, _Field], where: str, replicas: int | None) -> Mapping[str, int] | None:
        """Swarm's spread of the service's running tasks over the nodes it may run on (`task_skew`,
        `nodes_ready`); read afresh at every step of the test, as the controller reads the task list."""
        if "tasks_per_node" not in spec:
            return None
        field = spec["tasks_per_node"]
        value = self.value(field, f"{where}tasks_per_node: ")
        if value is _REFUSED:
            return None
        if replicas is None:
            self.error(field.line, where, "tasks_per_node applies to a replicated service, not a global one")
            return None
        if not isinstance(value, dict) or not value:
            self.error(field.line, where, f"tasks_per_node must be a mapping of node: tasks, got {show(value)}")
            return None
        spread: dict[str, int] = {}
        for node, count in value.items():
            if not isinstance(node, str) or not node or "\n" in node or len(node) > 255:
                self.error(field.line, where, f"tasks_per_node: {show(node)} is not a node name")
            elif type(count) is not int or not 0 <= count <= MAX_WHOLE:
                self.error(field.line, where, f"tasks_per_node: {node}: a whole number of tasks from 0 to "
                           f"{MAX_WHOLE}, got {show(count)}")
            else:
                spread[node] = count
        return MappingProxyType(spread)

    def labels(self, spec: Mapping[str, _Field], where: str) -> dict[str, str]:
        """A service's labels, read as a rule's `labels:` selector is (controller/rules/fields.py)."""
        if "labels" not in spec:
            return {}
        value = self.value(spec["labels"], f"{where}labels: ")
        if value is _REFUSED:
            return {}
        pairs, problems = label_pairs(value)
        for problem in problems:
            self.error(spec["labels"].line, where, problem)
        return dict(pairs)

    def containers(self, fields: Mapping[str, _Field], services: Mapping[str, ServiceInfo]) -> list[ContainerSpec]:
        containers: list[ContainerSpec] = []
        seen: set[str] = set()
        for name, of_service, where in self.service_series:
            containers.extend(self.service_containers(name, services[name], of_service, where, seen))
        for index, node in enumerate(self.sequence(fields["containers"], self.where, "containers")
                                     if "containers" in fields else (), start=1):
            where = f"{self.where}containers #{index}: "
            spec = self.mapping(node, where, CONTAINER_SPEC_KEYS, required=("id", "service", "series"))
            if spec is None:
                continue
            cid = self.text(spec, "id", where)
            where = f"{self.where}container {cid or '#' + str(index)}: "
            service = self.text(spec, "service", where)
            node_name = self.text(spec, "node", where) or DEFAULT_NODE
            if service is not None and service not in services:
                self.error(spec["service"].line, where, f"service {service!r} is not declared under services:")
                service = None
            if cid is not None and cid in seen:
                self.error(spec["id"].line, where, "a container of this id is already declared")
                cid = None
            series = self.series(spec, where, CONTAINER_KEYS, stale=False) if "series" in spec else None
            alerts = self.boolean(spec, "alerts", where)
            if cid is None or service is None or series is None:
                continue
            seen.add(cid)
            containers.append(ContainerSpec(cid, service, node_name, series[0], alerts, series[1]))
        if len(containers) > MAX_CONTAINERS:
            self.error(fields["containers"].line if "containers" in fields else 1, self.where,
                       f"{len(containers)} containers, at most {MAX_CONTAINERS} in a test")
            return []
        return containers

    def service_containers(self, name: str, info: ServiceInfo, spec: Mapping[str, _Field], where: str,
                           seen: set[str]) -> list[ContainerSpec]:
        """A service's `series:`: the same series for each of its containers, `<service>.1` ... on `nodes`."""
        nodes = [DEFAULT_NODE]
        if "nodes" in spec:
            value = self.value(spec["nodes"], f"{where}nodes: ")
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and NAME_RE.fullmatch(v)
                                                                   for v in value):
                if value is not _REFUSED:
                    self.error(spec["nodes"].line, where, f"nodes must be a list of node names, got {show(value)}")
                return []
            nodes = value
        count = self.whole(spec, "containers", where)
        if count is None:
            count = len(nodes) if info.replicas is None else info.replicas
        if count > MAX_CONTAINERS:
            self.error((spec.get("containers") or spec.get("replicas") or spec["series"]).line, where,
                       f"{count} containers, at most {MAX_CONTAINERS} in a test")
            return []
        series = self.series(spec, where, CONTAINER_KEYS, stale=False)
        alerts = self.boolean(spec, "alerts", where)
        if series is None:
            return []
        made = []
        for index in range(1, count + 1):
            cid = f"{name}.{index}"
            if cid in seen:
                self.error(spec["series"].line, where, f"container id {cid} is already declared")
                continue
            seen.add(cid)
            made.append(ContainerSpec(cid, name, nodes[(index - 1) % len(nodes)], series[0], alerts, series[1]))
        return made

    def nodes(self, fields: Mapping[str, _Field], containers: Sequence[ContainerSpec]) -> list[NodeSpec]:
        nodes: list[NodeSpec] = []
        for index, node in enumerate(self.sequence(fields["nodes"], self.where, "nodes")
                                     if "nodes" in fields else (), start=1):
            where = f"{self.where}nodes #{index}: "
            spec = self.mapping(node, where, NODE_SPEC_KEYS, required=("name", "series"))
            if spec is None:
                continue
            name = self.text(spec, "name", where)
            where = f"{self.where}node {name or '#' + str(index)}: "
            if name is not None and any(n.name == name for n in nodes):
                self.error(spec["name"].line, where, "declared twice")
                continue
            series = self.series(spec, where, NODE_KEYS, stale=True) if "series" in spec else None
            if name is not None and series is not None:
                nodes.append(NodeSpec(name, series[0], series[1], self.line(node)))
        return nodes

    def series(self, spec: Mapping[str, _Field], where: str, keys: Sequence[str], *,
               stale: bool) -> tuple[Mapping[str, Series], int] | None:
        """The series of one container or node, and its length; every given series but one-value
        ones must be as long as the longest and have its gaps (`_`, `stale`) at the same places:
        a sample has every figure or none."""
        field = spec["series"]
        where = f"{where}series: "
        mapping = self.mapping(field.node, where, keys)
        if mapping is None:
            return None
        if not mapping:
            self.error(field.line, where, f"give at least one series ({', '.join(keys)})")
            return None
        parsed: dict[str, Series] = {}
        for key, item in mapping.items():
            value = self.value(item, f"{where}{key}: ")
            if value is _REFUSED:
                continue
            try:
                parsed[key] = parse_series(value, stale=stale)
            except NotationError as exc:
                self.error(item.line, where, f"{key}: {exc}")
        if len(parsed) != len(mapping):
            return None
        length = max(len(s) for s in parsed.values())
        shaped = [(key, s) for key, s in parsed.items() if not (s.constant is not None and length > 1)]
        first_key, first = shaped[0]
        for key, other in shaped[1:]:
            if len(other) != len(first):
                self.error(mapping[key].line, where, f"{key} has {len(other)} samples, {first_key} has {len(first)} "
                           "(a series is either one value, held in every sample, or as long as the others)")
                return None
            if other.gaps() != first.gaps():
                self.error(mapping[key].line, where, f"{key} has its _ or stale at other places than {first_key}: "
                           "a sample has every figure or none")
                return None
        return MappingProxyType(parsed), length

    def check_stale_nodes(self, containers: Sequence[ContainerSpec], nodes: Sequence[NodeSpec],
                          interval: float) -> None:
        """A node's `stale` means its exporter did not answer: its containers have no sample then either."""
        for node in nodes:
            stale = [(first, end) for series in node.series.values() for first, end, kind in series.gaps()
                     if kind == "stale"]
            if not stale:
                continue
            for container in (c for c in containers if c.node == node.name):
                shape = max(container.series.values(), key=len)
                present = [(0, container.length)] if _steady(container.series) else _present(shape)
                for first, end in stale:
                    clash = next((max(a, first) for a, b in present if a < end and first < b), None)
                    if clash is not None:
                        self.error(node.line, self.where,
                                   f"node {node.name} is stale at {fmt_time(clash * interval)} but its container "
                                   f"{container.id} has a sample then: write _ there (no scrape reaches a node "
                                   "whose exporter does not answer)")
                        break

    # -- checks ----------------------------------------------------------------------------------

    def checks(self, fields: Mapping[str, _Field], context: _Context) -> list[Check]:
        checks: list[Check] = []
        for index, node in enumerate(self.sequence(fields["expect"], self.where, "expected decisions")
                                     if "expect" in fields else (), start=1):
            where = f"{self.where}expect #{index}: "
            spec = self.mapping(node, where, EXPECT_KEYS, required=("at", "decisions"))
            if spec is None or "at" not in spec:
                continue
            step = self.step(spec, "at", where, context)
            if step is None or "decisions" not in spec:
                continue
            where = f"{self.where}at {fmt_time(context.interval * step)}: "
            if any(c.step == step for c in checks):
                self.error(spec["at"].line, where, "this time is already checked by another expect entry")
                continue
            decisions = []
            for number, item in enumerate(self.sequence(spec["decisions"], where, "decisions"), start=1):
                expected = self.expected(item, f"{where}decision #{number}: ", context, step)
                if expected is not None:
                    decisions.append(expected)
            checks.append(Check(step, tuple(decisions), self.line(node)))
        return checks

    def expected(self, node: yaml.Node, where: str, context: _Context, step: int) -> Expected | None:
        spec = self.mapping(node, where, DECISION_KEYS, required=("rule", "service"))
        if spec is None:
            return None
        rule_name = self.rule_name(spec, where, context)
        service = self.service_name(spec, where, context)
        container = self.container_name(spec, where, context, service)
        action = self.text(spec, "action", where, pattern=RULE_NAME_RE, what=f"one of {', '.join(PLUGINS)}")
        if action is not None and action not in PLUGINS:
            self.error(spec["action"].line, where, f"action must be one of {', '.join(PLUGINS)}, got {action!r}")
        t0 = self.step(spec, "t0", where, context)
        if t0 is not None and t0 > step:
            self.error(spec["t0"].line, where, f"t0 {fmt_time(context.interval * t0)} is after the decision's time")
        via = self.text(spec, "via", where, what="alert or scrape")
        if via is not None and via not in VIAS:
            self.error(spec["via"].line, where, f"via must be alert or scrape, got {via!r}")
        elif via == "alert" and (container is None or not context.containers[container].alerts):
            self.error(spec["via"].line, where, "via: alert needs a container with alerts: true")
        if rule_name is not None and context.rules is not None:
            rule = context.rules.by_name(rule_name)
            assert rule is not None  # rule_name() checked it
            if action is not None and action != rule.action.name:
                self.error(spec["action"].line, where, f"rule {rule_name} runs {rule.action.name}, not {action}")
            if rule.scope == "container" and "container" not in spec:
                self.error(self.line(node), where, f"rule {rule_name} is a container rule: name the container")
            if rule.scope == "service" and "container" in spec:
                self.error(spec["container"].line, where,
                           f"rule {rule_name} is a service rule: its decisions have no container")
        target = self.whole(spec, "target_replicas", where)
        node_name = self.text(spec, "node", where)
        if rule_name is None or service is None or ("container" in spec and container is None):
            return None
        return Expected(rule_name, service, container, action, t0, node_name, target, via, self.line(node))

    def nevers(self, fields: Mapping[str, _Field], context: _Context) -> list[Never]:
        nevers: list[Never] = []
        for index, node in enumerate(self.sequence(fields["never"], self.where, "time ranges")
                                     if "never" in fields else (), start=1):
            where = f"{self.where}never #{index}: "
            spec = self.mapping(node, where, NEVER_KEYS)
            if spec is None:
                continue
            last_time = context.interval * max(0, context.steps - 1)
            start = self.seconds(spec, "from", where)
            end = self.seconds(spec, "to", where)
            start = 0.0 if start is None else start
            end = last_time if end is None else end
            for key, value in (("from", start), ("to", end)):
                if key in spec and value > last_time + 1e-9:
                    self.error(spec[key].line, where, f"{key} {fmt_time(value)} is after the last sample "
                               f"({fmt_time(last_time)})")
            if start > end:
                self.error(self.line(node), where, f"from {fmt_time(start)} is after to {fmt_time(end)}")
            rule = self.rule_name(spec, where, context)
            service = self.service_name(spec, where, context)
            container = self.container_name(spec, where, context, service)
            if any(key in spec and value is None for key, value in
                   (("rule", rule), ("service", service), ("container", container))):
                continue
            first = math.ceil(start / context.interval - 1e-9)
            last = math.floor(end / context.interval + 1e-9)
            nevers.append(Never(first, last, rule, service, container, self.line(node)))
        return nevers

    def step(self, spec: Mapping[str, _Field], key: str, where: str, context: _Context) -> int | None:
        """A time that must be a sample time of the test (0s, interval, 2 x interval, ...)."""
        seconds = self.seconds(spec, key, where)
        if seconds is None:
            return None
        exact = seconds / context.interval
        step = round(exact)
        last = max(0, context.steps - 1)
        if abs(exact - step) > 1e-6:
            self.error(spec[key].line, where, f"{key} {fmt_time(seconds)} is not a sample time (one every "
                       f"{fmt_time(context.interval)})")
            return None
        if step > last:
            self.error(spec[key].line, where, f"{key} {fmt_time(seconds)} is after the last sample "
                       f"({fmt_time(context.interval * last)})")
            return None
        return step

    def rule_name(self, spec: Mapping[str, _Field], where: str, context: _Context) -> str | None:
        name = self.text(spec, "rule", where, pattern=RULE_NAME_RE, what="a rule name")
        if name is not None and context.rules is not None and context.rules.by_name(name) is None:
            known = ", ".join(rule.name for rule in context.rules.rules)
            self.error(spec["rule"].line, where, f"unknown rule {name!r} (the rule files hold: {known})")
            return None
        return name

    def service_name(self, spec: Mapping[str, _Field], where: str, context: _Context) -> str | None:
        name = self.text(spec, "service", where)
        if name is not None and name not in context.services:
            self.error(spec["service"].line, where, f"service {name!r} is not declared under services:")
            return None
        return name

    def container_name(self, spec: Mapping[str, _Field], where: str, context: _Context,
                       service: str | None) -> str | None:
        cid = self.text(spec, "container", where)
        if cid is None:
            return None
        container = context.containers.get(cid)
        if container is None:
            self.error(spec["container"].line, where, f"container {cid!r} is not declared")
            return None
        if service is not None and container.service != service:
            self.error(spec["container"].line, where, f"container {cid} belongs to {container.service}, not {service}")
            return None
        return cid


@dataclass(frozen=True)
class _Context:
    """What the checks of a test are validated against."""

    rules: RuleSet | None
    services: Mapping[str, ServiceInfo]
    containers: Mapping[str, ContainerSpec]
    steps: int
    interval: float


def _steady(series: Mapping[str, Series]) -> bool:
    """True when every series is one value: the container or node reports it at every step."""
    return all(one.constant is not None for one in series.values())


def _present(series: Series) -> list[tuple[int, int]]:
    """(first, end) index runs where `series` has values."""
    runs = []
    index = 0
    for first, end, _kind in series.gaps():
        if first > index:
            runs.append((index, first))
        index = end
    if index < len(series):
        runs.append((index, len(series)))
    return runs
