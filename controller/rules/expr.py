"""The rule condition language: a small, safe expression compiler.

Rule conditions are written by operators in YAML (`when: cpu > cpu_high and net < net_low`).
They are parsed once with `ast.parse(mode="eval")`, every node is checked against a
whitelist, names are resolved at load time (thresholds become constants), and the tree is
turned into nested Python closures. Nothing is ever passed to `eval`, and anything outside
the language (attributes, subscripts, calls to unknown names, lambdas, comprehensions,
strings, `**`, walrus, dunder names, deep nesting, long text) is refused with a clear
message before a rule can run. docs/rules.md describes the language for rule writers.

Evaluation is typed at compile time: comparisons take numbers and give a condition,
`and`/`or`/`not` take conditions, and the whole expression must be a condition.
A value that does not exist at evaluation time (division by zero, a node without metrics,
an empty aggregate) makes the whole condition false: a rule never fires on missing data.
Every figure must also be a finite number: a NaN or an infinity in a sample, or arithmetic
that overflows, is a missing value too (the NoValue exception), so a comparison never sees
a NaN and `not` cannot turn one into true. `and`, `or` and chained comparisons evaluate all
their operands, so a missing figure anywhere makes the whole condition false, in any order.
Constant parts that overflow are refused when the rule is loaded. `Condition.holds` and
`explain` never raise.
"""
from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from controller.model import ContainerMetrics, NodeMetrics, task_skew
from sgcommon.metricset import CONTAINER_KEYS, NODE_KEYS

MAX_TEXT = 500  # characters in one condition
MAX_DEPTH = 24  # nesting depth of the syntax tree
MAX_WINDOW = 60  # samples in a container-scope window function

CONTAINER_METRICS = CONTAINER_KEYS  # sgcommon.metricset: the figures every component shares
NODE_METRICS = NODE_KEYS
FUNCTIONS = ("avg", "max", "min", "sum")
SCOPES = ("container", "service")
# Service-scope figures read from Swarm's own task list (controller/services.py), not from samples.
PLACEMENT_FIGURES = ("task_skew", "nodes_ready")
RESERVED = frozenset(CONTAINER_METRICS + NODE_METRICS + FUNCTIONS + ("replicas", "containers") + PLACEMENT_FIGURES)


class NoValue(Exception):
    """A value the condition needs does not exist right now; the condition is false."""


class ExprError(ValueError):
    """The condition is not valid; `.errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ContainerEnv:
    """What a container-scope condition sees: one sample, its window, its node and service."""

    __slots__ = ("sample", "history", "node", "replicas")

    def __init__(
        self,
        sample: ContainerMetrics,
        history: Sequence[ContainerMetrics],
        node: NodeMetrics | None,
        replicas: int | None,
    ) -> None:
        self.sample = sample
        self.history = history  # oldest first, ends with `sample`
        self.node = node
        self.replicas = replicas


class ServiceEnv:
    """What a service-scope condition sees: the latest sample of each of its containers, and how
    Swarm spreads its running tasks over the nodes eligible for it (None: not known)."""

    __slots__ = ("samples", "replicas", "tasks_per_node")

    def __init__(self, samples: Sequence[ContainerMetrics], replicas: int | None,
                 tasks_per_node: Mapping[str, int] | None = None) -> None:
        self.samples = samples
        self.replicas = replicas
        self.tasks_per_node = tasks_per_node


Fn = Callable[[Any], Any]


@dataclass(frozen=True)
class _Term:
    """A compiled sub-expression: a constant (`fn` is None) or a closure over an env."""

    kind: str  # "num", "bool", or "any" after an error (so one mistake is reported once)
    fn: Fn | None = None
    const: Any = None
    getter: Fn | None = None  # for a plain sample metric: the unchecked read, for _compare_one's fast path

    def closure(self) -> Fn:
        if self.fn is not None:
            return self.fn
        value = self.const
        return lambda env: value


@dataclass(frozen=True)
class Condition:
    """A compiled condition. Call `holds(env)`; `explain(env)` lists the figures it used."""

    text: str
    scope: str
    window: int  # the longest container window a function asks for (1 if none)
    _fn: Fn
    _figures: tuple[tuple[str, Fn], ...]
    # False when a service-scope condition reads no container sample (only Swarm's figures, e.g.
    # `task_skew >= 2`): the engine then counts Swarm reads instead of samples (controller/decide.py).
    needs_samples: bool = True

    def holds(self, env: Any) -> bool:
        try:
            return bool(self._fn(env))
        except (NoValue, ArithmeticError):
            return False

    def explain(self, env: Any) -> str:
        parts = []
        for label, fn in self._figures:
            try:
                parts.append(f"{label}={_fmt(fn(env))}")
            except (NoValue, ArithmeticError):
                parts.append(f"{label}=n/a")
        return ", ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_NOT_ALLOWED = {
    ast.Attribute: "attribute access (.) is not allowed",
    ast.Subscript: "subscripts ([...]) are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.Starred: "starred arguments (*) are not allowed",
    ast.IfExp: "conditional expressions (x if c else y) are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}

_BINOPS: dict[type, tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
}
_REFUSED_BINOPS = {ast.Pow: "**", ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@",
                   ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def compile_condition(text: Any, *, scope: str, thresholds: Mapping[str, float]) -> Condition:
    """Compiles `text` for `scope` ("container" or "service"), or raises ExprError."""
    if not isinstance(text, str):
        raise ExprError([f"condition must be a string, got {type(text).__name__}"])
    if scope not in SCOPES:
        raise ExprError([f"unknown scope {scope!r}"])
    if not text.strip():
        raise ExprError(["condition is empty"])
    if len(text) > MAX_TEXT:
        raise ExprError([f"condition is too long ({len(text)} characters, at most {MAX_TEXT})"])
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError([f"syntax error: {exc.msg} (column {exc.offset})"]) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(["condition cannot be parsed"]) from None
    if _depth(tree) > MAX_DEPTH:
        raise ExprError([f"condition is nested too deeply (at most {MAX_DEPTH} levels)"])
    return _Compiler(text.strip(), scope, thresholds).run(tree)


class _Compiler:
    def __init__(self, text: str, scope: str, thresholds: Mapping[str, float]) -> None:
        self.text = text
        self.scope = scope
        self.thresholds = thresholds
        self.errors: list[str] = []
        self.window = 1
        self.figures: dict[str, Fn] = {}
        self.reads_samples = scope == "container"

    def run(self, tree: ast.Expression) -> Condition:
        term = self.node(tree.body)
        if not self.errors and term.kind not in ("bool", "any"):
            self.errors.append("condition must be a comparison (e.g. cpu > cpu_high), not a bare number")
        if self.errors:
            raise ExprError(list(dict.fromkeys(self.errors)))
        return Condition(self.text, self.scope, self.window, term.closure(), tuple(self.figures.items()),
                         needs_samples=self.reads_samples)

    def fail(self, message: str) -> _Term:
        self.errors.append(message)
        return _Term("any", const=0)

    def node(self, node: ast.AST) -> _Term:
        handler = getattr(self, f"on_{type(node).__name__}", None)
        if handler is not None:
            term: _Term = handler(node)
            return term
        for cls, message in _NOT_ALLOWED.items():
            if isinstance(node, cls):
                return self.fail(message)
        return self.fail(f"{type(node).__name__} is not allowed in a condition")

    def expect(self, term: _Term, kind: str, what: str) -> None:
        if term.kind not in (kind, "any"):
            wanted = "a comparison" if kind == "bool" else "a number"
            got = "a comparison" if term.kind == "bool" else "a number"
            self.errors.append(f"{what} needs {wanted}, got {got}")

    # -- leaves ---------------------------------------------------------------------------

    def on_Constant(self, node: ast.Constant) -> _Term:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, (str, bytes)):
                return self.fail("strings are not allowed")
            return self.fail(f"constant {value!r} is not allowed; only numbers are")
        number = _finite_or_none(value)
        if number is None:
            return self.fail(f"number {self.segment(node)} is out of range")
        return _Term("num", const=number)

    def segment(self, node: ast.AST) -> str:
        """The source text of `node`, shortened for a message."""
        text = ast.get_source_segment(self.text, node) or type(node).__name__
        return text if len(text) <= 40 else text[:37] + "..."

    def on_Name(self, node: ast.Name) -> _Term:
        name = node.id
        if name.startswith("_"):
            return self.fail(f"name {name!r} is not allowed (names starting with _ are refused)")
        if name in self.thresholds:
            value = _finite_or_none(self.thresholds[name])
            if value is None:
                return self.fail(f"threshold {name!r} is not a finite number")
            self.figures.setdefault(name, _const_fn(value))
            return _Term("num", const=value)
        fn = self.variable(name)
        if fn is None:
            return self.fail(self.unknown(name))
        self.figures.setdefault(name, fn)
        plain = self.scope == "container" and name in CONTAINER_METRICS
        return _Term("num", fn=fn, getter=attrgetter(f"sample.{name}") if plain else None)

    def variable(self, name: str) -> Fn | None:
        if name == "replicas":
            return _replicas
        if self.scope == "container":
            if name in CONTAINER_METRICS:
                return _sample_metric(name)
            if name in NODE_METRICS:
                return _node_metric(name[len("node_"):])
            return None
        if name == "containers":
            self.reads_samples = True
            return _container_count
        if name in PLACEMENT_FIGURES:
            return _placement_figure(name)
        if name in CONTAINER_METRICS:
            self.errors.append(
                f"metric {name!r} needs an aggregate in a service-scope rule, e.g. avg({name}) or sum({name})")
            return _const_fn(0.0)
        return None

    def unknown(self, name: str) -> str:
        if self.scope == "container":
            known = CONTAINER_METRICS + NODE_METRICS + ("replicas",)
        else:
            known = ("replicas", "containers", *PLACEMENT_FIGURES) + tuple(f"{f}(metric)" for f in FUNCTIONS)
        if name in FUNCTIONS:
            return f"{name} is a function: call it, e.g. {name}(cpu{', 3' if self.scope == 'container' else ''})"
        thresholds = ", ".join(sorted(self.thresholds)) or "none defined"
        return f"unknown name {name!r} (known: {', '.join(known)}; thresholds: {thresholds})"

    # -- functions ------------------------------------------------------------------------

    def on_Call(self, node: ast.Call) -> _Term:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            return self.fail(f"call to {shown!r} is not allowed; functions are {', '.join(FUNCTIONS)}")
        func = node.func.id
        if node.keywords:
            return self.fail(f"{func}() takes no keyword arguments")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            return self.fail("starred arguments (*) are not allowed")
        label = ast.get_source_segment(self.text, node) or ast.unparse(node)
        if self.scope == "container":
            fn = self.window_call(func, node.args)
        else:
            fn = self.aggregate_call(func, node.args)
        if fn is None:
            return _Term("any", const=0)
        self.figures.setdefault(label, fn)
        return _Term("num", fn=fn)

    def metric_arg(self, func: str, arg: ast.AST) -> str | None:
        if isinstance(arg, ast.Name) and arg.id in CONTAINER_METRICS:
            return arg.id
        self.errors.append(f"{func}() takes a container metric ({', '.join(CONTAINER_METRICS)}) as its first argument")
        return None

    def window_call(self, func: str, args: list[ast.expr]) -> Fn | None:
        if len(args) != 2:
            self.errors.append(
                f"{func}() in a container-scope rule takes a metric and a window of samples, e.g. {func}(cpu, 3)")
            return None
        metric = self.metric_arg(func, args[0])
        size = args[1]
        if not (isinstance(size, ast.Constant) and type(size.value) is int and 1 <= size.value <= MAX_WINDOW):
            self.errors.append(f"{func}(): the window must be a whole number of samples from 1 to {MAX_WINDOW}")
            return None
        if metric is None:
            return None
        self.window = max(self.window, size.value)
        return _window_fn(func, metric, size.value)

    def aggregate_call(self, func: str, args: list[ast.expr]) -> Fn | None:
        if len(args) != 1:
            self.errors.append(
                f"{func}() in a service-scope rule takes one metric, e.g. {func}(cpu), over the service's containers")
            return None
        metric = self.metric_arg(func, args[0])
        self.reads_samples = True
        return None if metric is None else _aggregate_fn(func, metric)

    # -- operators ------------------------------------------------------------------------

    def on_BoolOp(self, node: ast.BoolOp) -> _Term:
        word = "and" if isinstance(node.op, ast.And) else "or"
        terms = [self.node(value) for value in node.values]
        for term in terms:
            self.expect(term, "bool", f"'{word}'")
        fns = [term.closure() for term in terms]
        fn = fns[0]
        for nxt in fns[1:]:
            fn = _and(fn, nxt) if word == "and" else _or(fn, nxt)
        return _Term("bool", fn=fn)

    def on_UnaryOp(self, node: ast.UnaryOp) -> _Term:
        term = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            self.expect(term, "bool", "'not'")
            inner = term.closure()
            return _Term("bool", fn=lambda env: not inner(env))
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            self.expect(term, "num", "unary minus")
            sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
            if term.fn is None:
                return _Term("num", const=sign * term.const)
            inner = term.fn
            return _Term("num", fn=lambda env: sign * inner(env))
        return self.fail("the ~ operator is not allowed")

    def on_BinOp(self, node: ast.BinOp) -> _Term:
        if type(node.op) in _REFUSED_BINOPS:
            return self.fail(f"the {_REFUSED_BINOPS[type(node.op)]} operator is not allowed; use + - * /")
        symbol, op = _BINOPS[type(node.op)]
        left, right = self.node(node.left), self.node(node.right)
        self.expect(left, "num", f"'{symbol}'")
        self.expect(right, "num", f"'{symbol}'")
        if symbol == "/":
            op = _divide
            if right.fn is None and right.const == 0:
                return self.fail("division by a constant zero")
        if left.fn is None and right.fn is None:
            try:
                value = op(left.const, right.const)
            except NoValue:
                return self.fail("division by a constant zero")
            if not math.isfinite(value):
                return self.fail(f"{self.segment(node)} is out of range (the result overflows)")
            return _Term("num", const=value)
        return _Term("num", fn=_arithmetic(op, left, right))

    def on_Compare(self, node: ast.Compare) -> _Term:
        terms = [self.node(node.left)] + [self.node(c) for c in node.comparators]
        for term in terms:
            self.expect(term, "num", "a comparison")
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARE:
                return self.fail("only < <= > >= == != comparisons are allowed")
            ops.append(_COMPARE[type(op)])
        if len(ops) == 1:
            return _Term("bool", fn=_compare_one(ops[0], terms[0], terms[1]))
        fns = [term.closure() for term in terms]
        return _Term("bool", fn=_compare_chain(ops, fns))


def _finite_or_none(value: Any) -> float | None:
    """`value` as a float if it is a real, finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


def _finite(value: Any) -> float:
    """`value` if it is a finite number; NoValue for NaN, infinities, and anything that is not a number."""
    if value.__class__ is float and value - value == 0.0:  # the common case, kept cheap: inf-inf and nan-nan are nan
        return value
    number = _finite_or_none(value)
    if number is None:
        raise NoValue
    return number


def _const_fn(value: float) -> Fn:
    return lambda env: value


def _sample_metric(name: str) -> Fn:
    get = attrgetter(f"sample.{name}")

    def read(env: Any) -> float:
        value = get(env)
        if value.__class__ is float and value - value == 0.0:
            return value
        return _finite(value)
    return read


def _replicas(env: Any) -> float:
    if env.replicas is None:
        raise NoValue
    return _finite(env.replicas)


def _container_count(env: ServiceEnv) -> float:
    return len(env.samples)


def _placement_figure(name: str) -> Fn:
    """`task_skew`: most minus fewest running tasks of the service on one eligible node;
    `nodes_ready`: how many nodes are eligible for it (Ready, active, its constraints met)."""
    def read(env: ServiceEnv) -> float:
        counts = env.tasks_per_node
        if not counts:
            raise NoValue
        return float(len(counts) if name == "nodes_ready" else task_skew(counts))
    return read


def _node_metric(field: str) -> Fn:
    def read(env: ContainerEnv) -> float:
        node = env.node
        if node is None or node.stale:
            raise NoValue
        return _finite(getattr(node, field))
    return read


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise NoValue
    return a / b


def _arithmetic(op: Callable[[float, float], float], left: _Term, right: _Term) -> Fn:
    """`op` over two terms at run time; a result that overflows to an infinity is a missing value."""
    lf = left.closure()
    if right.fn is None:
        c = right.const

        def with_const(env: Any) -> float:
            value = op(lf(env), c)  # operands are finite floats, so the result is a float
            if value - value == 0.0:
                return value
            raise NoValue
        return with_const
    rf = right.fn

    def with_term(env: Any) -> float:
        value = op(lf(env), rf(env))
        if value - value == 0.0:
            return value
        raise NoValue
    return with_term


def _reduce(func: str, values: list[Any]) -> float:
    if not values:
        raise NoValue
    numbers = [_finite(value) for value in values]
    if func == "max":
        return max(numbers)
    if func == "min":
        return min(numbers)
    total = sum(numbers)
    if func == "sum":
        return _finite(total)
    if not math.isfinite(total):  # the sum overflows though the mean may not: scale first
        return _finite(sum(number / len(numbers) for number in numbers))
    return total / len(numbers)


def _window_fn(func: str, metric: str, size: int) -> Fn:
    get = attrgetter(metric)
    return lambda env: _reduce(func, [get(s) for s in env.history[-size:]])


def _aggregate_fn(func: str, metric: str) -> Fn:
    get = attrgetter(metric)
    return lambda env: _reduce(func, [get(s) for s in env.samples])


# `and`, `or` and chained comparisons evaluate every operand (no short-circuit), so a missing
# figure anywhere makes the whole condition false whatever the order of the operands.

def _and(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) & b(env)  # both are bools; & evaluates both


def _or(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) | b(env)


def _compare_one(op: Callable[[Any, Any], bool], left: _Term, right: _Term) -> Fn:
    if left.fn is None and right.fn is None:
        value = op(left.const, right.const)
        return lambda env: value
    if right.fn is None and left.getter is not None:
        return _metric_vs_const(op, left.getter, right.const)
    if right.fn is None:
        lf, c = left.closure(), right.const
        return {
            operator.gt: lambda env: lf(env) > c,
            operator.lt: lambda env: lf(env) < c,
            operator.ge: lambda env: lf(env) >= c,
            operator.le: lambda env: lf(env) <= c,
        }.get(op, lambda env: op(lf(env), c))
    lf, rf = left.closure(), right.closure()
    return lambda env: op(lf(env), rf(env))


def _metric_vs_const(op: Callable[[Any, Any], bool], get: Fn, c: float) -> Fn:
    """`metric OP constant`, the comparison most rules are made of, as one closure."""
    def compare(env: Any) -> bool:
        value = get(env)
        if value.__class__ is float and value - value == 0.0:  # finite: inf-inf and nan-nan are nan
            return op(value, c)
        return op(_finite(value), c)
    return compare


def _compare_chain(ops: list[Callable[[Any, Any], bool]], fns: list[Fn]) -> Fn:
    pairs = list(zip(ops, fns[1:]))
    first = fns[0]

    def chain(env: Any) -> bool:
        left = first(env)
        holds = True
        for op, fn in pairs:
            right = fn(env)
            holds = holds and op(left, right)
            left = right
        return holds
    return chain
