"""Grafana's side of a PromQL panel: template variables expanded as Grafana expands them, and
`label_values(...)` variable queries turned into the Prometheus API call Grafana makes.

Used by the lab test that runs every query of the Prometheus dashboards against a real Prometheus.
Grafana's rules (https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/):
`$__interval` is the query step, `$__rate_interval` is max($__interval + scrape interval,
4 x scrape interval), `$__range` the dashboard's time range; a multi-value variable set to All
becomes its `allValue` (ours: `.*`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A variable name starts with a letter or _: `$1` in label_replace's replacement is PromQL's, not Grafana's.
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Window:
    step_s: float  # the query's step, Grafana's $__interval
    scrape_s: float  # the datasource's scrape interval (its timeInterval setting)
    range_s: float  # the dashboard's time range

    @property
    def rate_interval_s(self) -> float:
        return max(self.step_s + self.scrape_s, 4 * self.scrape_s)


def _seconds(value: float) -> str:
    return f"{int(round(value))}s" if float(value).is_integer() or value >= 1 else f"{int(value * 1000)}ms"


def expand(expr: str, values: dict[str, str], window: Window) -> str:
    """`expr` with Grafana's built-in and the dashboard's variables replaced; KeyError names an unknown one."""
    builtins = {"__rate_interval": _seconds(window.rate_interval_s), "__interval": _seconds(window.step_s),
                "__interval_ms": str(int(window.step_s * 1000)), "__range": _seconds(window.range_s),
                "__range_s": str(int(window.range_s))}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in builtins:
            return builtins[name]
        if name not in values:
            raise KeyError(f"undefined variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def label_values(query: str) -> tuple[str | None, str]:
    """(series selector or None, label) of a `label_values([selector,] label)` variable query."""
    found = _LABEL_VALUES.match(query)
    if found is None:
        raise ValueError(f"not a label_values(...) query: {query!r}")
    return found.group("match"), found.group("label")
