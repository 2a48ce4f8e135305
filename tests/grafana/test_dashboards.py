"""The Grafana dashboards query only what SwarmGuard really writes, and load as provisioned.

The Flux dashboards: the measurement, tag and field names come from the writers' code
(tests/grafana/written.py), so a renamed field in the exporter, the controller or the report turns
this test red instead of leaving a dashboard that silently shows nothing. The Prometheus
dashboards' queries are run for real against a real Prometheus on the lab
(tests/lab/test_prometheus_on_lab.py); here they are checked for what needs no server: the
datasource variable, units, ids.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.grafana import dashboards as gd
from tests.grafana.flux import problems, read_names
from tests.grafana.written import Schema, written_schema

GRAFANA_BUILTIN_DATASOURCES = {"-- Grafana --", "grafana"}
CORE_PANEL_TYPES = {"timeseries", "table", "barchart", "stat", "gauge", "bargauge", "text", "row", "state-timeline"}
FILES = gd.dashboard_files()
NAMES = [p.name for p in FILES]
FLUX_FILES = gd.files_of("influxdb")
FLUX_NAMES = [p.name for p in FLUX_FILES]
# Grafana unit ids and what they mean; `decmbytes` is SI megabytes (10^6), `mbytes` is MiB (2^20).
UNITS = {"percent": "0-100 %", "mbytes": "MiB", "bytes": "bytes, shown in KiB/MiB/GiB", "Mbits": "Mbit/s (10^6 bits)",
         "s": "seconds", "none": "a plain number", "reqps": "per second"}
# What a query reads decides the unit of its panel: (pattern in the query, unit).
UNIT_OF_QUERY = [
    (re.compile(r'memory_mb"'), "mbytes"),  # container_metrics' memory_mb field is MiB
    (re.compile(r'_percent\b|_percent"'), "percent"),
    (re.compile(r'_mbps\b|_mbps"|\* 8 / 1e6'), "Mbits"),
    (re.compile(r"^swarmguard_container_memory_bytes\{"), "bytes"),
    (re.compile(r'_seconds_bucket\b|mttr_seconds|downtime_seconds'), "s"),
]


@pytest.fixture(scope="module")
def schema() -> Schema:
    return written_schema()


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_every_dashboard_file_is_json_with_panels(path) -> None:
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path.name}: not JSON: {exc}", pytrace=False)
    assert isinstance(dashboard, dict) and dashboard.get("panels"), f"{path.name}: no panels"
    odd = sorted({p.get("type") for p in gd.panels(dashboard)} - CORE_PANEL_TYPES)
    assert not odd, f"{path.name}: panel types that need a plugin or do not exist: {odd}"


def test_there_are_the_three_dashboards_for_flux_and_for_prometheus() -> None:
    titles = {gd.load(p)["title"] for p in FILES}
    assert {"SwarmGuard containers", "SwarmGuard nodes", "SwarmGuard recovery"} <= titles
    assert {"SwarmGuard containers (Prometheus)", "SwarmGuard nodes (Prometheus)", "SwarmGuard recovery (Prometheus)"} <= titles
    assert len(FLUX_FILES) == len(gd.files_of("prometheus")) == 3 and len(FILES) == 6, "a dashboard without a datasource variable"


@pytest.mark.parametrize("path", FLUX_FILES, ids=FLUX_NAMES)
def test_every_query_names_only_measurements_tags_and_fields_that_are_written(path, schema) -> None:
    dashboard = gd.load(path)
    defined = {v["name"] for v in gd.variables(dashboard)}
    found = [f"{q.dashboard}, {q.place}: {p}" for q in gd.queries(path.name, dashboard)
             for p in problems(q.text, schema, variables=defined)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_every_panel_has_a_query_and_a_unique_id(path) -> None:
    dashboard = gd.load(path)
    ids = [p.get("id") for p in gd.panels(dashboard)]
    assert all(isinstance(i, int) for i in ids), f"{path.name}: panel ids {ids}"
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids in {ids}"
    key = "query" if gd.datasource_kind(dashboard) == "influxdb" else "expr"
    empty = [p.get("title") for p in gd.panels(dashboard) if p.get("type") != "row"
             and not any(t.get(key, "").strip() for t in p.get("targets", []))]
    assert not empty, f"{path.name}: panels without a {key}: {empty}"
    unbound = [p.get("title") for p in gd.panels(dashboard) if p.get("type") != "row"
               and ("datasource" not in p or any("datasource" not in t for t in p.get("targets", [])))]
    assert not unbound, f"{path.name}: panels or targets without a datasource (would use whatever is default): {unbound}"


@pytest.mark.parametrize("path", FLUX_FILES, ids=FLUX_NAMES)
def test_annotation_mappings_name_columns_that_the_annotation_query_makes(path) -> None:
    for annotation in gd.annotations(gd.load(path)):
        made = read_names(annotation["target"]["query"]).created
        mapped = {m["value"] for m in annotation.get("mappings", {}).values() if m.get("source") == "field"}
        assert mapped <= made, f"{path.name}, annotation {annotation['name']!r}: mapped {sorted(mapped - made)} not made by its query"


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_the_dashboard_is_for_grafana_10_with_a_fixed_uid(path) -> None:
    dashboard = gd.load(path)
    assert 36 <= dashboard.get("schemaVersion", 0) <= 39, f"{path.name}: schemaVersion {dashboard.get('schemaVersion')}"
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dashboard.get("uid") or ""), f"{path.name}: uid {dashboard.get('uid')!r}"
    assert dashboard.get("id") is None, f"{path.name}: an exported id would clash on import; remove it"


def test_dashboard_uids_and_titles_are_unique() -> None:
    loaded = [gd.load(p) for p in FILES]
    for key in ("uid", "title"):
        values = [d[key] for d in loaded]
        assert len(values) == len(set(values)), f"duplicate dashboard {key}s: {values}"


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_every_datasource_reference_is_the_dashboards_datasource_variable(path) -> None:
    """No hard-coded uid: the dashboard imports into any Grafana that has a datasource of its kind."""
    dashboard = gd.load(path)
    kind = gd.datasource_kind(dashboard)
    assert kind in ("influxdb", "prometheus"), f"{path.name}: no `datasource` variable of type datasource"
    wrong = []
    for where, ref in gd.datasource_refs(dashboard):
        if isinstance(ref, dict) and ref.get("uid") in GRAFANA_BUILTIN_DATASOURCES:
            continue
        if not (isinstance(ref, dict) and ref.get("uid") == "${datasource}" and ref.get("type") == kind):
            wrong.append(f"{where}: {json.dumps(ref)}")
    assert not wrong, f"{path.name}: datasource not {{type: {kind}, uid: ${{datasource}}}}:\n" + "\n".join(wrong)
    unbound = [f"{p.get('title')} {t.get('refId')}" for p in gd.panels(dashboard) for t in p.get("targets", [])
               if (t.get("datasource") or {}).get("uid") != "${datasource}"]
    unbound += [p.get("title") for p in gd.panels(dashboard) if (p.get("datasource") or {}).get("uid") != "${datasource}"]
    unbound += [a.get("name") for a in gd.annotations(dashboard) if (a.get("datasource") or {}).get("uid") != "${datasource}"]
    unbound += [v.get("name") for v in gd.variables(dashboard)
                if v.get("type") == "query" and (v.get("datasource") or {}).get("uid") != "${datasource}"]
    assert not unbound, f"{path.name}: not bound to ${{datasource}}: {unbound}"
    text = path.read_text(encoding="utf-8")
    assert "swarmguard-influxdb" not in text and "swarmguard-prometheus" not in text, f"{path.name}: a provisioned uid"


def _units(panel: dict[str, Any]) -> dict[str, Any]:
    config = panel.get("fieldConfig", {})
    found = {"defaults": config.get("defaults", {}).get("unit")}
    for override in config.get("overrides", []):
        for prop in override.get("properties", []):
            if prop.get("id") == "unit":
                found[f"override {override.get('matcher', {}).get('options')}"] = prop.get("value")
    return found


def unit_problems(panel: dict[str, Any]) -> list[str]:
    """A unit Grafana does not know by that id, or one that is not what the panel's queries return."""
    wrong = [f"panel {panel.get('title')!r} {where}: unknown unit {unit!r} (known: {', '.join(UNITS)})"
             for where, unit in _units(panel).items() if unit is not None and unit not in UNITS]
    if panel.get("type") != "table":  # a table's columns carry their own units (overrides)
        texts = [t.get("query") or t.get("expr") or "" for t in panel.get("targets", [])]
        expected = {unit for text in texts for pattern, unit in UNIT_OF_QUERY if pattern.search(text)}
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if len(expected) == 1 and unit not in expected:
            wrong.append(f"panel {panel.get('title')!r}: unit {unit!r}, its queries are in {expected.pop()}")
    return wrong


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_every_unit_is_a_grafana_unit_that_matches_what_the_panel_queries(path) -> None:
    wrong = [problem for panel in gd.panels(gd.load(path)) for problem in unit_problems(panel)]
    assert not wrong, f"{path.name}:\n" + "\n".join(wrong)


def test_the_unit_check_tells_mib_from_si_megabytes() -> None:
    panel = {"title": "Memory", "type": "timeseries", "fieldConfig": {"defaults": {"unit": "decmbytes"}},
             "targets": [{"query": 'filter(fn: (r) => r._field == "memory_mb")'}]}
    assert len(unit_problems(panel)) == 2  # unknown here, and not MiB
    panel["fieldConfig"]["defaults"]["unit"] = "mbytes"
    assert unit_problems(panel) == []


def test_the_datasources_are_influxdb_2_with_flux_and_prometheus_every_setting_from_outside() -> None:
    sources = {source["type"]: (path, source) for path, source in gd.provisioned(gd.DATASOURCES, "datasources")}
    assert sorted(sources) == ["influxdb", "prometheus"]
    path, influx = sources["influxdb"]
    assert influx["jsonData"]["version"] == "Flux"
    settings = {"url": influx["url"], "organization": influx["jsonData"]["organization"],
                "defaultBucket": influx["jsonData"]["defaultBucket"], "token": influx["secureJsonData"]["token"]}
    literal = {k: v for k, v in settings.items() if not re.fullmatch(r"\$\{\w+\}|\$__env\{\w+\}|\$__file\{[^}]+\}", v)}
    assert not literal, f"{path.name}: settings not taken from the environment or a file: {literal}"
    assert influx["secureJsonData"]["token"] == "$__file{/run/secrets/swarmguard-influxdb-token}"
    path, prom = sources["prometheus"]
    assert re.fullmatch(r"\$\{\w+\}", prom["url"]), f"{path.name}: url {prom['url']!r} is not from the environment"


def test_grafana_reads_the_token_secret_itself_with_no_entrypoint_override() -> None:
    import yaml

    stack = yaml.safe_load((gd.GRAFANA.parent / "swarm" / "stack.yml").read_text(encoding="utf-8"))
    grafana = stack["services"]["grafana"]
    assert "entrypoint" not in grafana and "command" not in grafana
    assert "swarmguard-influxdb-token" in grafana["secrets"]
    mounted = {c["target"].rsplit("/", 1)[1] for c in grafana["configs"]}
    missing = sorted({p.name for p in FILES} - mounted)
    assert not missing, f"dashboards not provisioned by the stack: {missing}"
    assert {p.name for p in gd.DATASOURCES.glob("*.yml")} <= mounted


def test_no_provisioning_file_holds_a_literal_token() -> None:
    secret_keys = re.compile(r"^\s*(token|password|basicAuthPassword|httpHeaderValue\d*)\s*:\s*(.*)$", re.MULTILINE)
    for path in sorted((gd.GRAFANA / "provisioning").rglob("*.y*ml")):
        for key, value in secret_keys.findall(path.read_text(encoding="utf-8")):
            assert re.fullmatch(r"\$\{\w+\}|\$__env\{\w+\}|\$__file\{[^}]+\}", value.strip().strip("'\"")), \
                f"{path.name}: {key} is a literal, not an environment or file reference"


def test_the_dashboards_provider_loads_the_folder_the_docs_mount() -> None:
    (path, provider), = gd.provisioned(gd.PROVIDERS, "providers")
    mount = provider["options"]["path"]
    assert provider["type"] == "file"
    for doc in (gd.GRAFANA / "README.md", gd.GRAFANA.parent / "docs" / "grafana.md"):
        assert mount in doc.read_text(encoding="utf-8"), f"{doc.name} does not say to mount the dashboards at {mount}"
