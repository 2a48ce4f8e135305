"""The recovery actions' settings: global limits, time-outs, and the defaults of rule parameters.

Nested in the controller's settings as `actions` (controller/settings.py): YAML `actions:`,
environment `CONTROLLER_ACTIONS_<NAME>`, options `--actions-<name>`. The rule-parameter settings
(`max_replicas`, `min_replicas`, `exclusion_ttl`, `after_scale_up`) start from the plugin's own
default and are checked by the plugin's own rule (controller/actions/plugin.py `Param`), so each
default and each bound is written once.
"""
from __future__ import annotations

from dataclasses import dataclass

from controller.actions.migrate import EXCLUSION_TTL
from controller.actions.scale import AFTER_SCALE_UP, MAX_REPLICAS, MIN_REPLICAS
from sgcommon.settings import SettingsError, setting


@dataclass(frozen=True)
class ActionSettings:
    dry_run: bool = setting(False, "log and record what an action would do, change nothing")
    max_actions_per_minute: int = setting(10, "actions started per minute at most, all services together")
    max_moving: int = setting(1, "disruption budget: tasks of one service in transition because of SwarmGuard, at most")
    max_moving_total: int = setting(3, "disruption budget: tasks in transition because of SwarmGuard, all services together")
    migrate_timeout: float = setting(60.0, "seconds a migration may take before it is recorded as timed out")
    scale_timeout: float = setting(60.0, "seconds a scale action may take before it is recorded as timed out")
    poll_interval: float = setting(0.1, "seconds between task-state polls while an action waits")
    workers: int = setting(4, "actions that may run at once (on different services)")
    exclusion_ttl: float = setting(EXCLUSION_TTL.default, f"{EXCLUSION_TTL.help} (migrate rules that name none)")
    after_scale_up: float = setting(AFTER_SCALE_UP.default, f"{AFTER_SCALE_UP.help} (scale_down rules that name none)")
    max_replicas: int = setting(MAX_REPLICAS.default, f"{MAX_REPLICAS.help} (scale_up rules that name none)")
    min_replicas: int = setting(MIN_REPLICAS.default, f"{MIN_REPLICAS.help} (scale_down rules that name none)")

    def __post_init__(self) -> None:
        errors = []
        for name in ("migrate_timeout", "scale_timeout", "poll_interval"):
            if not getattr(self, name) > 0:
                errors.append(f"{name}: must be > 0")
        for name in ("max_actions_per_minute", "workers", "max_moving", "max_moving_total"):
            if getattr(self, name) < 1:
                errors.append(f"{name}: must be >= 1")
        if self.max_moving_total < self.max_moving:
            errors.append("max_moving_total: must be >= max_moving")
        for param in (EXCLUSION_TTL, AFTER_SCALE_UP, MAX_REPLICAS, MIN_REPLICAS):
            problem = param.problem(getattr(self, param.name))
            if problem:
                errors.append(f"{param.name}: {problem}")
        if self.max_replicas < self.min_replicas:
            errors.append("max_replicas: must be >= min_replicas")
        if errors:
            raise SettingsError("; ".join(errors))
