"""Checks stress parameters before anything starts: every bad value names its parameter.

The functions take the raw query arguments and the current limits and return plans; they
raise ParamError, which the app turns into HTTP 400 {"error": ..., "parameter": ...}.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgcommon.params import Args, ParamError, query_number, single
from stressapp.ramp import Plan

__all__ = ["DEFAULT_DURATION", "KIND_PARAMETER", "Limits", "ParamError", "combined_plans", "number", "single_plan"]


@dataclass(frozen=True)
class Limits:
    """The largest values accepted right now."""

    max_duration: float
    max_memory_mb: float
    max_bandwidth_mbps: float
    memory_reason: str = "the configured maximum"


DEFAULT_DURATION = 60.0

KIND_PARAMETER = {"cpu": "target", "memory": "target", "network": "bandwidth"}


def number(args: Args, name: str, *, default: float | None = None) -> float:
    """A finite number from the query (sgcommon.params' grammar); ParamError when missing, repeated,
    non-numeric, NaN or infinite."""
    return query_number(args, name, default=default)


def _in_range(name: str, value: float, *, low: float, high: float, low_inclusive: bool, unit: str, why: str = "") -> float:
    if value < low or (value == low and not low_inclusive):
        raise ParamError(name, f"must be {'at least' if low_inclusive else 'greater than'} {low:g}{unit}, got {value:g}")
    if value > high:
        raise ParamError(name, f"must be at most {high:g}{unit}{f' ({why})' if why else ''}, got {value:g}")
    return value


def _reject_unknown(args: Args, allowed: set[str]) -> None:
    for name in args:
        if name not in allowed:
            raise ParamError(name, f"unknown parameter; expected {', '.join(sorted(allowed))}")


def _timing(args: Args, limits: Limits) -> tuple[float, float]:
    duration = _in_range("duration", number(args, "duration", default=DEFAULT_DURATION), low=0, high=limits.max_duration,
                         low_inclusive=False, unit=" s", why="the configured maximum duration")
    ramp = _in_range("ramp", number(args, "ramp", default=0.0), low=0, high=limits.max_duration,
                     low_inclusive=True, unit=" s", why="the configured maximum duration")
    return duration, ramp


def _target(kind: str, name: str, value: float, limits: Limits) -> float:
    if kind == "cpu":
        return _in_range(name, value, low=0, high=100, low_inclusive=False, unit=" %", why="of the container's CPU")
    if kind == "memory":
        return _in_range(name, value, low=0, high=limits.max_memory_mb, low_inclusive=False, unit=" MB",
                         why=limits.memory_reason)
    return _in_range(name, value, low=0, high=limits.max_bandwidth_mbps, low_inclusive=False, unit=" Mbit/s",
                     why="the configured maximum bandwidth")


def single_plan(kind: str, args: Args, limits: Limits) -> Plan:
    """The plan of /stress/<kind>: target (or bandwidth), duration, ramp."""
    name = KIND_PARAMETER[kind]
    _reject_unknown(args, {name, "duration", "ramp"})
    target = _target(kind, name, number(args, name), limits)
    duration, ramp = _timing(args, limits)
    return Plan(target=target, duration=duration, ramp=ramp)


def combined_plans(args: Args, limits: Limits) -> dict[str, Plan]:
    """The plans of /stress/combined: any of cpu, memory, network (at least one), one duration and ramp."""
    _reject_unknown(args, {"cpu", "memory", "network", "duration", "ramp"})
    targets = {kind: _target(kind, kind, number(args, kind), limits) for kind in ("cpu", "memory", "network")
               if single(args, kind) is not None}
    if not targets:
        raise ParamError("cpu", "give at least one of cpu, memory, network")
    duration, ramp = _timing(args, limits)
    return {kind: Plan(target=target, duration=duration, ramp=ramp) for kind, target in targets.items()}
