"""What SwarmGuard owns on a service, written on the service itself so a restarted controller knows.

Three service labels:
- `swarmguard.exclusions`: JSON {node host name: expiry (Unix seconds)}; each entry owns the
  placement constraint `node.hostname!=NODE`. Only constraints listed here are ever lifted, so
  a constraint an operator wrote is never touched.
- `swarmguard.action`: JSON of the action in flight ({"id", "action", "node", "task", "started"}).
  It is written in the same service update as the action's change, and removed when the action
  ends; one found on start marks an action interrupted by a restart (see reconcile.py).
- `swarmguard.moved`: JSON {task id: until (Unix seconds)}: tasks a rebalance put where they run,
  which no rebalance moves again before `until` (no ping-pong; see rebalance.py). Written in the
  update that ends the move; expired entries are dropped on the next write.

Which nodes a service may still use is Swarm's placement logic: sgcommon.engine.placement.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EXCLUSIONS_LABEL = "swarmguard.exclusions"
ACTION_LABEL = "swarmguard.action"
MOVED_LABEL = "swarmguard.moved"


class LabelError(ValueError):
    """An ownership label holds something SwarmGuard did not write."""


def exclusion_constraint(node: str) -> str:
    return f"node.hostname!={node}"


def read_exclusions(labels: Mapping[str, str]) -> dict[str, float]:
    return _read_times(labels, EXCLUSIONS_LABEL, "node names")


def write_exclusions(exclusions: Mapping[str, float]) -> str | None:
    """The label value (None removes the label)."""
    return _write_times(exclusions)


def read_moved(labels: Mapping[str, str]) -> dict[str, float]:
    return _read_times(labels, MOVED_LABEL, "task ids")


def write_moved(moved: Mapping[str, float]) -> str | None:
    """The label value (None removes the label)."""
    return _write_times(moved)


def _read_times(labels: Mapping[str, str], label: str, keys: str) -> dict[str, float]:
    raw = labels.get(label)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LabelError(f"{label} is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in doc.values()):
        raise LabelError(f"{label} must map {keys} to expiry times, got {raw!r}")
    return {k: float(v) for k, v in doc.items()}


def _write_times(times: Mapping[str, float]) -> str | None:
    if not times:
        return None
    return json.dumps({k: round(v, 3) for k, v in sorted(times.items())}, separators=(",", ":"))


def read_action(labels: Mapping[str, str]) -> dict[str, Any] | None:
    raw = labels.get(ACTION_LABEL)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LabelError(f"{ACTION_LABEL} is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), str):
        raise LabelError(f"{ACTION_LABEL} must be an object with an action, got {raw!r}")
    return doc


def write_action(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True)
