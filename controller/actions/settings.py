"""The executor's settings: safety limits, time-outs and defaults for the recovery actions.

The controller's own settings (controller/settings.py) carry the same field names and hand
them over by name; the rest keep their defaults here.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgcommon.settings import SettingsError, setting


@dataclass(frozen=True)
class ActionSettings:
    dry_run: bool = setting(False, "log and record what an action would do, change nothing")
    max_actions_per_minute: int = setting(10, "actions started per minute at most, all services together")
    migrate_timeout: float = setting(60.0, "seconds a migration may take before it is recorded as timed out")
    scale_timeout: float = setting(60.0, "seconds a scale action may take before it is recorded as timed out")
    exclusion_ttl: float = setting(300.0, "seconds a node exclusion set by a migration lasts (a rule may set its own)")
    scale_down_cooldown: float = setting(180.0, "seconds after a scale-up of a service during which it is not scaled down")
    max_replicas: int = setting(10, "scale-up ceiling when the rule names none")
    min_replicas: int = setting(1, "scale-down floor when the rule names none")
    poll_interval: float = setting(0.1, "seconds between task-state polls while an action waits")
    workers: int = setting(4, "actions that may run at once (on different services)")

    def __post_init__(self) -> None:
        errors = []
        for name in ("migrate_timeout", "scale_timeout", "exclusion_ttl", "poll_interval"):
            if not getattr(self, name) > 0:
                errors.append(f"{name}: must be > 0")
        for name in ("max_actions_per_minute", "workers", "min_replicas"):
            if getattr(self, name) < 1:
                errors.append(f"{name}: must be >= 1")
        if self.max_replicas < self.min_replicas:
            errors.append("max_replicas: must be >= min_replicas")
        if self.scale_down_cooldown < 0:
            errors.append("scale_down_cooldown: must be >= 0")
        if errors:
            raise SettingsError("; ".join(errors))
