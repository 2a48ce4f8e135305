"""Threshold overrides from the environment and the command line.

Rule files define named thresholds (`thresholds: {cpu_high: 75}`); an operator overrides
them without editing the file through SWARMGUARD_THRESHOLD_CPU_HIGH=80 or
`--threshold cpu_high=80`. These helpers turn both into the `overrides` mapping that
`load_rules` checks against the thresholds the files define (an override for a threshold
no file defines is an error, so a typo cannot silently do nothing).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping

from controller.rules.ruleset import RuleError

ENV_PREFIX = "SWARMGUARD_THRESHOLD_"
NAME_RE = re.compile(r"[a-z][a-z0-9_]*")  # always fullmatch: `$` would let "cpu_high\n" through
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _number(text: str, where: str) -> float:
    # float() alone would also take "1_000", "nan", "infinity" and non-ASCII digits
    value = float(text.strip()) if _NUMBER_RE.fullmatch(text.strip()) else None
    if value is None:
        if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ValueError(f"{where}: expected a finite number, got {text!r}")
        raise ValueError(f"{where}: expected a number, got {text!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {text!r}")
    return value


def thresholds_from_env(env: Mapping[str, str]) -> dict[str, float]:
    """SWARMGUARD_THRESHOLD_<NAME>=<number> variables as {name: value}; RuleError lists bad ones."""
    values: dict[str, float] = {}
    errors: list[str] = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or env[var] == "":
            continue
        suffix = var[len(ENV_PREFIX):]
        name = suffix.lower() if suffix.isascii() else suffix  # str.lower() maps some non-ASCII letters to ASCII
        try:
            if not NAME_RE.fullmatch(name):
                raise ValueError(f"{var}: {name!r} is not a threshold name")
            values[name] = _number(env[var], var)
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise RuleError(errors)
    return values


def parse_threshold(text: str) -> tuple[str, float]:
    """Parses one `--threshold name=value`; ValueError says what is wrong."""
    name, sep, value = text.partition("=")
    name = name.strip(" ")  # spaces around '=' are fine; a newline or tab in the name is not
    if not sep:
        raise ValueError(f"--threshold {text!r}: expected name=value, e.g. cpu_high=80")
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"--threshold {text!r}: {name!r} is not a threshold name")
    return name, _number(value, f"--threshold {text!r}")


def parse_threshold_args(items: Iterable[str]) -> dict[str, float]:
    """Every `--threshold` given (later wins); RuleError lists every bad one."""
    values: dict[str, float] = {}
    errors: list[str] = []
    for item in items:
        try:
            name, value = parse_threshold(item)
        except ValueError as exc:
            errors.append(str(exc))
        else:
            values[name] = value
    if errors:
        raise RuleError(errors)
    return values


def merge_overrides(env: Mapping[str, str], cli: Iterable[str]) -> dict[str, float]:
    """Environment overrides, then command-line ones on top (defaults < YAML < env < CLI)."""
    errors: list[str] = []
    merged: dict[str, float] = {}
    sources: tuple[Callable[[], dict[str, float]], ...] = (lambda: thresholds_from_env(env),
                                                           lambda: parse_threshold_args(cli))
    for source in sources:
        try:
            merged.update(source())
        except RuleError as exc:
            errors.extend(exc.errors)
    if errors:
        raise RuleError(errors)
    return merged
