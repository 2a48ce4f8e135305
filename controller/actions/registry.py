"""Every recovery action SwarmGuard knows, in one list; adding one is a module and a line here.

The rule loader reads names, scopes and parameters from here, the executor runs what it finds here,
and the settings make one `actions.<name>` setting of each parameter and plugin-wide setting found
here (docs/controller.md shows the tree).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from controller.actions.migrate import MIGRATE
from controller.actions.plugin import ActionPlugin, Param, ParamValue
from controller.actions.rebalance import REBALANCE
from controller.actions.scale import SCALE_DOWN, SCALE_UP

if TYPE_CHECKING:
    from controller.actions.settings import ActionSettings

PLUGINS: Mapping[str, ActionPlugin] = MappingProxyType(
    {p.name: p for p in (MIGRATE, SCALE_UP, SCALE_DOWN, REBALANCE)})


def all_params() -> dict[str, Param]:
    """Every rule parameter of every action, by name (an action may share one with another)."""
    return {param.name: param for plugin in PLUGINS.values() for param in plugin.params}


def all_settings() -> dict[str, Param]:
    """Every plugin-wide setting (time-outs), by name (shared ones once)."""
    return {param.name: param for plugin in PLUGINS.values() for param in plugin.settings}


def takers(name: str) -> list[str]:
    """The actions that take the rule parameter `name`."""
    return [plugin.name for plugin in PLUGINS.values() if any(p.name == name for p in plugin.params)]


def param_defaults(settings: ActionSettings | None = None) -> dict[str, ParamValue]:
    """Each rule parameter's default: the `actions.<name>` setting when given, else the plugin's own."""
    return {name: getattr(settings, name, param.default) if settings is not None else param.default
            for name, param in all_params().items()}
