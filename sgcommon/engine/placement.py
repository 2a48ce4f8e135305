"""Swarm placement constraints, judged the way Swarm judges them: one matcher for every caller.

Why it exists: a migration must refuse to exclude the last node a service may run on, before it
writes anything, and the fake Engine API in the tests must place tasks as a real engine would. Both
use these pure functions, so a mistake here cannot pass unnoticed in one and be masked by the other;
`tests/lab/test_placement_on_lab.py` checks them against the real engine.

The semantics follow swarmkit's `manager/constraint/constraint.go`
(https://github.com/moby/swarmkit/blob/master/manager/constraint/constraint.go):
- An expression is `key==value` or `key!=value`. `==` is looked for first and the text is split at
  its first occurrence, so `a!=b` is a `!=` only if it holds no `==`.
- Key and value are trimmed of white space. The key must be `[A-Za-z_][A-Za-z0-9_.-]+`, the value
  letters, digits, white space and ``: - _ . * ( ) ? + [ ] \\ ^ $ | /`` (no `=`, `!`, `<`, `>`, `~`).
  Anything else is refused when the service is created (`ConstraintError` here).
- Keys are case-insensitive: `node.id`, `node.hostname`, `node.role`, `node.ip`, `node.platform.os`,
  `node.platform.arch`, `node.labels.<name>`, `engine.labels.<name>` (the label name itself is
  case-sensitive). Any other key matches no node, whatever the operator: the task stays pending
  ("no suitable node").
- Values compare case-insensitively and as whole strings (no globbing: `f*o` matches only `f*o`).
  A label the node lacks compares as the empty string, so `==` fails and `!=` holds.
- `node.ip` takes an address (equal) or a CIDR network (contains); any other value matches no node.
- Every constraint must hold (AND). Swarm's scheduler treats a list it cannot parse (never the case
  for a service the engine accepted) as no constraint at all; `satisfies` does the same.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

EQ, NE = "==", "!="
_OPERATORS = (EQ, NE)  # in swarmkit's order: `==` is looked for first
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9\-_.]+", re.ASCII)
_VALUE = re.compile(r"[A-Za-z0-9:\-_\t\n\f\r .*()?+\[\]\\^$|/]+", re.ASCII)
NODE_LABELS, ENGINE_LABELS = "node.labels.", "engine.labels."


class ConstraintError(ValueError):
    """A constraint the engine refuses when a service is created or updated."""


class NodeFacts(Protocol):
    """What a constraint can look at on a node (sgcommon.engine.swarm.NodeView has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def addr(self) -> str: ...
    @property
    def platform_os(self) -> str: ...
    @property
    def platform_arch(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def engine_labels(self) -> Mapping[str, str]: ...


class SchedulableNode(NodeFacts, Protocol):
    @property
    def schedulable(self) -> bool: ...


N = TypeVar("N", bound=SchedulableNode)


@dataclass(frozen=True)
class Constraint:
    key: str  # as written (case kept: label names are case-sensitive)
    op: str  # EQ or NE
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse(text: str) -> Constraint:
    """One constraint expression; ConstraintError says what the engine would refuse."""
    for op in _OPERATORS:
        if op not in text:
            continue
        key, _, value = text.partition(op)
        key, value = key.strip(), value.strip()
        if not _KEY.fullmatch(key):
            raise ConstraintError(f"key '{key}' is invalid")
        if not _VALUE.fullmatch(value):
            raise ConstraintError(f"value '{value}' is invalid")
        return Constraint(key, op, value)
    raise ConstraintError(f"constraint expected one operator from {', '.join(_OPERATORS)}")


def parse_all(texts: Iterable[str]) -> tuple[Constraint, ...]:
    """Every expression of a service's constraint list; ConstraintError on the first bad one."""
    return tuple(parse(text) for text in texts)


def matches(node: NodeFacts, constraint: Constraint) -> bool:
    """Whether `node` satisfies one parsed constraint."""
    key = constraint.key
    if _fold_equal(key, "node.ip"):
        return _ip_matches(node.addr, constraint)
    actual: str | None
    if _fold_equal(key, "node.id"):
        actual = node.id
    elif _fold_equal(key, "node.hostname"):
        actual = node.hostname
    elif _fold_equal(key, "node.role"):
        actual = node.role
    elif _fold_equal(key, "node.platform.os"):
        actual = node.platform_os
    elif _fold_equal(key, "node.platform.arch"):
        actual = node.platform_arch
    elif len(key) > len(NODE_LABELS) and _fold_equal(key[:len(NODE_LABELS)], NODE_LABELS):
        actual = node.labels.get(key[len(NODE_LABELS):], "")
    elif len(key) > len(ENGINE_LABELS) and _fold_equal(key[:len(ENGINE_LABELS)], ENGINE_LABELS):
        actual = node.engine_labels.get(key[len(ENGINE_LABELS):], "")
    else:
        return False  # a key Swarm does not know: no node is suitable
    return _fold_equal(constraint.value, actual) == (constraint.op == EQ)


def node_matches(node: NodeFacts, constraints: Sequence[Constraint]) -> bool:
    return all(matches(node, c) for c in constraints)


def satisfies(node: NodeFacts, texts: Iterable[str]) -> bool:
    """Whether `node` meets a service's constraint list (a list that does not parse constrains nothing,
    as in Swarm's scheduler; the engine refuses such a list before any service has it)."""
    try:
        constraints = parse_all(texts)
    except ConstraintError:
        return True
    return node_matches(node, constraints)


def eligible_nodes(nodes: Iterable[N], texts: Iterable[str]) -> list[N]:
    """The schedulable nodes (ready and active) that meet every constraint of the list."""
    texts = tuple(texts)
    return [n for n in nodes if n.schedulable and satisfies(n, texts)]


def _fold_equal(a: str, b: str) -> bool:
    """Go's strings.EqualFold: equal under simple (one character to one character) case folding."""
    if len(a) != len(b):
        return False
    return all(x == y or x.lower() == y.lower() or x.upper() == y.upper() for x, y in zip(a, b, strict=True))


def _ip_matches(addr: str, constraint: Constraint) -> bool:
    node_ip = _ip(addr)
    wanted = _ip(constraint.value)
    if wanted is not None:
        return (node_ip is not None and node_ip == wanted) == (constraint.op == EQ)
    if "/" in constraint.value:
        try:
            network = ipaddress.ip_network(constraint.value, strict=False)
        except ValueError:
            return False
        inside = node_ip is not None and node_ip.version == network.version and node_ip in network
        return inside == (constraint.op == EQ)
    return False  # neither an address nor a network: Swarm rejects every node


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as Go's net.ParseIP reads it (an IPv4-mapped IPv6 address is the IPv4 address)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
