"""Reads rule files (YAML) into a RuleSet, strictly, reporting every error at once.

The YAML is composed into nodes first so every message can carry the line it is about:
`file:line: rule NAME: message`, in the manner of Prometheus' rulefmt. Unknown keys,
duplicate keys, wrong types, bad conditions, unknown names, bad action parameters and
duplicate rule names are all collected before anything is refused, so one run of
`swarmguard-controller check-rules` shows the operator everything to fix.
The format itself is documented in docs/rules.md.
"""
from __future__ import annotations

import glob
import hashlib
import math
import os
import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from controller.actions.plugin import ActionPlugin, ParamKind, ParamValue
from controller.actions.registry import PLUGINS, all_params, param_defaults, takers
from controller.rules.expr import RESERVED, SCOPES, ExprError, compile_condition
from controller.rules.ruleset import Rule, RuleError, RuleSet
from controller.rules.thresholds import NAME_RE

MAX_FILE_BYTES = 1 << 20
RULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
TOP_KEYS = ("thresholds", "rules")
# A rule's own keys, then the parameters of every action (controller/actions/registry.py).
RULE_KEYS = ("name", "description", "enabled", "scope", "services", "labels", "when", "for",
             "action", "priority", "cooldown", *all_params())

# Values are quoted in messages through a bounded repr: a YAML alias bomb or a huge string
# in a wrong place must give a short message, not a hang.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 2
_show = _REPR.repr


def rule_files(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The files behind `paths` (a directory means its *.yml and *.yaml), and errors."""
    files: list[str] = []
    errors: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = glob.glob(os.path.join(glob.escape(path), "*.yml"))
            found += glob.glob(os.path.join(glob.escape(path), "*.yaml"))
            files.extend(sorted(found))
        elif os.path.isfile(path):
            files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return list(dict.fromkeys(files)), errors


def load_rules(paths: Sequence[str], *, overrides: Mapping[str, float] = MappingProxyType({}),
               defaults: Mapping[str, ParamValue] = MappingProxyType({})) -> RuleSet:
    """Loads and validates every rule file in `paths`; raises RuleError listing all errors.

    `defaults`: action parameters for rules that name none (the controller's `actions.*` settings,
    registry.param_defaults); a parameter missing there takes its plugin's default.
    """
    files, errors = rule_files(paths)
    docs: list[_Doc] = []
    for path in files:
        doc = _read(path, errors)
        if doc is not None:
            docs.append(doc)
    thresholds, broken = _thresholds(docs, errors)
    _apply_overrides(thresholds, overrides, errors)
    values = {name: value for name, (value, _) in thresholds.items()}
    # a threshold with a bad value is still a known name, so its rules do not also fail
    rules = _rules(docs, {**dict.fromkeys(broken, 0.0), **values}, errors, {**param_defaults(), **defaults})
    if errors:
        raise RuleError(_in_file_order(errors, files))
    ordered = sorted(enumerate(rules), key=lambda pair: (pair[1].priority, pair[0]))
    return RuleSet(tuple(rule for _, rule in ordered), MappingProxyType(dict(values)), tuple(files))


def _in_file_order(errors: list[str], files: list[str]) -> list[str]:
    """Errors sorted by file (in load order) and line; others (overrides) last."""
    rank = {path: index for index, path in enumerate(files)}

    def key(message: str) -> tuple[int, int]:
        for path, index in rank.items():
            prefix = f"{path}:"
            if message.startswith(prefix):
                line = message[len(prefix):].split(":", 1)[0]
                return index, int(line) if line.isdigit() else 0
        return len(rank), 0
    return sorted(errors, key=key)


# -- YAML with places -------------------------------------------------------------------------

@dataclass
class _Doc:
    path: str
    loader: yaml.SafeLoader
    root: yaml.MappingNode

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)


def _read(path: str, errors: list[str]) -> _Doc | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        errors.append(f"{path}: cannot read: {exc.strerror}")
        return None
    if len(data) > MAX_FILE_BYTES:
        errors.append(f"{path}: file is larger than {MAX_FILE_BYTES} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        errors.append(f"{path}: not UTF-8 text")
        return None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark else "1"
        errors.append(f"{path}:{line}: not valid YAML: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        errors.append(f"{path}:1: not valid YAML: {exc}")
        return None
    if root is None:
        errors.append(f"{path}:1: the file is empty; expected 'rules:' (and optionally 'thresholds:')")
        return None
    if not isinstance(root, yaml.MappingNode):
        errors.append(f"{path}:{root.start_mark.line + 1}: expected a mapping with 'rules:' and 'thresholds:'")
        return None
    doc = _Doc(path, loader, root)
    for key, _node, line in _items(doc, root, errors, where=""):
        if key not in TOP_KEYS:
            errors.append(f"{path}:{line}: unknown top-level key {_show(key)} (expected {', '.join(TOP_KEYS)})")
    return doc


def _items(doc: _Doc, node: yaml.MappingNode, errors: list[str], *, where: str) -> list[tuple[str, yaml.Node, int]]:
    """(key, value node, line) of a mapping; reports non-string and duplicate keys."""
    seen: dict[str, int] = {}
    items = []
    for key_node, value_node in node.value:
        line = doc.line(key_node)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            errors.append(f"{doc.path}:{line}: {where}keys must be plain strings")
            continue
        key = key_node.value
        if key in seen:
            errors.append(f"{doc.path}:{line}: {where}duplicate key {_show(key)} (first at line {seen[key]})")
            continue
        seen[key] = line
        items.append((key, value_node, line))
    return items


def _section(doc: _Doc, key: str) -> yaml.Node | None:
    for key_node, value_node in doc.root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


# -- thresholds -------------------------------------------------------------------------------

def _thresholds(docs: list[_Doc], errors: list[str]) -> tuple[dict[str, tuple[float, str]], set[str]]:
    found: dict[str, tuple[float, str]] = {}
    broken: set[str] = set()
    for doc in docs:
        node = _section(doc, "thresholds")
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            continue
        if not isinstance(node, yaml.MappingNode):
            errors.append(f"{doc.path}:{doc.line(node)}: thresholds: expected a mapping of name: number")
            continue
        for name, value_node, line in _items(doc, node, errors, where="thresholds: "):
            place = f"{doc.path}:{line}"
            problem = _threshold_problem(name, doc.value(value_node))
            if problem:
                errors.append(f"{place}: thresholds: {problem}")
                if NAME_RE.match(name) and name not in RESERVED:
                    broken.add(name)
                continue
            value = float(doc.value(value_node))
            if name in found and found[name][0] != value:
                errors.append(f"{place}: thresholds: {_show(name)} is already {found[name][0]:g} at {found[name][1]}")
                continue
            found.setdefault(name, (value, place))
    return found, broken


def _threshold_problem(name: str, value: Any) -> str | None:
    if not NAME_RE.match(name):
        return f"{_show(name)} is not a valid name (lower case letters, digits and _, starting with a letter)"
    if name in RESERVED:
        return f"{_show(name)} is a metric or function name and cannot be a threshold"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{name}: expected a finite number, got {_show(value)}"
    return None


def _apply_overrides(found: dict[str, tuple[float, str]], overrides: Mapping[str, float], errors: list[str]) -> None:
    for name, value in overrides.items():
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            errors.append(f"threshold override: unknown threshold {_show(name)} (defined: {known})")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(f"threshold override: {name}: expected a finite number, got {_show(value)}")
        else:
            found[name] = (float(value), "override")


# -- rules ------------------------------------------------------------------------------------

def _rules(docs: list[_Doc], thresholds: Mapping[str, float], errors: list[str],
           defaults: Mapping[str, ParamValue]) -> list[Rule]:
    rules: list[Rule] = []
    names: dict[str, str] = {}
    for doc in docs:
        node = _section(doc, "rules")
        if node is None:
            if _section(doc, "thresholds") is None:
                errors.append(f"{doc.path}:1: missing 'rules:' (a list of rules)")
            continue
        if not isinstance(node, yaml.SequenceNode):
            errors.append(f"{doc.path}:{doc.line(node)}: rules: expected a list of rules")
            continue
        for index, rule_node in enumerate(node.value, start=1):
            rule = _RuleReader(doc, rule_node, index, thresholds, errors, defaults=defaults).read()
            if rule is None:
                continue
            if rule.name in names:
                errors.append(f"{rule.source}: rule {rule.name}: duplicate rule name (first at {names[rule.name]})")
                continue
            names[rule.name] = rule.source
            rules.append(rule)
    return rules


class _RuleReader:
    """Validates one rule mapping; every problem goes to `errors` with its line."""

    def __init__(self, doc: _Doc, node: yaml.Node, index: int, thresholds: Mapping[str, float],
                 errors: list[str], *, defaults: Mapping[str, ParamValue]) -> None:
        self.doc = doc
        self.defaults = defaults
        self.node = node
        self.thresholds = thresholds
        self.errors = errors
        self.name = f"#{index}"
        self.failed = False
        self.lines: dict[str, int] = {}

    def error(self, message: str, *, key: str | None = None) -> None:
        line = self.lines.get(key, self.doc.line(self.node)) if key else self.doc.line(self.node)
        self.errors.append(f"{self.doc.path}:{line}: rule {self.name}: {message}")
        self.failed = True

    def read(self) -> Rule | None:
        if not isinstance(self.node, yaml.MappingNode):
            self.error("expected a mapping (name:, when:, action:, ...)")
            return None
        items = _items(self.doc, self.node, self.errors, where=f"rule {self.name}: ")
        raw: dict[str, Any] = {}
        for key, value_node, line in items:
            self.lines[key] = line
            raw[key] = self.doc.value(value_node)
        name = raw.get("name")
        if isinstance(name, str) and RULE_NAME_RE.match(name):
            self.name = name
        elif "name" in raw:
            self.error(f"name must be letters, digits, '.', '_' or '-' (at most 63), got {_show(name)}", key="name")
        else:
            self.error("missing 'name'")
        for key in raw:
            if key not in RULE_KEYS:
                self.error(f"unknown key {_show(key)} (allowed: {', '.join(RULE_KEYS)})", key=key)
        return self.build(raw)

    def build(self, raw: dict[str, Any]) -> Rule | None:
        name = self.choice(raw, "action", tuple(PLUGINS), required=True)
        action = PLUGINS[name] if name else None
        scope = self.choice(raw, "scope", SCOPES, default="container")
        if action and scope and scope not in action.scopes:
            self.error(f"action {action.name} needs scope {' or '.join(action.scopes)}, not {scope}", key="scope")
        condition = self.condition(raw, scope)
        hold_samples, hold_seconds = self.hold(raw)
        params = self.params(raw, action)
        rule_fields = dict(
            description=self.typed(raw, "description", str, "a string", ""),
            enabled=self.typed(raw, "enabled", bool, "true or false", True),
            services=self.services(raw),
            labels=self.labels(raw),
            priority=self.integer(raw, "priority", 100, minimum=0),
            cooldown=self.duration(raw, "cooldown", 0.0, minimum=0.0),
        )
        if self.failed or condition is None or action is None or scope is None:
            return None
        source = f"{self.doc.path}:{self.doc.line(self.node)}"
        return Rule(name=self.name, action=action, scope=scope, condition=condition,
                    hold_samples=hold_samples, hold_seconds=hold_seconds,
                    params=MappingProxyType(params), source=source,
                    fingerprint=_fingerprint(raw, self.thresholds), **rule_fields)

    # -- field readers ----------------------------------------------------------------------

    def choice(self, raw: dict[str, Any], key: str, allowed: Sequence[str], *, required: bool = False,
               default: str | None = None) -> str | None:
        if key not in raw:
            if required:
                self.error(f"missing {_show(key)} (one of {', '.join(allowed)})")
            return default
        if raw[key] not in allowed:
            self.error(f"{key} must be one of {', '.join(allowed)}, got {_show(raw[key])}", key=key)
            return None
        return raw[key]

    def typed(self, raw: dict[str, Any], key: str, typ: type, what: str, default: Any) -> Any:
        value = raw.get(key, default)
        if type(value) is not typ:
            self.error(f"{key} must be {what}, got {_show(value)}", key=key)
            return default
        return value

    def integer(self, raw: dict[str, Any], key: str, default: int, *, minimum: int) -> int:
        value = raw.get(key, default)
        if type(value) is not int or value < minimum:
            self.error(f"{key} must be a whole number >= {minimum}, got {_show(value)}", key=key)
            return default
        return value

    def duration(self, raw: dict[str, Any], key: str, default: float | None, *, minimum: float) -> float | None:
        if key not in raw:
            return default
        seconds = parse_duration(raw[key])
        if seconds is None or seconds < minimum:
            self.error(f"{key} must be a duration like 30s, 2m, 1h or a number of seconds "
                       f">= {minimum:g}, got {_show(raw[key])}", key=key)
            return default
        return seconds

    def condition(self, raw: dict[str, Any], scope: str | None) -> Any:
        if "when" not in raw:
            self.error("missing 'when' (the condition)")
            return None
        if scope is None:
            return None
        try:
            return compile_condition(raw["when"], scope=scope, thresholds=self.thresholds)
        except ExprError as exc:
            for message in exc.errors:
                self.error(f"when: {message}", key="when")
            return None

    def hold(self, raw: dict[str, Any]) -> tuple[int, float | None]:
        value = raw.get("for", 1)
        if type(value) is int and value >= 1:
            return value, None
        seconds = parse_duration(value) if isinstance(value, str) else None
        if seconds is not None and seconds > 0:
            return 1, seconds
        self.error(f"for must be a number of consecutive samples (>= 1) or a duration like 90s, got {_show(value)}",
                   key="for")
        return 1, None

    def services(self, raw: dict[str, Any]) -> tuple[str, ...]:
        value = raw.get("services", ["*"])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.error(f"services must be a name pattern or a list of them (e.g. ['web-*']), got {_show(value)}",
                       key="services")
            return ("*",)
        return tuple(value)

    def labels(self, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        value = raw.get("labels", {})
        if not isinstance(value, dict):
            self.error(f"labels must be a mapping of label: value, got {_show(value)}", key="labels")
            return ()
        pairs = []
        for key, wanted in value.items():
            if isinstance(wanted, bool):
                wanted = "true" if wanted else "false"
            elif isinstance(wanted, (int, float)):
                wanted = str(wanted)
            if not isinstance(key, str) or not isinstance(wanted, str):
                self.error(f"labels: {_show(key)}: expected a string value, got {_show(wanted)}", key="labels")
                continue
            pairs.append((key, wanted))
        return tuple(sorted(pairs))

    def params(self, raw: dict[str, Any], action: ActionPlugin | None) -> dict[str, ParamValue]:
        """The action's parameters (each checked by its plugin's Param), defaults filled in; a
        parameter of another action is an error."""
        for key in all_params():
            if key in raw and action is not None and all(p.name != key for p in action.params):
                self.error(f"{key} applies to {' and '.join(takers(key))} rules, not {action.name}", key=key)
        params: dict[str, ParamValue] = {}
        for param in action.params if action is not None else ():
            default = self.defaults[param.name]
            if param.kind is ParamKind.COUNT:
                params[param.name] = self.integer(raw, param.name, int(default), minimum=int(param.minimum))
            else:
                value = self.duration(raw, param.name, float(default), minimum=float(param.minimum))
                params[param.name] = float(default) if value is None else value
        return params


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a text like "500ms", "30s", "2m", "1h"; None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def _fingerprint(raw: Mapping[str, Any], thresholds: Mapping[str, float]) -> str:
    text = repr(sorted((k, repr(v)) for k, v in raw.items() if k != "description"))
    text += repr(sorted(thresholds.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


