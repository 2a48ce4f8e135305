"""Checks of single values that rule files and rule test files share: one place per kind of field.

Rule files (controller/rules/loader.py) and rule test files (controller/ruletest/spec.py) hold some
of the same kinds of value: label selectors, whole numbers, threshold names and values, a name or a
list of names. Each kind is checked here once, so both readers accept the same values and say the
same thing about a wrong one; each reader adds where the value is (`file:line: rule NAME: ...`).
Values arrive already built from YAML by the loader's `_Doc.value` (plain types only).
"""
from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from typing import Any

from controller.rules.expr import RESERVED, finite_number
from controller.rules.thresholds import NAME_RE as THRESHOLD_NAME_RE

MAX_WHOLE = 1_000_000  # largest priority, `for` count, replica bound or replica count
LABEL_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,199}")  # fullmatch: `$` matches before a final newline
MAX_LABEL_VALUE = 1000

# Values are quoted in messages through a bounded repr: a YAML alias bomb or a huge string
# in a wrong place must give a short message, not a hang.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 2


class FieldProblem(ValueError):
    """A value a field cannot take; the message names the field and quotes the value."""


def show(value: Any) -> str:
    """A short repr of `value` for a message."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an int beyond Python's int-to-text digit limit (a YAML base-60 number can build one)
        return f"a {type(value).__name__} too large to show"


def whole_number(key: str, value: Any, *, minimum: int, maximum: int = MAX_WHOLE) -> int:
    """`value` if it is a whole number (not a bool, not a float) from `minimum` to `maximum`."""
    if type(value) is not int or not minimum <= value <= maximum:
        raise FieldProblem(f"{key} must be a whole number from {minimum} to {maximum}, got {show(value)}")
    return value


def names(key: str, value: Any, *, what: str) -> list[str]:
    """One text or a non-empty list of non-empty texts, as a list; `what` says what they are."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise FieldProblem(f"{key} must be {what}, got {show(value)}")
    return value


def label_pairs(value: Any) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """A `labels:` mapping as sorted (label, value) pairs, and a problem for each entry left out.

    true/false and plain numbers are taken as the text Docker shows for them ("true", "3"), so a
    label written unquoted matches the service's label."""
    if not isinstance(value, Mapping):
        return (), [f"labels must be a mapping of label: value, got {show(value)}"]
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for key, wanted in value.items():
        if isinstance(wanted, bool):
            wanted = "true" if wanted else "false"
        elif finite_number(wanted) is not None and abs(wanted) < 1e18:
            wanted = str(wanted)
        if not isinstance(key, str) or not isinstance(wanted, str):
            problems.append(f"labels: {show(key)}: expected a string value, got {show(wanted)}")
        elif not LABEL_KEY_RE.fullmatch(key):
            problems.append(f"labels: {show(key)} is not a label name (letters, digits, _ . / -, at most 200)")
        elif "\n" in wanted or "\t" in wanted or len(wanted) > MAX_LABEL_VALUE:
            problems.append(f"labels: {key}: a label value is one line of at most {MAX_LABEL_VALUE} characters, "
                            f"got {show(wanted)}")
        else:
            pairs.append((key, wanted))
    return tuple(sorted(pairs)), problems


def threshold_problem(name: str, value: Any) -> str | None:
    """Why `name: value` cannot be a threshold (a name a condition can use, a finite number); None if it can."""
    if not THRESHOLD_NAME_RE.fullmatch(name):
        return f"{show(name)} is not a valid name (lower case letters, digits and _, starting with a letter)"
    if name in RESERVED:
        return f"{show(name)} is a metric or function name and cannot be a threshold"
    if finite_number(value) is None:
        return f"{name}: expected a finite number, got {show(value)}"
    return None
