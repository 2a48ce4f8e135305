"""The repository's Grafana files, loaded once, and every Flux query in them with its place."""
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
