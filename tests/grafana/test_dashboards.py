"""The Grafana dashboards query only what SwarmGuard really writes, and load as provisioned.

The measurement, tag and field names come from the writers' code (tests/grafana/written.py), so a
renamed field in the exporter, the controller or the report turns this test red instead of leaving
a dashboard that silently shows nothing.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.grafana import dashboards as gd
from tests.grafana.flux import problems, read_names
from tests.grafana.written import Schema, written_schema

DATASOURCE_TYPE = "influxdb"
GRAFANA_BUILTIN_DATASOURCES = {"-- Grafana --", "grafana"}
CORE_PANEL_TYPES = {"timeseries", "table", "barchart", "stat", "gauge", "bargauge", "text", "row", "state-timeline"}
FILES = gd.dashboard_files()
NAMES = [p.name for p in FILES]


@pytest.fixture(scope="module")
def schema() -> Schema:
    return written_schema()


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    sources = gd.provisioned(gd.DATASOURCES, "datasources")
    assert len(sources) == 1, f"expected one provisioned datasource, found {[s.get('name') for _p, s in sources]}"
    return sources[0][1]["uid"]


@pytest.mark.parametrize("path", FILES, ids=NAMES)
def test_every_dashboard_file_is_json_with_panels(path) -> None:
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path.name}: not JSON: {exc}", pytrace=False)
    assert isinstance(dashboard, dict) and dashboard.get("panels"), f"{path.name}: no panels"
    odd = sorted({p.get("type") for p in gd.panels(dashboard)} - CORE_PANEL_TYPES)
    assert not odd, f"{path.name}: panel types that need a plugin or do not exist: {odd}"


def test_there_are_the_three_dashboards_of_issue_6() -> None:
    titles = {gd.load(p)["title"] for p in FILES}
    assert {"SwarmGuard containers", "SwarmGuard nodes", "SwarmGuard recovery"} <= titles


@pytest.mark.parametrize("path", FILES, ids=NAMES)
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
    empty = [p.get("title") for p in gd.panels(dashboard) if p.get("type") != "row"
             and not any(t.get("query", "").strip() for t in p.get("targets", []))]
    assert not empty, f"{path.name}: panels without a Flux query: {empty}"
    unbound = [p.get("title") for p in gd.panels(dashboard) if p.get("type") != "row"
               and ("datasource" not in p or any("datasource" not in t for t in p.get("targets", [])))]
    assert not unbound, f"{path.name}: panels or targets without a datasource (would use whatever is default): {unbound}"


@pytest.mark.parametrize("path", FILES, ids=NAMES)
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
def test_every_datasource_reference_is_the_provisioned_influxdb(path, datasource_uid) -> None:
    wrong = []
    for where, ref in gd.datasource_refs(gd.load(path)):
        if isinstance(ref, dict) and ref.get("uid") in GRAFANA_BUILTIN_DATASOURCES:
            continue
        if not (isinstance(ref, dict) and ref.get("uid") == datasource_uid and ref.get("type") == DATASOURCE_TYPE):
            wrong.append(f"{where}: {json.dumps(ref)}")
    assert not wrong, f"{path.name}: datasource not {{type: {DATASOURCE_TYPE}, uid: {datasource_uid}}}:\n" + "\n".join(wrong)


def test_the_datasource_is_influxdb_2_with_flux_and_every_setting_from_the_environment() -> None:
    (path, source), = gd.provisioned(gd.DATASOURCES, "datasources")
    assert source["type"] == DATASOURCE_TYPE and source["jsonData"]["version"] == "Flux"
    settings = {"url": source["url"], "organization": source["jsonData"]["organization"],
                "defaultBucket": source["jsonData"]["defaultBucket"], "token": source["secureJsonData"]["token"]}
    literal = {k: v for k, v in settings.items() if not re.fullmatch(r"\$\{\w+\}|\$__env\{\w+\}|\$__file\{[^}]+\}", v)}
    assert not literal, f"{path.name}: settings not taken from the environment: {literal}"


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
