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

`predict(metric, horizon[, window])` and `predict_se(...)` read a container's trend: the
least-squares line through its samples of the last `window` seconds (sgcommon/trend.py), at
`horizon` seconds after the newest sample, and that value's standard error. Durations (`10s`,
`500ms`, `2m`) are written as in the rest of a rule file; they are allowed only there and become
constants before the text is parsed. A fit is made at most once per container and call, and
only when the condition needs it: the parts of a top-level `and` run left to right and stop at the
first false one (the result cannot change: false), so a cheap guard first spares the fit.
The leading parts of that `and` that read only the sample's own figures are also compiled over the
sample itself (`Condition.guard`): the engine checks them before it builds an env, which at 1000
nodes is most of a cycle's evaluation spared (docs/scale.md). Both are made from the one parsed tree
by the same closures, so they cannot disagree.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from controller.model import ContainerMetrics, NodeMetrics, task_skew
from sgcommon.metricset import CONTAINER_KEYS, NODE_KEYS
from sgcommon.trend import MIN_SAMPLES, Fit, fit_sums

MAX_TEXT = 500  # characters in one condition
MAX_DEPTH = 24  # nesting depth of the syntax tree
MAX_WINDOW = 60  # samples in a container-scope window function

# predict() and predict_se(): a window in seconds, read from at most SAMPLES_PER_SECOND samples per
# second of it (the exporter samples every second; alerts add a confirming read and little more), and
# from at least the newest MIN_TREND_SAMPLES: a window of a second or two may hold the exporter's reads
# every 0.25 s of a fast memory climb (exporter/follow.py).
MAX_HORIZON = 300.0  # seconds ahead of the newest sample
MIN_TREND_WINDOW = 1.0  # one second holds one sweep sample, or four reads of a followed climb
MIN_TREND_SAMPLES = 12
MAX_TREND_WINDOW = 120.0  # the controller keeps 300 s of samples (cache_window)
DEFAULT_WINDOW_FACTOR = 3.0  # no window given: 3 x the horizon, within the bounds (at least 10 s)
DEFAULT_MIN_WINDOW = 10.0
SAMPLES_PER_SECOND = 2
TREND_COVERAGE = 0.5  # the samples in the window must span at least half of it

# Durations as the rest of a rule file writes them (controller/rules/loader.py uses this table too).
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# A number glued to a unit (or one space apart): never valid Python, so nothing else can match.
_DURATION_TOKEN = re.compile(r"(?<![\w.])([0-9]+(?:\.[0-9]+)?)([ \t]?)(ms|s|m|h)(?![\w.])")

CONTAINER_METRICS = CONTAINER_KEYS  # sgcommon.metricset: the figures every component shares
NODE_METRICS = NODE_KEYS
FUNCTIONS = ("avg", "max", "min", "sum")
TREND_FUNCTIONS = ("predict", "predict_se")
SCOPES = ("container", "service")
# Service-scope figures read from Swarm's own task list (controller/services.py), not from samples.
PLACEMENT_FIGURES = ("task_skew", "nodes_ready")
RESERVED = frozenset(CONTAINER_METRICS + NODE_METRICS + FUNCTIONS + TREND_FUNCTIONS + ("replicas", "containers")
                     + PLACEMENT_FIGURES)


class NoValue(Exception):
    """A value the condition needs does not exist right now; the condition is false."""


class ExprError(ValueError):
    """The condition is not valid; `.errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ContainerEnv:
    """What a container-scope condition sees: one sample, its window, its node and service.

    `history` may be given as a function that returns it: it is then called the first time a
    condition reads it (a top-level `and` stopped by a cheap guard never does), and once only.
    """

    __slots__ = ("sample", "_history", "node", "replicas", "fits")

    def __init__(
        self,
        sample: ContainerMetrics,
        history: Sequence[ContainerMetrics] | Callable[[], Sequence[ContainerMetrics]],
        node: NodeMetrics | None,
        replicas: int | None,
        fits: dict[tuple[str, float], Fit | None] | None = None,
    ) -> None:
        self.sample = sample
        self._history = history  # oldest first, ends with `sample`
        self.node = node
        self.replicas = replicas
        # Trend fits made for this sample, by (metric, window): the engine passes one dict to every rule
        # of a container in one call, so rules reading the same trend share one fit.
        self.fits = fits

    @property
    def history(self) -> Sequence[ContainerMetrics]:
        history = self._history
        if callable(history):
            history = self._history = history()
        return history


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
    # Container scope: the leading parts of a top-level `and` that read nothing but the sample's own
    # figures and constants, compiled a second time over the sample itself (`sample_guard`). False
    # means the condition is false; True, that `holds` must decide. None: no such leading part.
    guard: Callable[[ContainerMetrics], bool] | None = None

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
    stripped = text.strip()
    source, durations = _durations(stripped)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExprError([f"syntax error: {exc.msg} (column {exc.offset})"]) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError(["condition cannot be parsed"]) from None
    if _depth(tree) > MAX_DEPTH:
        raise ExprError([f"condition is nested too deeply (at most {MAX_DEPTH} levels)"])
    return _Compiler(stripped, scope, thresholds, durations).run(tree)


def _durations(text: str) -> tuple[str, dict[tuple[int, int], tuple[float, str]]]:
    """`text` with every duration's unit blanked out (`10s` -> `10 `, same length, so every column
    stays where it was), and the durations by (line, UTF-8 column) as Python's parser reports them."""
    found: dict[tuple[int, int], tuple[float, str]] = {}

    def blank(match: re.Match[str]) -> str:
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        where = (text.count("\n", 0, start) + 1, len(text[line_start:start].encode()))
        found[where] = (float(match.group(1)) * DURATION_UNITS[match.group(3)], match.group(0))
        return match.group(1) + " " * (len(match.group(2)) + len(match.group(3)))

    return _DURATION_TOKEN.sub(blank, text), found


class _Compiler:
    def __init__(self, text: str, scope: str, thresholds: Mapping[str, float],
                 durations: Mapping[tuple[int, int], tuple[float, str]]) -> None:
        self.text = text
        self.scope = scope
        self.thresholds = thresholds
        self.durations = durations
        self.errors: list[str] = []
        self.window = 1
        self.figures: dict[str, Fn] = {}
        self.reads_samples = scope == "container"
        self.conjunction: set[int] = set()  # ids of the `and` nodes whose falsity makes the whole condition false

    def run(self, tree: ast.Expression) -> Condition:
        top: ast.AST = tree.body
        stack = [top]
        while stack:  # the root `and` and any `and` directly inside it
            node = stack.pop()
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
                self.conjunction.add(id(node))
                stack.extend(node.values)
        term = self.node(top)
        if not self.errors and term.kind not in ("bool", "any"):
            self.errors.append("condition must be a comparison (e.g. cpu > cpu_high), not a bare number")
        if self.errors:
            raise ExprError(list(dict.fromkeys(self.errors)))
        return Condition(self.text, self.scope, self.window, term.closure(), tuple(self.figures.items()),
                         needs_samples=self.reads_samples, guard=self.sample_guard(top))

    def sample_guard(self, top: ast.AST) -> Callable[[ContainerMetrics], bool] | None:
        """The condition's leading sample-only parts as a check over the sample alone (see Condition.guard).

        The parts of a top-level `and` run left to right and the first false (or missing) one makes the
        condition false, so when these leading parts are false on the sample, `holds` is false without an
        env being built. They are compiled again by `_SampleCompiler`, whose only difference is where a
        metric is read from: every operator is the same closure, so each part has the same value.
        """
        if self.scope != "container":
            return None
        parts = top.values if isinstance(top, ast.BoolOp) and id(top) in self.conjunction else [top]
        leading: list[ast.AST] = []
        for part in parts:
            if not _sample_only(part, self.thresholds):
                break
            leading.append(part)
        if not leading:
            return None
        compiler = _SampleCompiler(self.text, self.scope, self.thresholds, self.durations)
        compiler.conjunction = self.conjunction
        fns = [compiler.node(part).closure() for part in leading]
        if compiler.errors:  # cannot happen: the same text compiled above  # pragma: no cover
            return None
        fn = fns[0] if len(fns) == 1 else _all(fns)

        def guard(sample: ContainerMetrics) -> bool:
            try:
                return bool(fn(sample))
            except (NoValue, ArithmeticError):
                return False
        return guard

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
        duration = self.duration_at(node)
        if duration is not None:
            return self.fail(f"a duration ({duration[1]}) is allowed only as the horizon or window of "
                             f"{' or '.join(f'{f}()' for f in TREND_FUNCTIONS)}; elsewhere write plain numbers")
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, (str, bytes)):
                return self.fail("strings are not allowed")
            return self.fail(f"constant {value!r} is not allowed; only numbers are")
        number = finite_number(value)
        if number is None:
            return self.fail(f"number {self.segment(node)} is out of range")
        return _Term("num", const=number)

    def duration_at(self, node: ast.AST) -> tuple[float, str] | None:
        """The duration written at `node` (seconds, as written), None for anything else."""
        if not isinstance(node, ast.Constant):
            return None
        return self.durations.get((node.lineno, node.col_offset))

    def segment(self, node: ast.AST) -> str:
        """The source text of `node`, shortened for a message."""
        text = ast.get_source_segment(self.text, node) or type(node).__name__
        return text if len(text) <= 40 else text[:37] + "..."

    def on_Name(self, node: ast.Name) -> _Term:
        name = node.id
        if name.startswith("_"):
            return self.fail(f"name {name!r} is not allowed (names starting with _ are refused)")
        if name in self.thresholds:
            value = finite_number(self.thresholds[name])
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
        if name in TREND_FUNCTIONS:
            return f"{name} is a function: call it, e.g. {name}(mem, 10s, 30s)"
        thresholds = ", ".join(sorted(self.thresholds)) or "none defined"
        return f"unknown name {name!r} (known: {', '.join(known)}; thresholds: {thresholds})"

    # -- functions ------------------------------------------------------------------------

    def on_Call(self, node: ast.Call) -> _Term:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS + TREND_FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            return self.fail(f"call to {shown!r} is not allowed; functions are {', '.join(FUNCTIONS + TREND_FUNCTIONS)}")
        func = node.func.id
        if node.keywords:
            return self.fail(f"{func}() takes no keyword arguments")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            return self.fail("starred arguments (*) are not allowed")
        label = ast.get_source_segment(self.text, node) or ast.unparse(node)
        if func in TREND_FUNCTIONS:
            fn = self.trend_call(func, node.args)
        elif self.scope == "container":
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
        if self.duration_at(size) is not None:
            self.errors.append(f"{func}(): the window is a number of samples (e.g. {func}(cpu, 3)), not a duration")
            return None
        if not (isinstance(size, ast.Constant) and type(size.value) is int and 1 <= size.value <= MAX_WINDOW):
            self.errors.append(f"{func}(): the window must be a whole number of samples from 1 to {MAX_WINDOW}")
            return None
        if metric is None:
            return None
        self.window = max(self.window, size.value)
        return _window_fn(func, metric, size.value)

    def trend_call(self, func: str, args: list[ast.expr]) -> Fn | None:
        """predict(metric, horizon[, window]) and predict_se(...): checked here, fitted at run time."""
        usage = f"{func}(metric, horizon[, window]), e.g. {func}(mem, 10s, 30s)"
        if self.scope != "container":
            self.errors.append(f"{func}() reads one container's history: it works in container-scope rules only")
            return None
        if len(args) not in (2, 3):
            self.errors.append(f"{func}() takes a metric, a horizon and optionally a window: {usage}")
            return None
        metric = self.metric_arg(func, args[0])
        horizon = self.duration_arg(func, "horizon", args[1], low=0.0, high=MAX_HORIZON)
        if len(args) == 3:
            window = self.duration_arg(func, "window", args[2], low=MIN_TREND_WINDOW, high=MAX_TREND_WINDOW)
        else:
            window = None if horizon is None else min(MAX_TREND_WINDOW, max(DEFAULT_MIN_WINDOW, DEFAULT_WINDOW_FACTOR * horizon))
        if metric is None or horizon is None or window is None:
            return None
        self.window = max(self.window, trend_samples(window))
        return _trend_fn(func, metric, horizon=horizon, window=window)

    def duration_arg(self, func: str, what: str, arg: ast.AST, *, low: float, high: float) -> float | None:
        duration = self.duration_at(arg)
        if duration is None:
            hint = " (a plain number is not: write its unit)" if isinstance(arg, ast.Constant) else ""
            self.errors.append(f"{func}(): the {what} must be a duration such as 10s, 500ms or 2m{hint}")
            return None
        seconds, written = duration
        if not low <= seconds <= high:
            self.errors.append(f"{func}(): the {what} {written} is out of range ({low:g} s to {high:g} s)")
            return None
        return seconds

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
        if id(node) in self.conjunction:  # false anywhere is false overall: stop at the first false part
            return _Term("bool", fn=_all(fns))
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


class _SampleCompiler(_Compiler):
    """Compiles a sample-only part of a container condition (`_sample_only`) over the ContainerMetrics
    itself instead of a ContainerEnv: a metric is read as `sample.cpu` rather than `env.sample.cpu`,
    and every other node goes through `_Compiler`'s own handlers and closures."""

    def on_Name(self, node: ast.Name) -> _Term:
        name = node.id
        if name in self.thresholds or name not in CONTAINER_METRICS:
            return super().on_Name(node)
        return _Term("num", fn=_own_metric(name), getter=attrgetter(name))


def _sample_only(node: ast.AST, thresholds: Mapping[str, float]) -> bool:
    """True if `node` reads nothing but the sample's own figures, thresholds and constants (no call,
    no node figure, no replicas)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            return False
        if isinstance(child, ast.Name) and child.id not in thresholds and child.id not in CONTAINER_METRICS:
            return False
    return True


def finite_number(value: Any) -> float | None:
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
    number = finite_number(value)
    if number is None:
        raise NoValue
    return number


def _const_fn(value: float) -> Fn:
    return lambda env: value


def _metric_reader(path: str) -> Fn:
    """Reads the metric at attribute `path` as a finite float (a plain finite float is taken as is)."""
    get = attrgetter(path)

    def read(source: Any) -> float:
        value = get(source)
        if value.__class__ is float and value - value == 0.0:
            return value
        return _finite(value)
    return read


def _sample_metric(name: str) -> Fn:
    return _metric_reader(f"sample.{name}")


def _own_metric(name: str) -> Fn:
    """`_sample_metric` over the sample itself (for Condition.guard)."""
    return _metric_reader(name)


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
    if set(map(type, values)) == _FLOATS:  # the common case: every value a float (a sample's figures are)
        floats: list[float] = values
        total = sum(floats)
        if total - total == 0.0:  # so each one is finite: an infinity or a NaN would make the sum one
            if func == "sum":
                return total
            if func == "avg":
                return total / len(floats)
            return max(floats) if func == "max" else min(floats)
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


_FLOATS = {float}


def _window_fn(func: str, metric: str, size: int) -> Fn:
    get = attrgetter(metric)
    return lambda env: _reduce(func, [get(s) for s in env.history[-size:]])


def trend_samples(window: float) -> int:
    """How many of a container's newest samples a trend window of `window` seconds may read."""
    return max(math.ceil(window * SAMPLES_PER_SECOND) + 1, MIN_TREND_SAMPLES)


def trend_fit(env: ContainerEnv, metric: str, window: float) -> Fit | None:
    """The line through `metric` over the container's samples of the last `window` seconds (made once per
    env); None when there are fewer than MIN_SAMPLES, they span less than TREND_COVERAGE of the window,
    or one of them is not a finite number."""
    fits = env.fits
    if fits is None:
        fits = env.fits = {}
    key = (metric, window)  # the same container's same trend at the same sample, whichever rule asks
    if key in fits:
        return fits[key]
    fits[key] = found = _fit_window(env.history, metric, window)
    return found


def _fit_window(history: Sequence[ContainerMetrics], metric: str, window: float) -> Fit | None:
    """One pass over the window, newest first, until its start (left-open, as PromQL's ranges): the
    running sums of sgcommon.trend.fit_sums, times relative to the newest sample, values to its value."""
    if not history:
        return None
    last = history[-1]
    newest = last.ts
    base = finite_number(getattr(last, metric))
    if base is None:
        return None
    start = newest - window
    n = 0
    oldest = newest
    sx = sy = sxx = sxy = syy = 0.0
    for sample in reversed(history):
        ts = sample.ts
        if not ts > start:
            break
        value = getattr(sample, metric)
        if not (value.__class__ is float and value - value == 0.0):
            value = finite_number(value)
            if value is None:
                return None
        x, y = ts - newest, value - base
        n += 1
        sx += x
        sy += y
        sxx += x * x
        sxy += x * y
        syy += y * y
        oldest = ts
    if n < MIN_SAMPLES or not newest - oldest >= TREND_COVERAGE * window:
        return None
    return fit_sums(n, newest=newest, oldest=oldest, base=base, sx=sx, sy=sy, sxx=sxx, sxy=sxy, syy=syy)


def _trend_fn(func: str, metric: str, *, horizon: float, window: float) -> Fn:
    """predict() (the line's value `horizon` ahead) or predict_se() (its standard error there)."""
    figure = Fit.value if func == "predict" else Fit.se

    def trend(env: ContainerEnv) -> float:
        fit = trend_fit(env, metric, window)
        if fit is None:
            raise NoValue
        value = figure(fit, horizon)
        if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            return value
        raise NoValue

    return trend


def _aggregate_fn(func: str, metric: str) -> Fn:
    get = attrgetter(metric)
    return lambda env: _reduce(func, list(map(get, env.samples)))


# `and`, `or` and chained comparisons evaluate every operand (no short-circuit), so a missing
# figure anywhere makes the whole condition false whatever the order of the operands.

def _and(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) & b(env)  # both are bools; & evaluates both


def _or(a: Fn, b: Fn) -> Fn:
    return lambda env: a(env) | b(env)


def _all(fns: list[Fn]) -> Fn:
    """A top-level `and`: its first false part makes the whole condition false, as a missing figure
    in a later part would, so the later parts need not run (nor fit a trend)."""
    if len(fns) == 2:
        a, b = fns
        return lambda env: a(env) and b(env)
    if len(fns) == 3:
        a, b, c = fns
        return lambda env: a(env) and b(env) and c(env)
    a, rest = fns[0], _all(fns[1:])  # the hot loop's closures stay flat: no generator per call
    return lambda env: a(env) and rest(env)


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
    if len(ops) == 2:  # `low < metric < high`, a common guard: one flat closure
        a, b, c = fns
        op1, op2 = ops

        def chain2(env: Any) -> bool:
            x, y, z = a(env), b(env), c(env)  # every operand first: a missing one makes the condition false
            return op1(x, y) and op2(y, z)
        return chain2
    pairs = list(zip(ops, fns[1:], strict=True))
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
