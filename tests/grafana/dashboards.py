"""The repository's Grafana files, loaded once, and every query in them (Flux or PromQL) with its place.

Each dashboard says which kind of datasource it is for through its `datasource` template variable
(type `datasource`, query `influxdb` or `prometheus`): every panel, target, annotation and variable
refers to `${datasource}`, so the dashboard imports into any Grafana with such a datasource.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
PROVIDERS = GRAFANA / "provisioning" / "dashboards"


@dataclass(frozen=True)
class Query:
    dashboard: str  # file name
    place: str  # "panel 3 'CPU %'", "annotation 'Recovery actions'", "variable $node"
    text: str


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def datasource_kind(dashboard: dict[str, Any]) -> str | None:
    """The plugin type of the dashboard's `datasource` variable (influxdb, prometheus), None without one."""
    found = [v for v in variables(dashboard) if v.get("type") == "datasource" and v.get("name") == "datasource"]
    return str(found[0].get("query")) if found else None


def files_of(kind: str) -> list[Path]:
    return [p for p in dashboard_files() if datasource_kind(load(p)) == kind]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside rows (collapsed rows keep theirs in `panels`)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return dashboard.get("templating", {}).get("list", [])


def annotations(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Annotation queries, Grafana's built-in one (dashboard annotations) left out."""
    return [a for a in dashboard.get("annotations", {}).get("list", []) if not a.get("builtIn")]


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    return query.get("query", "") if isinstance(query, dict) else query


def queries(name: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield Query(name, f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}", target.get("query", ""))
    for annotation in annotations(dashboard):
        target = annotation.get("target") or {}
        yield Query(name, f"annotation {annotation.get('name')!r}", target.get("query", annotation.get("query", "")))
    for variable in variables(dashboard):
        if variable.get("type") == "query":
            yield Query(name, f"variable ${variable.get('name')}", _variable_query(variable))


def datasource_refs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every `datasource` value anywhere in a dashboard, with its JSON path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield f"{path}/{key}", value
            else:
                yield from datasource_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from datasource_refs(value, f"{path}/{i}")


def provisioned(folder: Path, key: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, item) for path in sorted(folder.glob("*.y*ml"))
            for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(key, [])]


@dataclass(frozen=True)
class PromQuery:
    dashboard: str
    place: str
    text: str
    kind: str  # "range" (a time series panel), "instant" (a table), "annotation", "variable"


def prom_queries(name: str, dashboard: dict[str, Any]) -> Iterator[PromQuery]:
    """Every PromQL expression of a Prometheus dashboard, as Grafana would send it (before expansion)."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            kind = "instant" if target.get("instant") and not target.get("range") else "range"
            yield PromQuery(name, f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}",
                            target.get("expr", ""), kind)
    for annotation in annotations(dashboard):
        yield PromQuery(name, f"annotation {annotation.get('name')!r}", annotation.get("expr", ""), "annotation")
    for variable in variables(dashboard):
        if variable.get("type") == "query":
            yield PromQuery(name, f"variable ${variable.get('name')}", _variable_query(variable), "variable")
