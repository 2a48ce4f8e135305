"""Serialising a sweep: line protocol as exact strings, Prometheus text from a fresh registry."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.lineproto import sweep_lines
from exporter.metrics import SelfMetrics, SweepCollector, SweepText, format_value
from exporter.sample import ContainerSample
from sgcommon.lineproto import escape_tag as escape_key
from tests.exporter.samples import CID, sample, sweep
from tests.support import unavailable


def test_a_sweep_becomes_container_and_node_lines_in_milliseconds() -> None:
    assert sweep_lines(sweep(sample()), "ms") == [
        f"container_metrics,node=worker-1,service_name=web,container_id={CID},task_id=task-1 "
        "cpu_percent=12.5,memory_mb=256.0,memory_percent=25.0,network_rx_bytes=1000i,network_tx_bytes=2000i,"
        "network_rx_mbps=1.5,network_tx_mbps=1.5,network_percent=3.0 1700000000250",
        "node_metrics,node=worker-1 cpu_percent=40.0,memory_percent=60.0,network_rx_bytes=5i,network_tx_bytes=7i,"
        "network_rx_mbps=2.0,network_tx_mbps=1.0,network_percent=3.0 1700000000250",
    ]


def test_an_empty_task_id_is_left_out_and_odd_characters_are_escaped() -> None:
    (line,) = sweep_lines(sweep(sample(service="my web,x=1", task=""), with_node=False), "s")
    assert line.startswith(f"container_metrics,node=worker-1,service_name=my\\ web\\,x\\=1,container_id={CID} cpu_percent=")
    assert line.endswith(" 1700000000")
    assert escape_key("a\\b") == "a\\\\b"


def exposition(*samples: ContainerSample, with_node: bool = True) -> str:
    """The /metrics body as the exporter serves it: the sweep written directly, then its own figures."""
    metrics = SelfMetrics()
    metrics.duration.observe(0.002)
    latest = sweep(*samples, with_node=with_node)
    return (SweepText().render(latest) + generate_latest(metrics.registry)).decode()


def families(text: str) -> dict[str, tuple[str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]:
    return {f.name: (f.type, sorted((smp.name, tuple(sorted(smp.labels.items())), smp.value) for smp in f.samples))
            for f in text_string_to_metric_families(text)}


LABELS = (f'{{container_id="{CID}",image="10.99.0.1:5000/stressapp:latest",name="web.1.task-1",node="worker-1",'
          'service="web",task_id="task-1"}')


def test_the_exposition_carries_the_contracted_names_and_labels() -> None:
    text = exposition(sample())
    for line in (
        f"swarmguard_container_cpu_percent{LABELS} 12.5",
        f"swarmguard_container_memory_bytes{LABELS} 268435456.0",
        f"swarmguard_container_memory_percent{LABELS} 25.0",
        f"swarmguard_container_network_percent{LABELS} 3.0",
        f"swarmguard_container_network_receive_mbps{LABELS} 1.5",
        f"swarmguard_container_network_transmit_mbps{LABELS} 1.5",
        f"swarmguard_container_sample_timestamp_seconds{LABELS} 1700000000.25",
        f"swarmguard_container_network_receive_bytes_total{LABELS} 1000.0",
        f"swarmguard_container_network_transmit_bytes_total{LABELS} 2000.0",
        'swarmguard_node_cpu_percent{node="worker-1"} 40.0',
        'swarmguard_node_memory_percent{node="worker-1"} 60.0',
        'swarmguard_node_network_percent{node="worker-1"} 3.0',
        'swarmguard_exporter_errors_total{kind="vanished"} 0.0',
        "swarmguard_exporter_collection_seconds_count 1.0",
    ):
        assert line in text.splitlines(), line


def test_cpu_and_limits_are_exposed_in_base_units_for_promql() -> None:
    lines = exposition(sample()).splitlines()
    assert "# TYPE swarmguard_container_cpu_seconds_total counter" in lines
    assert f"swarmguard_container_cpu_seconds_total{LABELS} 12.5" in lines  # 12.5e9 ns
    assert f"swarmguard_container_cpu_limit_cores{LABELS} 0.5" in lines
    assert f"swarmguard_container_memory_limit_bytes{LABELS} 1073741824.0" in lines
    assert "# TYPE swarmguard_container_network_receive_bytes_total counter" in lines
    assert 'swarmguard_node_cpus{node="worker-1"} 2.0' in lines
    assert "# TYPE swarmguard_node_cpu_seconds_total counter" in lines
    tick = os.sysconf("SC_CLK_TCK")
    assert f'swarmguard_node_cpu_seconds_total{{mode="idle",node="worker-1"}} {500 / tick!r}' in lines
    assert f'swarmguard_node_cpu_seconds_total{{mode="user",node="worker-1"}} {300 / tick!r}' in lines


def test_the_direct_text_and_the_client_families_say_the_same() -> None:
    samples = (sample(), sample(cid="e" * 64, service='we"ird\\name\nx', task=""))
    registry = CollectorRegistry()
    latest = sweep(*samples)
    registry.register(SweepCollector(lambda: latest))
    assert families(SweepText().render(latest).decode()) == families(generate_latest(registry).decode())


def test_label_values_are_escaped() -> None:
    text = exposition(sample(service='a"b\\c\nd'))
    assert 'service="a\\"b\\\\c\\nd"' in text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "swarmguard_container_cpu_percent"]
    assert family.samples[0].labels["service"] == 'a"b\\c\nd'


def test_each_sweep_is_rendered_once_whatever_the_scrape_rate() -> None:
    renderer, latest = SweepText(), sweep(sample())
    first = renderer.render(latest)
    assert renderer.render(latest) is first
    assert renderer.render(sweep(sample(cpu=50.0))) != first


@pytest.mark.parametrize(("value", "text"), [(1.5, "1.5"), (10**9, "1000000000.0"), (float("nan"), "NaN"),
                                              (float("inf"), "+Inf"), (float("-inf"), "-Inf")])
def test_sample_values_are_written_as_prometheus_reads_them(value: float, text: str) -> None:
    assert format_value(value) == text


def test_before_the_first_sweep_there_are_no_series_but_the_exposition_is_valid() -> None:
    text = SweepText().render(None).decode()
    assert "# TYPE swarmguard_container_cpu_percent gauge" in text
    assert "swarmguard_container_cpu_percent{" not in text and "swarmguard_node_cpu_percent{" not in text
    assert len(list(text_string_to_metric_families(text))) == text.count("# TYPE")


@pytest.mark.real
def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool not installed (Debian package prometheus)")
    text = exposition(sample(), sample(cid="e" * 64, service="api", task="t2"))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_controllers_parser_reads_the_exposition_back_into_the_same_figures() -> None:
    from controller.scrape import parse_exposition  # the contract's other side

    parsed = parse_exposition(exposition(sample(cpu=91.0)), scraped_at=1_700_000_001.0)
    assert parsed.problems == []
    (c,) = parsed.containers
    assert (c.node, c.service, c.container_id, c.task_id, c.ts) == ("worker-1", "web", CID, "task-1", 1_700_000_000.25)
    assert (c.cpu, c.mem, c.mem_mb, c.net, c.net_rx, c.net_tx) == (91.0, 25.0, 256.0, 3.0, 1.5, 1.5)
    (n,) = parsed.nodes
    assert (n.node, n.cpu, n.mem, n.net) == ("worker-1", 40.0, 60.0, 3.0)
