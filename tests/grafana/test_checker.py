"""The pieces of the dashboards test, tested: the line-protocol reader and the Flux name reader.

If these let a wrong name through, test_dashboards would pass on a dashboard that shows nothing.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.grafana import dashboards as gd
from tests.grafana.flux import problems, read_names
from tests.grafana.written import Measurement, parse_line, written_schema

SCHEMA = {
    "cpu": Measurement(tags={"host", "region"}, fields={"usage", "state"}),
    "disk": Measurement(tags={"host"}, fields={"free"}),
}
HEAD = 'from(bucket: v.defaultBucket)\n  |> range(start: v.timeRangeStart)\n'


def test_a_line_with_escapes_strings_integers_and_a_timestamp_is_read_back_exactly() -> None:
    point = parse_line(r'we\ ird\,m,host=a\ b\,c\=d,region=eu state="up, \"fine\" now",usage=1.5,n=3i,ok=t 1700000000123')
    assert point.measurement == "we ird,m"
    assert point.tags == {"host": "a b,c=d", "region": "eu"}
    assert point.fields == {"state": 'up, "fine" now', "usage": 1.5, "n": 3, "ok": True}
    assert point.timestamp == 1700000000123


@pytest.mark.parametrize("line", ["cpu", "cpu,host usage=1", 'cpu usage="open', "cpu usage=abc", "cpu a=1 2 3"])
def test_a_malformed_line_is_refused_with_the_line_in_the_message(line) -> None:
    with pytest.raises(ValueError, match="line|string"):
        parse_line(line)


def test_the_written_sets_include_every_measurement_of_the_exporter_controller_and_report() -> None:
    schema = written_schema()
    assert {"container_metrics", "node_metrics", "recovery_events", "test_results"} <= set(schema)
    assert schema["container_metrics"].source == "exporter/lineproto.py"
    assert schema["recovery_events"].source == "controller/events.py"
    assert all(m.tags and m.fields for m in schema.values())


def test_names_before_a_pivot_are_tags_and_after_it_tags_or_fields() -> None:
    names = read_names(HEAD + '''\
  |> filter(fn: (r) => r._measurement == "cpu" and r["host"] == "a" and r._field == "usage")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["region", "usage"])''')
    assert names.measurements == {"cpu"} and names.fields == {"usage"}
    assert names.tags == {"host"} and names.columns == {"region", "usage"}


def test_labels_a_map_creates_are_allowed_but_arguments_of_calls_inside_it_are_not_labels() -> None:
    query = HEAD + '''\
  |> filter(fn: (r) => r._measurement == "cpu")
  |> map(fn: (r) => ({r with label: string(v: r.region), other: r.host}))
  |> rename(columns: {label: "shown"})
  |> keep(columns: ["shown", "other", "v"])'''
    names = read_names(query)
    assert {"label", "other", "shown"} <= names.created and "v" not in names.created
    assert problems(query, SCHEMA) == ["unknown tag 'v' of cpu (written: host, region)"]


@pytest.mark.parametrize("query, expected", [
    ('filter(fn: (r) => r._measurement == "cpux")', "unknown measurement 'cpux'"),
    ('filter(fn: (r) => r._measurement == "cpu" and r._field == "usage2")', "unknown field 'usage2' of cpu"),
    ('filter(fn: (r) => r._measurement == "cpu" and r.hostname == "a")', "unknown tag 'hostname' of cpu"),
    ('filter(fn: (r) => r._measurement == "cpu") |> group(columns: ["hots"])', "unknown tag 'hots' of cpu"),
    ('filter(fn: (r) => r._measurement == "cpu") |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
     ' |> keep(columns: ["fre"])', "unknown column 'fre' of cpu after pivot"),
    ('filter(fn: (r) => r._measurement == "disk") |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
     ' |> keep(columns: ["usage"])', "unknown column 'usage' of disk after pivot"),
    ('filter(fn: (r) => r._measurement =~ /cp.*/)', 'r._measurement compared other than by == "literal"'),
    ('filter(fn: (r) => r._measurement == "cpu" and r._field != "usage")', 'r._field compared other than by == "literal"'),
    ('filter(fn: (r) => r._measurement == "cpu" and "usage" == r._field)', 'r._field compared other than by == "literal"'),
    ('filter(fn: (r) => r._measurement == "cpu" and r._field == v.f)', 'r._field compared other than by == "literal"'),
    ('filter(fn: (r) => r.host == "a")', "names no measurement"),
    ('filter(fn: (r) => r._measurement == "cpu" and r.host =~ /^${hots:regex}$/)', "undefined dashboard variable $hots"),
    ('import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "b", tag: "hots", predicate: (r) => r._measurement == "cpu")',
     "unknown tag 'hots' of cpu"),
])
def test_a_wrong_name_is_reported(query, expected) -> None:
    found = problems(HEAD + "  |> " + query, SCHEMA, variables={"host"})
    assert any(expected in p for p in found), found


def test_a_query_that_names_only_written_things_has_no_problem() -> None:
    query = HEAD + '''\
  // a comment naming r.nothing is ignored
  |> filter(fn: (r) => r._measurement == "cpu" and (r._field == "usage" or r._field == "state"))
  |> filter(fn: (r) => r.host =~ /^${host:regex}$/ and r.region == "eu")
  |> group(columns: ["host", "_field"])
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)'''
    assert problems(query, SCHEMA, variables={"host"}) == []


def _queries_of(dashboard: dict[str, Any]) -> dict[str, str]:
    return {q.place: q.text for q in gd.queries("d.json", dashboard)}


@pytest.mark.parametrize("path", gd.files_of("influxdb"), ids=lambda p: p.name)
def test_a_typo_in_any_query_of_a_real_dashboard_is_reported_with_its_place_and_name(path) -> None:
    """Every query place (panel target, annotation, variable): misspell its first quoted name."""
    original = gd.load(path)
    schema = written_schema()
    defined = {v["name"] for v in gd.variables(original)}
    for place, text in _queries_of(original).items():
        names = read_names(text)
        name = sorted(names.fields | names.tags | names.measurements)[0]
        broken_text = text.replace(f'"{name}"', f'"{name}x"').replace(f"r.{name} ", f"r.{name}x ")
        assert broken_text != text, f"{place}: could not misspell {name}"
        broken = json.loads(json.dumps(original).replace(json.dumps(text)[1:-1], json.dumps(broken_text)[1:-1]))
        found = [p for q in gd.queries(path.name, broken) if q.place == place
                 for p in problems(q.text, schema, variables=defined)]
        assert any(f"'{name}x'" in p for p in found), f"{path.name}, {place}: typo {name}x not reported: {found}"


def test_a_datasource_reference_to_another_uid_is_found_anywhere_in_a_dashboard() -> None:
    dashboard = copy.deepcopy(gd.load(gd.files_of("influxdb")[0]))
    dashboard["panels"][0]["targets"][0]["datasource"] = {"type": "influxdb", "uid": "other"}
    refs = [ref for _where, ref in gd.datasource_refs(dashboard)]
    assert {"type": "influxdb", "uid": "other"} in refs
