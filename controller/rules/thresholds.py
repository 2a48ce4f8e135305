"""Threshold overrides from the environment and the command line (spec 3.3).

Rule files define named thresholds (`thresholds: {cpu_high: 75}`); an operator overrides
them without editing the file through SWARMGUARD_THRESHOLD_CPU_HIGH=80 or
`--threshold cpu_high=80`. These helpers turn both into the `overrides` mapping that
`load_rules` checks against the thresholds the files define (an override for a threshold
no file defines is an error, so a typo cannot silently do nothing).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from controller.rules.ruleset import RuleError

ENV_PREFIX = "SWARMGUARD_THRESHOLD_"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _number(text: str, where: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{where}: expected a number, got {text!r}") from None
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
        name = var[len(ENV_PREFIX):].lower()
        try:
            if not NAME_RE.match(name):
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
    name = name.strip()
    if not sep:
        raise ValueError(f"--threshold {text!r}: expected name=value, e.g. cpu_high=80")
    if not NAME_RE.match(name):
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
    for source in (lambda: thresholds_from_env(env), lambda: parse_threshold_args(cli)):
        try:
            merged.update(source())
        except RuleError as exc:
            errors.extend(exc.errors)
    if errors:
        raise RuleError(errors)
    return merged
