"""The timeline of a leaking container, from the lab's own records (scenario 3 and the fast-leak test).

When did the container's memory (or CPU) actually cross the threshold, when did the rule's trend
say it would, when did the replacement serve, and did the kernel kill the old container (OOM)?
- The samples are the exporter's own series in the lab's victoria-metrics (10.99.0.1:8428,
  `container_metrics_memory_percent{container_id=...}`: one per second, written every 5 s), read
  by labkit/sink.py's `export_series`.
- T_cross: the first sample at or above the level, interpolated from the sample before it. A
  predictive migration often stops the old container before it gets there: then T_cross is where the
  line through the climb's last samples reaches the level, marked "extrapolated" (the load is a
  straight ramp, so the line is what the container would have done).
- The predicted crossing: where the line through the rule's window before the decision (T3) reaches
  the level (sgcommon/trend.py, as the rule's predict() drew it).
- The old container's fate: `State.OOMKilled`, exit code and finish time, through its node's engine.
Lead time = T_cross - T5: positive when the replacement served before the crossing.
Everything but `container_fate` is pure and unit-tested.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from labkit import labinfo
from sgcommon.engine import EngineError, connect, translate
from sgcommon.trend import fit_line

LIMIT_REACHED = 99.5  # percent: the container got to its limit (memory: the OOM killer's line)


def crossing(points: Sequence[tuple[float, float]], level: float, *, after: float,
             fit_seconds: float = 15.0) -> tuple[float | None, bool]:
    """(time, observed): when the samples after `after` first reach `level` (interpolated between the
    sample below and the first at or above it); else where the line through the climb's last
    `fit_seconds` reaches it (observed False); (None, False) when neither can say. The climb ends at
    its highest sample: a stress stopped before its container (on SIGTERM) leaves a plateau that
    would flatten the line and put the crossing hours away."""
    mine = [(t, v) for t, v in points if t >= after]
    for i, (t, v) in enumerate(mine):
        if v >= level:
            if i == 0:
                return t, True
            t0, v0 = mine[i - 1]
            return (t0 + (t - t0) * (level - v0) / (v - v0) if v > v0 else t), True
    if not mine:
        return None, False
    top = max(v for _, v in mine)
    last = next(t for t, v in mine if v == top)
    tail = [(t, v) for t, v in mine if last - fit_seconds < t <= last]
    fit = fit_line([t for t, _ in tail], [v for _, v in tail])
    return (None if fit is None else fit.crossing(level)), False


def predicted_crossing(points: Sequence[tuple[float, float]], level: float, *, at: float, window: float) -> float | None:
    """Where the line through the samples of (at - window, at] reaches `level`: what the rule's
    predict() saw when it decided (at = T3)."""
    mine = [(t, v) for t, v in points if at - window < t <= at]
    fit = fit_line([t for t, _ in mine], [v for _, v in mine])
    return None if fit is None else fit.crossing(level)


_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def parse_docker_time(text: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds ("2026-12-01T17:10:39.123456789Z") -> Unix seconds;
    None for the zero time (never happened) or anything else."""
    match = _DOCKER_TIME.fullmatch(text or "")
    if match is None or text.startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    stamp = dt.datetime.fromisoformat(whole + ("+00:00" if zone in (None, "Z") else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def container_fate(lab: labinfo.Lab, node: str, container_id: str) -> dict[str, Any]:
    """`oom` (the kernel killed it for memory), `exit_code`, `finished_at` of a container on `node`;
    `{"known": False}` when its engine no longer has it."""
    client = connect(lab.socket_of(node), timeout=30)
    try:
        with translate(f"inspect container {container_id[:12]} on {node}"):
            state = client.inspect_container(container_id)["State"]
    except EngineError:
        return {"known": False}
    finally:
        client.close()
    return {"known": True, "oom": bool(state.get("OOMKilled")), "exit_code": state.get("ExitCode"),
            "running": bool(state.get("Running")), "finished_at": parse_docker_time(state.get("FinishedAt") or "")}


def timeline(action: Mapping[str, Any] | None, points: Sequence[tuple[float, float]], *, metric: str, level: float,
             started: float, window: float, fate: Mapping[str, Any]) -> dict[str, Any]:
    """One run's timeline: the leak's start, the crossing (observed or extrapolated), the rule's predicted
    crossing, T0/T3/T5/T6, the lead time T_cross - T5, the peak, and the OOM kill if there was one."""
    t_cross, observed = crossing(points, level, after=started)
    t3 = action.get("t3") if action else None
    t5 = action.get("t5") if action else None
    predicted = predicted_crossing(points, level, at=t3, window=window) if t3 is not None else None
    after = [v for t, v in points if t >= started]
    peak = max(after) if after else None
    oom = bool(fate.get("oom"))
    return {
        "metric": metric, "level": level, "started": started, "t_cross": t_cross, "t_cross_observed": observed,
        "predicted_crossing": predicted, "t0": action.get("t0") if action else None, "t3": t3, "t5": t5,
        "t6": action.get("t6") if action else None,
        "lead_time": None if t_cross is None or t5 is None else round(t_cross - t5, 3),
        "peak": peak, "limit_reached": peak is not None and peak >= LIMIT_REACHED,
        "oom": oom, "oom_at": fate.get("finished_at") if oom else None,
    }
