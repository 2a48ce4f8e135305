"""Checks stress parameters before anything starts: every bad value names its parameter.

The functions take the raw query arguments and the current limits and return plans; they
raise ParamError, which the app turns into HTTP 400 {"error": ..., "parameter": ...}.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgcommon.params import Args, ParamError, query_number, single
from stressapp.ramp import Plan

__all__ = ["DEFAULT_DURATION", "DEFAULT_LEAK_DURATION", "KIND_PARAMETER", "Limits", "MAX_LEAK_RATE", "ParamError",
           "combined_plans", "leak_plan", "number", "single_plan"]


@dataclass(frozen=True)
class Limits:
    """The largest values accepted right now."""

    max_duration: float
    max_memory_mb: float
    max_bandwidth_mbps: float
    memory_reason: str = "the configured maximum"


DEFAULT_DURATION = 60.0
DEFAULT_LEAK_DURATION = 600.0  # a leak grows until the container's limit stops it, or this long
MAX_LEAK_RATE = 1000.0  # MB/s
MIN_NOISE_STEP = 1.0 / 10  # the runner applies a level 10 times a second

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
    """The plan of /stress/<kind>: target (or bandwidth), duration, ramp; for cpu and memory also the
    ramp's start level (start, default 0) and a noisy hold: noise (the level is redrawn from target
    +/- noise), step (seconds between draws), seed."""
    name = KIND_PARAMETER[kind]
    extras = {"start", "noise", "step", "seed"} if kind in ("cpu", "memory") else set()
    _reject_unknown(args, {name, "duration", "ramp"} | extras)
    target = _target(kind, name, number(args, name), limits)
    duration, ramp = _timing(args, limits)
    start = 0.0
    if extras and single(args, "start") is not None:
        start = _in_range("start", number(args, "start"), low=0, high=target, low_inclusive=True, unit="",
                          why="the ramp climbs from start to the target")
    if not extras or single(args, "noise") is None:
        for extra in ("step", "seed"):
            if single(args, extra) is not None:
                raise ParamError(extra, "only with noise")
        return Plan(target=target, duration=duration, ramp=ramp, start=start)
    noise = _in_range("noise", number(args, "noise"), low=0, high=target, low_inclusive=True, unit="",
                      why="the level never goes below 0")
    top, why = (100.0, "% of the container's CPU") if kind == "cpu" else (limits.max_memory_mb, f" MB: {limits.memory_reason}")
    if target + noise > top:
        raise ParamError("noise", f"target + noise must be at most {top:g}{why}, got {target + noise:g}")
    step = _in_range("step", number(args, "step", default=1.0), low=MIN_NOISE_STEP, high=limits.max_duration,
                     low_inclusive=True, unit=" s", why="the configured maximum duration")
    seed = number(args, "seed", default=0.0)
    if not (seed.is_integer() and 0 <= seed < 2**31):
        raise ParamError("seed", f"must be a whole number from 0 to {2**31 - 1}, got {seed:g}")
    return Plan(target=target, duration=duration, ramp=ramp, start=start, noise=noise, step=step, seed=int(seed))


def leak_plan(args: Args, limits: Limits) -> Plan:
    """The plan of /stress/leak: `start` MB held at once, then `rate` MB/s more, with no ceiling (the
    container's memory limit ends it: the kernel's OOM killer), for `duration` seconds at most."""
    _reject_unknown(args, {"rate", "start", "duration"})
    rate = _in_range("rate", number(args, "rate"), low=0, high=MAX_LEAK_RATE, low_inclusive=False, unit=" MB/s",
                     why="the largest leak rate")
    start = _in_range("start", number(args, "start", default=0.0), low=0, high=limits.max_memory_mb,
                      low_inclusive=True, unit=" MB", why=limits.memory_reason)
    duration = _in_range("duration", number(args, "duration", default=DEFAULT_LEAK_DURATION), low=0,
                         high=limits.max_duration, low_inclusive=False, unit=" s", why="the configured maximum duration")
    return Plan(target=start + rate * duration, duration=0.0, ramp=duration, start=start)


def combined_plans(args: Args, limits: Limits) -> dict[str, Plan]:
    """The plans of /stress/combined: any of cpu, memory, network (at least one), one duration and ramp."""
    _reject_unknown(args, {"cpu", "memory", "network", "duration", "ramp"})
    targets = {kind: _target(kind, kind, number(args, kind), limits) for kind in ("cpu", "memory", "network")
               if single(args, kind) is not None}
    if not targets:
        raise ParamError("cpu", "give at least one of cpu, memory, network")
    duration, ramp = _timing(args, limits)
    return {kind: Plan(target=target, duration=duration, ramp=ramp) for kind, target in targets.items()}
