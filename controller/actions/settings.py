"""The recovery actions' settings: global limits, and one setting per plugin setting and rule parameter.

Nested in the controller's settings as `actions` (controller/settings.py): YAML `actions:`,
environment `CONTROLLER_ACTIONS_<NAME>`, options `--actions-<name>`. The global limits are written
here. Every other setting comes from the action plugins (controller/actions/registry.py): each
plugin-wide setting (`ActionPlugin.settings`, e.g. `migrate_timeout`) and each rule parameter
(`max_replicas`, `exclusion_ttl`, ...: the default of rules that name none) becomes a field of
`ActionSettings` with the plugin's own default, help and bounds (`Param`), so a new plugin brings
its settings along and each default and each bound is written once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.actions.plugin import Param, ParamKind, ParamValue
from controller.actions.registry import PLUGINS, all_params, all_settings, takers
from sgcommon.settings import SettingsError, setting


@dataclass(frozen=True)
class ActionLimits:
    """The settings that belong to no single action: the executor's global limits."""

    dry_run: bool = setting(False, "log and record what an action would do, change nothing")
    max_actions_per_minute: int = setting(10, "actions started per minute at most, all services together")
    max_moving: int = setting(1, "disruption budget: tasks of one service in transition because of SwarmGuard, at most")
    max_moving_total: int = setting(3, "disruption budget: tasks in transition because of SwarmGuard, all services together")
    poll_interval: float = setting(0.1, "seconds between task-state polls while an action waits")
    workers: int = setting(4, "actions that may run at once (on different services)")

    def value(self, param: Param) -> ParamValue:
        """The setting of a plugin's parameter or plugin-wide setting."""
        found: ParamValue = getattr(self, param.name)
        return found

    def __post_init__(self) -> None:
        errors = []
        if not self.poll_interval > 0:
            errors.append("poll_interval: must be > 0")
        for name in ("max_actions_per_minute", "workers", "max_moving", "max_moving_total"):
            if getattr(self, name) < 1:
                errors.append(f"{name}: must be >= 1")
        if self.max_moving_total < self.max_moving:
            errors.append("max_moving_total: must be >= max_moving")
        values = {name: getattr(self, name) for name in (*all_settings(), *all_params())}
        for name, param in {**all_settings(), **all_params()}.items():
            problem = param.problem(values[name])
            if problem:
                errors.append(f"{name}: {problem}")
        for plugin in PLUGINS.values():
            if plugin.settings_check is not None and not errors:
                errors += plugin.settings_check(values)
        if errors:
            raise SettingsError("; ".join(errors))


def _field(param: Param, help: str) -> tuple[str, type, Any]:
    return param.name, int if param.kind is ParamKind.COUNT else float, setting(param.default, help)


def _plugin_fields() -> list[tuple[str, type, Any]]:
    fields = [_field(param, param.help) for param in all_settings().values()]
    for name, param in all_params().items():
        fields.append(_field(param, f"{param.help} ({' and '.join(takers(name))} rules that name none)"))
    return fields


if TYPE_CHECKING:
    class ActionSettings(ActionLimits):
        """ActionLimits plus one field per plugin setting and rule parameter (made below)."""

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> ParamValue: ...
else:
    ActionSettings = dataclasses.make_dataclass(
        "ActionSettings", _plugin_fields(), bases=(ActionLimits,), frozen=True,
        namespace={"__module__": __name__,
                   "__doc__": "ActionLimits plus one field per plugin setting and rule parameter."})
