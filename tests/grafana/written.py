"""What SwarmGuard really writes to InfluxDB, read back from the code that writes it.

The dashboards test checks every measurement, tag and field a Flux query names against these
sets. They are not typed in by hand: each measurement's sets come from a real line built by the
writer's own function (exporter.lineproto, controller.events) with every optional value filled in,
then parsed back as line protocol. test_results comes from labkit/report.py's
`test_results_lines`; only while that module is absent, from the names docs/report.md fixes.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from controller.events import to_line
from controller.model import ActionRecord, Result, Timeline
from exporter.lineproto import sweep_lines
from exporter.procfs import NetCounters
from exporter.sample import ContainerSample, NodeSample, Sweep
from sgcommon.engine.containers import LocalContainer

TS = 1_700_000_000.5


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | str | bool]
    timestamp: int | None


@dataclass
class Measurement:
    tags: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    source: str = ""


Schema = dict[str, Measurement]


def _split(text: str, sep: str) -> list[str]:
    """Splits on `sep` outside double quotes and not escaped by a backslash (escapes kept)."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise ValueError(f"unterminated string in line protocol: {text!r}")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _key_value(text: str, line: str) -> tuple[str, str]:
    pair = _split(text, "=")
    if len(pair) < 2 or not pair[0]:
        raise ValueError(f"no key=value in {text!r} of line {line!r}")
    return _unescape(pair[0]), "=".join(pair[1:])


def _field_value(raw: str, line: str) -> float | int | str | bool:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return _unescape(raw[1:-1])
    if raw.endswith("i") or raw.endswith("u"):
        return int(raw[:-1])
    if raw in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return raw[0] in "tT"
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"bad field value {raw!r} in line {line!r}") from None


def parse_line(line: str) -> Point:
    """One InfluxDB line-protocol line: measurement[,tag=v...] field=v[,field=v...] [timestamp]."""
    parts = _split(line.strip(), " ")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected 'key fields [timestamp]' in line {line!r}")
    key, *tags = _split(parts[0], ",")
    if not key:
        raise ValueError(f"no measurement in line {line!r}")
    fields = dict(_key_value(f, line) for f in _split(parts[1], ","))
    return Point(
        measurement=_unescape(key),
        tags={k: _unescape(v) for k, v in (_key_value(t, line) for t in tags)},
        fields={k: _field_value(v, line) for k, v in fields.items()},
        timestamp=int(parts[2]) if len(parts) == 3 else None,
    )


def schema_of(lines: list[str], *, source: str) -> Schema:
    schema: Schema = {}
    for text in lines:
        point = parse_line(text)
        entry = schema.setdefault(point.measurement, Measurement(source=source))
        entry.tags |= set(point.tags)
        entry.fields |= set(point.fields)
    return schema


def exporter_lines() -> list[str]:
    """A sweep with a Swarm task (every tag set) and the node, through exporter.lineproto."""
    meta = LocalContainer(id="c" * 64, name="web.1.abc", service="web", task_id="task-1", pid=10,
                          cpu_limit=0.5, memory_limit=256 << 20)
    net = NetCounters(rx_bytes=1000, rx_packets=10, tx_bytes=2000, tx_packets=20)
    container = ContainerSample(meta=meta, node="worker-1", ts=TS, cpu_percent=12.5, memory_bytes=64 << 20,
                                memory_percent=25.0, net=net, rx_mbps=1.5, tx_mbps=0.5, network_percent=2.0)
    node = NodeSample(node="worker-1", ts=TS, iface="eth0", cpu_percent=40.0, memory_percent=60.0, net=net,
                      rx_mbps=2.0, tx_mbps=1.0, network_percent=3.0)
    return sweep_lines(Sweep(ts=TS, duration=0.01, node=node, containers=(container,)))


def controller_records() -> list[ActionRecord]:
    """A finished migration (every timestamp and both nodes) and a scale-up."""
    full = Timeline(*(TS + i * 0.1 for i in range(7)))
    migrate = ActionRecord(id="a1", action="migrate", service="web", rule="cpu-high", result=Result.SUCCESS,
                           timeline=full, node_from="worker-1", node_to="worker-2", container_id="c" * 64)
    scale = ActionRecord(id="a2", action="scale_up", service="web", rule="traffic-high", result=Result.SUCCESS,
                         timeline=Timeline(t0=TS, t1=TS, t2=TS, t3=TS, t4=TS, t5=TS + 3),
                         replicas_before=1, replicas_after=2)
    return [migrate, scale]


def controller_lines() -> list[str]:
    return [to_line(record, at=TS) for record in controller_records()]


# docs/report.md: measurement test_results (tags test_case, scenario; fields mttr_seconds,
# downtime_seconds, failed_requests). Used only while labkit/report.py does not exist.
DOCUMENTED_TEST_RESULTS = "test_results,test_case=proactive,scenario=scenario1 mttr_seconds=4.2,downtime_seconds=0.0,failed_requests=0i"
REPORT_MODULE = "labkit.report"


def report_lines() -> tuple[list[str], str]:
    """test_results lines and where they came from."""
    if importlib.util.find_spec(REPORT_MODULE) is None:
        return [DOCUMENTED_TEST_RESULTS], "docs/report.md (labkit/report.py not there)"
    return report_module_lines(importlib.import_module(REPORT_MODULE)), "labkit/report.py"


def report_module_lines(report: Any) -> list[str]:
    """A reactive and a proactive run (every figure measured) through report.test_results_lines."""
    migrate = controller_records()[0]
    reactive = report.ReactiveRun(mode="crash", first_ok_s=7.1, downtime_s=7.0, failed_requests=12, requests=80,
                                  broke_at=TS)
    probe = report.ProbeSummary(requests=80, failures=0, longest_gap=0.2, total_downtime=0.0)
    proactive = report.ProactiveRun(scenario="scenario1", actions=(migrate,), probe=probe)
    lines = report.test_results_lines([reactive, proactive])
    if len(lines) != 2:
        raise AssertionError(f"report.test_results_lines gave {len(lines)} lines for 2 runs: {lines}")
    return lines


def written_schema() -> Schema:
    """Every measurement SwarmGuard writes, with its tags and fields, from the writers' code."""
    lines, report_source = report_lines()
    schema: Schema = {}
    for part in (schema_of(exporter_lines(), source="exporter/lineproto.py"),
                 schema_of(controller_lines(), source="controller/events.py"),
                 schema_of(lines, source=report_source)):
        for name, entry in part.items():
            if name in schema:
                raise AssertionError(f"measurement {name} written by both {schema[name].source} and {entry.source}")
            schema[name] = entry
    return schema
