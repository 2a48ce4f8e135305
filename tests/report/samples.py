"""Synthetic runs for the report tests: plain dicts in the saved-JSON shape, built from a few figures."""
from __future__ import annotations

from typing import Any

T0 = 1_800_000_000.0


def action(kind: str = "migrate", *, t0: float = T0, t1: float = 0.01, t2: float = 0.03, t3: float = 0.04,
           t4: float = 0.05, t5: float | None = 4.0, t6: float | None = 6.0, result: str = "success",
           node_from: str | None = "worker-1", node_to: str | None = "worker-2", **extra: Any) -> dict[str, Any]:
    """An ActionRecord.as_dict(); t1..t6 are given as seconds after t0 (None: not reached)."""
    doc = {"id": f"{kind}-{t0}", "action": kind, "service": "swarmguard_web-stress", "rule": kind, "result": result,
           "node_from": node_from, "node_to": node_to, "container_id": "c" * 12, "replicas_before": None,
           "replicas_after": None, "reason": "cpu > 80", "error": None, "dry_run": False, "t0": t0}
    for name, offset in (("t1", t1), ("t2", t2), ("t3", t3), ("t4", t4), ("t5", t5), ("t6", t6)):
        doc[name] = None if offset is None else t0 + offset
    return doc | extra


def probe(failures: int = 0, *, requests: int = 300, downtime: float = 0.0, gap: float = 0.12) -> dict[str, Any]:
    return {"requests": requests, "failures": failures, "longest_gap": gap, "total_downtime": downtime}


def scenario1(*, failures: int = 0, downtime: float = 0.0, node_after: str = "worker-2", **act: Any) -> dict[str, Any]:
    return {"kind": "proactive", "scenario": "scenario1", "actions": [action(**act)],
            "probe": probe(failures, downtime=downtime), "node_before": "worker-1", "node_after": node_after,
            "replicas_before": 1, "replicas_after": 1}


def scenario2(*, t0: float = T0, t5: float = 3.0, failures: int = 0, replicas_after: int = 1,
              scale_down: bool = True) -> dict[str, Any]:
    actions = [action("scale_up", t0=t0, t5=t5, t6=None, node_from="worker-1", node_to=None,
                      replicas_before=1, replicas_after=2)]
    if scale_down:
        actions.append(action("scale_down", t0=t0 + 120, t1=None, t2=None, t3=0.0, t4=0.01, t5=1.0, t6=None,
                              node_from=None, node_to=None, replicas_before=2, replicas_after=1))
    return {"kind": "proactive", "scenario": "scenario2", "actions": actions, "probe": probe(failures),
            "node_before": None, "node_after": None, "replicas_before": 1, "replicas_after": replicas_after,
            "steps": [{"action": "scale_up", "replicas": 2, "cpu_per_replica": [38.0, 36.0]},
                      {"action": "scale_down", "replicas": 1, "cpu_per_replica": [4.0]}]}


def reactive(first_ok: float | None = 7.0, *, mode: str = "crash", downtime: float = 7.0, failed: int = 60,
             broke_at: float = T0 - 600) -> dict[str, Any]:
    """One iteration as labkit/baseline.py saves it."""
    return {"mode": mode, "node": "worker-2", "broke_at": broke_at, "task_started_s": 5.3, "task_healthy_s": 6.9,
            "first_ok_s": first_ok, "downtime_s": downtime, "failed_requests": failed, "requests": 75,
            "new_node": "worker-1"}


def baseline_file(*iterations: dict[str, Any], mode: str = "crash") -> dict[str, Any]:
    return {"mode": mode, "service": "swarmguard_web-stress", "probe_interval": 0.1, "workers": 3,
            "iterations": list(iterations), "stats": {}}


def check(test: str = "concurrent", passed: bool = True, details: str = "A migrated, B scaled, C migrated") -> dict[str, Any]:
    return {"kind": "check", "test": test, "passed": passed, "details": details}


def full_set() -> list[dict[str, Any]]:
    """Documents of a whole suite run: baseline, scenario 1 x3, scenario 2 x2, both checks."""
    return [
        baseline_file(reactive(7.4), reactive(7.1, broke_at=T0 - 500), reactive(6.9, broke_at=T0 - 400)),
        {"records": [scenario1(t0=T0 + 100 * i, t5=4.0 + i, t6=6.0 + i) for i in range(3)]},
        {"records": [scenario2(t0=T0 + 1000 + 300 * i, t5=3.0 + i) for i in range(2)]},
        check(), check("node_failure", details="worker-3 unreachable logged; web-stress rescheduled"),
    ]


def leak_run(scenario: str = "scenario3-predictive", *, t0: float = T0 + 5000, lead: float = 5.0, oom: bool = False,
             failures: int = 0, observed: bool = False, metric: str = "mem", level: float = 80.0) -> dict[str, Any]:
    """A scenario 3 (or fast-leak) run: the climb starts 30 s before T0, the replacement serves at T0 + 3 s,
    the threshold is crossed `lead` seconds after that."""
    started = t0 - 30.0
    act = action(t0=t0, t3=0.05, t5=3.0, t6=6.0, rule="migrate-before-memory-threshold")
    t5 = t0 + 3.0
    return {"kind": "proactive", "scenario": scenario, "variant": scenario.rsplit("-", 1)[-1], "actions": [act],
            "probe": probe(failures), "node_before": "worker-1", "node_after": "worker-2", "replicas_before": 1,
            "replicas_after": 1,
            "leak": {"metric": metric, "level": level, "started": started, "t_cross": t5 + lead, "t_cross_observed": observed,
                     "predicted_crossing": t5 + lead + 0.5, "t0": t0, "t3": t0 + 0.05, "t5": t5, "t6": t0 + 6.0,
                     "lead_time": lead, "peak": 78.0, "limit_reached": False, "oom": oom,
                     "oom_at": t0 + 4.0 if oom else None, "rate_mb_s": 5.1}}
