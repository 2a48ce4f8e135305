"""What SwarmGuard owns on a service, written on the service itself so a restarted controller knows.

Two service labels:
- `swarmguard.exclusions`: JSON {node host name: expiry (Unix seconds)}; each entry owns the
  placement constraint `node.hostname!=NODE`. Only constraints listed here are ever lifted, so
  a constraint an operator wrote is never touched.
- `swarmguard.action`: JSON of the action in flight ({"id", "action", "node", "task", "started"}).
  It is written in the same service update as the action's change, and removed when the action
  ends; one found on start marks an action interrupted by a restart (see reconcile.py).

Which nodes a service may still use is Swarm's placement logic: sgcommon.engine.placement.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EXCLUSIONS_LABEL = "swarmguard.exclusions"
ACTION_LABEL = "swarmguard.action"


class LabelError(ValueError):
    """An ownership label holds something SwarmGuard did not write."""


def exclusion_constraint(node: str) -> str:
    return f"node.hostname!={node}"


def read_exclusions(labels: Mapping[str, str]) -> dict[str, float]:
    raw = labels.get(EXCLUSIONS_LABEL)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LabelError(f"{EXCLUSIONS_LABEL} is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in doc.values()):
        raise LabelError(f"{EXCLUSIONS_LABEL} must map node names to expiry times, got {raw!r}")
    return {k: float(v) for k, v in doc.items()}


def write_exclusions(exclusions: Mapping[str, float]) -> str | None:
    """The label value (None removes the label)."""
    if not exclusions:
        return None
    return json.dumps({k: round(v, 3) for k, v in sorted(exclusions.items())}, separators=(",", ":"))


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
