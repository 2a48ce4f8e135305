"""Reads rule files (YAML) into a RuleSet, strictly, reporting every error at once.

The YAML is composed into nodes first so every message can carry the line it is about:
`file:line: rule NAME: message`, in the manner of Prometheus' rulefmt. Unknown keys,
duplicate keys, wrong types, bad conditions, unknown names, bad action parameters and
duplicate rule names are all collected before anything is refused, so one run of
`swarmguard-controller check-rules` shows the operator everything to fix.
The format itself is documented in docs/rules.md.

Whatever the files hold, the only exception that leaves `load_rules` is RuleError: files are
opened without blocking and only if they are regular files, the YAML nesting depth is bounded
while composing, and node values are built by `_Doc.value` (never PyYAML's constructors),
which accepts only the plain YAML types, refuses tags, cycles, merge keys, control
characters and lone surrogates, and shares aliased values instead of expanding them.
tests/controller/test_rules_fuzz.py holds that line with hypothesis.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from controller.actions.plugin import ActionPlugin, ParamKind, ParamValue
from controller.actions.registry import PLUGINS, all_params, param_defaults, takers
from controller.rules.expr import DURATION_UNITS, RESERVED, SCOPES, ExprError, compile_condition, finite_number
from controller.rules.fields import (MAX_WHOLE, FieldProblem, label_pairs, names, show, threshold_problem,
                                     whole_number)
from controller.rules.ruleset import Rule, RuleError, RuleSet
from controller.rules.thresholds import NAME_RE

MAX_FILE_BYTES = 1 << 20
MAX_NESTING = 64  # YAML collection depth; real rule files need 4
MAX_SECONDS = 365 * 86400.0  # longest duration (cooldown, for, exclusion_ttl): a year
# Every pattern below validates a whole value: fullmatch, never `$` (which matches before a final newline).
RULE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?) *(ms|s|m|h)")
SERVICE_PATTERN_RE = re.compile(r"[A-Za-z0-9_.*?!\[\]-]{1,200}")  # a service name with glob characters
# In any text of a rule file: C0/C1 control characters other than tab and newline, and lone surrogates
# (they cannot be printed, logged as UTF-8 or typed into a label).
_BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_UNITS = DURATION_UNITS  # one table for rule keys and for durations inside conditions
TOP_KEYS = ("thresholds", "rules")
# A rule's own keys, then the parameters of every action (controller/actions/registry.py).
RULE_KEYS = ("name", "description", "enabled", "scope", "services", "labels", "when", "for",
             "action", "priority", "cooldown", *all_params())

class RuleFileError(Exception):
    """A rule file cannot be read; the message says why (without the path)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _reason(exc: OSError | ValueError) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_rule_file(path: str) -> bytes:
    """The bytes of one rule file, at most MAX_FILE_BYTES + 1 of them; raises RuleFileError.

    Only a regular file (or a symlink to one) is read: a FIFO would block the reader until
    something writes to it, a device may never end. The type is checked before opening and
    again on the open descriptor, which is opened non-blocking, so a file swapped for a FIFO
    in between cannot hang the controller either.
    """
    try:
        before = os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            raise RuleFileError("broken symbolic link (its target does not exist)") from None
        raise RuleFileError("no such file or directory", missing=True) from None
    except (OSError, ValueError) as exc:
        raise RuleFileError(f"cannot read: {_reason(exc)}") from None
    if not stat.S_ISREG(before.st_mode):
        raise RuleFileError(f"not a regular file ({_kind(before.st_mode)}); rule files must be regular files")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RuleFileError("no such file or directory", missing=True) from None
    except (OSError, ValueError) as exc:
        raise RuleFileError(f"cannot read: {_reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RuleFileError(f"not a regular file ({_kind(mode)}); rule files must be regular files")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise RuleFileError(f"cannot read: {_reason(exc)}") from None
    finally:
        os.close(fd)


def rule_files(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The files behind `paths` (a directory means its *.yml and *.yaml, hidden ones aside), and errors.

    Never raises: a path that cannot be looked at is an error message. Files are listed
    whatever their type; `read_rule_file` refuses the ones that are not regular files.
    """
    files: list[str] = []
    errors: list[str] = []
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            broken = os.path.lexists(path)
            errors.append(f"{path}: {'broken symbolic link' if broken else 'no such file or directory'}")
            continue
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: cannot read: {_reason(exc)}")
            continue
        if not is_dir:
            files.append(path)
            continue
        try:
            names = os.listdir(path)
        except OSError as exc:
            errors.append(f"{path}: cannot list the directory: {_reason(exc)}")
            continue
        files.extend(sorted(os.path.join(path, name) for name in names
                            if name.endswith((".yml", ".yaml")) and not name.startswith(".")))
    return list(dict.fromkeys(files)), errors


def load_rules(paths: Sequence[str], *, overrides: Mapping[str, float] = MappingProxyType({}),
               defaults: Mapping[str, ParamValue] = MappingProxyType({})) -> RuleSet:
    """Loads and validates every rule file in `paths`; raises RuleError listing all errors.

    `defaults`: action parameters for rules that name none (the controller's `actions.*` settings,
    registry.param_defaults); a parameter missing there takes its plugin's default.
    """
    files, errors = rule_files(paths)
    named = set(paths)
    docs: list[_Doc] = []
    for path in list(files):
        doc = _read(path, errors, listed=path not in named)
        if isinstance(doc, _Vanished):
            files.remove(path)  # deleted between listing and reading: not part of the set any more
        elif doc is not None:
            docs.append(doc)
    if not files and not errors:
        where = ", ".join(paths)
        errors.append(f"no rule files (*.yml, *.yaml) in {where}" if where else "no rule files given")
    return _ruleset(docs, files, errors, overrides=overrides, defaults=defaults)


def load_rule_texts(texts: Sequence[tuple[str, bytes]], *, overrides: Mapping[str, float] = MappingProxyType({}),
                    defaults: Mapping[str, ParamValue] = MappingProxyType({})) -> RuleSet:
    """`load_rules` for files that are already in memory: (name, bytes) pairs in load order, e.g. the
    files of a rule set stored as a Swarm config. The same checks, the same messages, with `name`
    where `load_rules` names the path."""
    errors: list[str] = []
    docs = [doc for name, data in texts if (doc := _parse(name, data, errors)) is not None]
    if not texts:
        errors.append("no rule files given")
    return _ruleset(docs, [name for name, _ in texts], errors, overrides=overrides, defaults=defaults)


def _ruleset(docs: list[_Doc], files: list[str], errors: list[str], *, overrides: Mapping[str, float],
             defaults: Mapping[str, ParamValue]) -> RuleSet:
    """The RuleSet of parsed documents, or RuleError with `errors` and every problem found in them."""
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
    longest_first = sorted(rank, key=len, reverse=True)  # "a:1.yml" before "a", whose prefix it shares

    def key(message: str) -> tuple[int, int]:
        for path in longest_first:
            prefix = f"{path}:"
            if message.startswith(prefix):
                line = _LINE_RE.match(message, len(prefix))
                return rank[path], int(line.group(1)) if line else 0
        return len(rank), 0
    return sorted(errors, key=key)


_LINE_RE = re.compile(r"([0-9]+):")  # ASCII digits only: str.isdigit() also takes '²', which int() refuses


# -- YAML with places -------------------------------------------------------------------------

_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP, _MERGE = (
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge"))
_SCALAR_TAGS = (_STR, _INT, _FLOAT, _BOOL, _NULL)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, used to compose nodes only, with bounded nesting.

    Composing is recursive in PyYAML: a file of `[[[[...` would exhaust the stack (RecursionError),
    so nesting deeper than MAX_NESTING is a YAML error with its line. Dates and the YAML 1.1 `=`
    and `!`/`&`/`*` scalar types are read as text: no rule field takes them, and a description
    may well mention a date.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag.rsplit(":", 1)[-1] not in ("timestamp", "value", "yaml")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nesting = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1


# YAML 1.1 wants a dot in a float (`1.0e+3`); `1e3` and `2E-5` are numbers too, as in YAML 1.2.
_Loader.add_implicit_resolver(_FLOAT, re.compile(r"[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+\Z"), list("-+0123456789"))


class _BadValue(Exception):
    """A YAML value no rule field can take (a tag, a cycle, a control character...)."""

    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1


def _tag_text(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _tag_problem(node: yaml.Node) -> str | None:
    """Why `node`'s YAML tag is refused, or None for the plain types (str, int, float, bool, null, seq, map)."""
    allowed = {yaml.ScalarNode: _SCALAR_TAGS, yaml.SequenceNode: (_SEQ,), yaml.MappingNode: (_MAP,)}
    if node.tag in allowed.get(type(node), ()):
        return None
    return (f"YAML tag {show(_tag_text(node.tag))} is not allowed "
            "(rule files hold plain strings, numbers, true/false, lists and mappings)")


def _scalar(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """The value of a scalar with a plain tag; _BadValue if its text does not fit an explicit tag."""
    text, tag = node.value, node.tag
    if tag == _STR:
        bad = _BAD_CHARS.search(text)
        if bad:
            raise _BadValue(f"text contains the character U+{ord(bad.group()):04X} (control characters and "
                            "lone surrogates are not allowed)", node)
        return text
    implicit = loader.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    fits = implicit == tag or (tag == _FLOAT and implicit == _INT)
    what = {_INT: "a whole number", _FLOAT: "a number", _BOOL: "true or false", _NULL: "null"}[tag]
    if not fits:
        raise _BadValue(f"{show(text)} is not {what} (tag {_tag_text(tag)})", node)
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return loader.bool_values[text.lower()]
    try:
        return loader.construct_yaml_int(node) if tag == _INT else loader.construct_yaml_float(node)
    except (ValueError, ArithmeticError):  # e.g. more digits than Python converts (sys.get_int_max_str_digits)
        raise _BadValue(f"{show(text)} is not a usable number", node) from None


@dataclass
class _Doc:
    path: str
    loader: _Loader
    root: yaml.MappingNode
    built: dict[int, Any] = field(default_factory=dict)  # node id -> value, so aliases share one value

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + 1

    def value(self, node: yaml.Node) -> Any:
        """The Python value of `node`: str, int, float, bool, None, list or dict; raises _BadValue.

        An alias is built once and shared, so an alias bomb costs no more than its text; a
        collection that contains itself is refused. Depth is bounded by _Loader.
        """
        return self._build(node, set())

    def _build(self, node: yaml.Node, open_nodes: set[int]) -> Any:
        key = id(node)
        if key in self.built:
            return self.built[key]
        if key in open_nodes:
            raise _BadValue("a YAML alias refers to the list or mapping that contains it", node)
        problem = _tag_problem(node)
        if problem:
            raise _BadValue(problem, node)
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = _scalar(self.loader, node)
        else:
            open_nodes.add(key)
            try:
                value = self._collection(node, open_nodes)
            finally:
                open_nodes.discard(key)
        self.built[key] = value
        return value

    def _collection(self, node: yaml.Node, open_nodes: set[int]) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, open_nodes) for item in node.value]
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _BadValue("merge keys (<<) are not supported; write the keys out", key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadValue("a key must be a plain value, not a list or a mapping", key_node)
            key = self._build(key_node, open_nodes)
            if key in mapping:
                raise _BadValue(f"duplicate key {show(key)}", key_node)
            mapping[key] = self._build(value_node, open_nodes)
        return mapping


class _Vanished:
    """_read's answer for a listed file deleted before it could be read."""


_GONE = _Vanished()


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, max(0, position)) + 1


def _yaml_error(path: str, text: str, exc: yaml.YAMLError, *, noun: str) -> str:
    """One `file:line: not valid YAML: ...` message for any PyYAML error; `noun` is what the file is."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = _line_at(text, exc.position)
        return (f"{path}:{line}: not valid YAML: the character U+{exc.character:04X} is not allowed in a {noun}"
                if isinstance(exc.character, int) else f"{path}:{line}: not valid YAML: {exc.reason}")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        if exc.context == "expected a single document in the stream":
            return f"{path}:{line}: not valid YAML: a second document ('---'); a {noun} holds one document"
        return f"{path}:{line}: not valid YAML: {exc.problem or exc.context}"
    return f"{path}:1: not valid YAML: {exc}"


def _read(path: str, errors: list[str], *, listed: bool) -> _Doc | _Vanished | None:
    try:
        data = read_rule_file(path)
    except RuleFileError as exc:
        if exc.missing and listed:
            return _GONE
        errors.append(f"{path}: {exc}")
        return None
    return _parse(path, data, errors)


@dataclass(frozen=True)
class FileKind:
    """What a file of the rule family is, for the messages about its whole: rule file or rule test file."""

    noun: str  # "rule file"
    empty: str  # what an empty file should have held
    shape: str  # what the document should be


RULE_FILE = FileKind("rule file", empty="expected 'rules:' (and optionally 'thresholds:')",
                     shape="expected a mapping with 'rules:' and 'thresholds:'")


def compose_file(path: str, data: bytes, errors: list[str], *, kind: FileKind = RULE_FILE) -> _Doc | None:
    """A file's bytes as a document whose root is a mapping, or None after adding its problem to `errors`:
    too large, not UTF-8, not valid YAML (bounded nesting), empty, a tag, not a mapping."""
    if len(data) > MAX_FILE_BYTES:
        errors.append(f"{path}: file is larger than {MAX_FILE_BYTES} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        errors.append(f"{path}:{line}: not UTF-8 text")
        return None
    try:
        loader = _Loader(text)  # the reader checks the characters here already
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        errors.append(_yaml_error(path, text, exc, noun=kind.noun))
        return None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL and not root.value):
        errors.append(f"{path}:1: the file is empty; {kind.empty}")
        return None
    problem = _tag_problem(root)
    if problem or not isinstance(root, yaml.MappingNode):
        errors.append(f"{path}:{root.start_mark.line + 1}: {problem or kind.shape}")
        return None
    return _Doc(path, loader, root)


def _parse(path: str, data: bytes, errors: list[str]) -> _Doc | None:
    """One rule file's bytes as a document, or None after adding every problem to `errors`."""
    doc = compose_file(path, data, errors)
    if doc is None:
        return None
    for key, _node, line in _items(doc, doc.root, errors, where=""):
        if key not in TOP_KEYS:
            errors.append(f"{path}:{line}: unknown top-level key {show(key)} (expected {', '.join(TOP_KEYS)})")
    return doc


def _items(doc: _Doc, node: yaml.MappingNode, errors: list[str], *, where: str) -> list[tuple[str, yaml.Node, int]]:
    """(key, value node, line) of a mapping; reports non-string and duplicate keys."""
    seen: dict[str, int] = {}
    items = []
    for key_node, value_node in node.value:
        line = doc.line(key_node)
        if key_node.tag == _MERGE:
            errors.append(f"{doc.path}:{line}: {where}merge keys (<<) are not supported; write the keys out")
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
            got = show(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "a list or a mapping"
            errors.append(f"{doc.path}:{line}: {where}keys must be plain strings, got {got}")
            continue
        key = key_node.value
        if key in seen:
            errors.append(f"{doc.path}:{line}: {where}duplicate key {show(key)} (first at line {seen[key]})")
            continue
        seen[key] = line
        items.append((key, value_node, line))
    return items


def _section(doc: _Doc, key: str) -> yaml.Node | None:
    for key_node, value_node in doc.root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR and key_node.value == key:
            node: yaml.Node = value_node
            return node
    return None


# -- thresholds -------------------------------------------------------------------------------

def _thresholds(docs: list[_Doc], errors: list[str]) -> tuple[dict[str, tuple[float, str]], set[str]]:
    found: dict[str, tuple[float, str]] = {}
    broken: set[str] = set()
    for doc in docs:
        node = _section(doc, "thresholds")
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            continue
        problem = _tag_problem(node)
        if problem:
            errors.append(f"{doc.path}:{doc.line(node)}: thresholds: {problem}")
            continue
        if not isinstance(node, yaml.MappingNode):
            errors.append(f"{doc.path}:{doc.line(node)}: thresholds: expected a mapping of name: number")
            continue
        for name, value_node, line in _items(doc, node, errors, where="thresholds: "):
            place = f"{doc.path}:{line}"
            try:
                raw = doc.value(value_node)
            except _BadValue as exc:
                problem = threshold_problem(name, 0.0) or f"{name}: {exc}"
                place = f"{doc.path}:{exc.line}"
            else:
                problem = threshold_problem(name, raw)
            if problem:
                errors.append(f"{place}: thresholds: {problem}")
                if NAME_RE.fullmatch(name) and name not in RESERVED:
                    broken.add(name)
                continue
            value = float(raw)
            if name in found and found[name][0] != value:
                errors.append(f"{place}: thresholds: {show(name)} is already {found[name][0]:g} at {found[name][1]}")
                continue
            found.setdefault(name, (value, place))
    return found, broken


def _apply_overrides(found: dict[str, tuple[float, str]], overrides: Mapping[str, float], errors: list[str]) -> None:
    for name, value in overrides.items():
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            errors.append(f"threshold override: unknown threshold {show(name)} (defined: {known})")
        else:
            number = finite_number(value)
            if number is None:
                errors.append(f"threshold override: {name}: expected a finite number, got {show(value)}")
            else:
                found[name] = (number, "override")


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
        problem = _tag_problem(node)
        if problem:
            errors.append(f"{doc.path}:{doc.line(node)}: rules: {problem}")
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


_REFUSED = object()  # stands for a value _Doc.value refused; no field reader accepts it


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
        self.reported: set[str] = set()  # keys whose value was refused as YAML: one message each is enough

    def error(self, message: str, *, key: str | None = None) -> None:
        self.failed = True
        if key is not None and key in self.reported:
            return
        line = self.lines.get(key, self.doc.line(self.node)) if key else self.doc.line(self.node)
        self.errors.append(f"{self.doc.path}:{line}: rule {self.name}: {message}")

    def read(self) -> Rule | None:
        problem = _tag_problem(self.node)
        if problem:
            self.error(problem)
            return None
        if not isinstance(self.node, yaml.MappingNode):
            self.error("expected a mapping (name:, when:, action:, ...)")
            return None
        items = _items(self.doc, self.node, self.errors, where=f"rule {self.name}: ")
        raw: dict[str, Any] = {}
        refused: list[tuple[str, _BadValue]] = []
        for key, value_node, line in items:
            self.lines[key] = line
            try:
                raw[key] = self.doc.value(value_node)
            except _BadValue as refusal:
                refused.append((key, refusal))
                raw[key] = _REFUSED  # present (so not "missing"), and wrong for every field reader
        name = raw.get("name")
        if isinstance(name, str) and RULE_NAME_RE.fullmatch(name):
            self.name = name
        for key, bad in refused:
            if key in RULE_KEYS:  # an unknown key is reported as such, whatever its value
                self.lines[key] = bad.line
                self.error(f"{key}: {bad}", key=key)
                self.reported.add(key)
        if "name" not in raw:
            self.error("missing 'name'")
        elif self.name != name:
            self.error(f"name must be letters, digits, '.', '_' or '-' (at most 63), got {show(name)}", key="name")
        for key in raw:
            if key not in RULE_KEYS:
                self.error(f"unknown key {show(key)} (allowed: {', '.join(RULE_KEYS)})", key=key)
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
                self.error(f"missing {show(key)} (one of {', '.join(allowed)})")
            return default
        if raw[key] not in allowed:
            self.error(f"{key} must be one of {', '.join(allowed)}, got {show(raw[key])}", key=key)
            return None
        return str(raw[key])

    def typed(self, raw: dict[str, Any], key: str, typ: type, what: str, default: Any) -> Any:
        value = raw.get(key, default)
        if type(value) is not typ:
            self.error(f"{key} must be {what}, got {show(value)}", key=key)
            return default
        return value

    def integer(self, raw: dict[str, Any], key: str, default: int, *, minimum: int, maximum: int = MAX_WHOLE) -> int:
        try:
            return whole_number(key, raw.get(key, default), minimum=minimum, maximum=maximum)
        except FieldProblem as exc:
            self.error(str(exc), key=key)
            return default

    def duration(self, raw: dict[str, Any], key: str, default: float | None, *, minimum: float) -> float | None:
        if key not in raw:
            return default
        seconds = parse_duration(raw[key])
        if seconds is None or not minimum <= seconds <= MAX_SECONDS:
            self.error(f"{key} must be a duration like 30s, 2m, 1h or a number of seconds "
                       f">= {minimum:g} (at most {MAX_SECONDS:.0f}, a year), got {show(raw[key])}", key=key)
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
        if type(value) is int and 1 <= value <= MAX_WHOLE:
            return value, None
        seconds = parse_duration(value) if isinstance(value, str) else None
        if seconds is not None and 0 < seconds <= MAX_SECONDS:
            return 1, seconds
        self.error(f"for must be a number of consecutive samples (1 to {MAX_WHOLE}) or a duration like 90s "
                   f"(at most a year), got {show(value)}", key="for")
        return 1, None

    def services(self, raw: dict[str, Any]) -> tuple[str, ...]:
        try:
            value = names("services", raw.get("services", ["*"]), what="a name pattern or a list of them (e.g. ['web-*'])")
        except FieldProblem as exc:
            self.error(str(exc), key="services")
            return ("*",)
        bad = [pattern for pattern in value if not SERVICE_PATTERN_RE.fullmatch(pattern)]
        if bad:
            self.error(f"services: {show(bad[0])} is not a service name pattern (letters, digits, _ . - and the "
                       "glob characters * ? [ ] !, at most 200)", key="services")
            return ("*",)
        return tuple(value)

    def labels(self, raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        pairs, problems = label_pairs(raw.get("labels", {}))
        for problem in problems:
            self.error(problem, key="labels")
        return pairs

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
    """Seconds from a number or a text like "500ms", "30s", "2m", "1h"; None if not a finite duration."""
    if isinstance(value, str):
        match = DURATION_RE.fullmatch(value)
        seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else None
    else:
        seconds = finite_number(value)
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _fingerprint(raw: Mapping[str, Any], thresholds: Mapping[str, float]) -> str:
    text = repr(sorted((k, repr(v)) for k, v in raw.items() if k != "description"))
    text += repr(sorted(thresholds.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


