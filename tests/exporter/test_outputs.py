"""Serialising a sweep: line protocol as exact strings, Prometheus text from a fresh registry."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from exporter.lineproto import sweep_lines
from sgcommon.lineproto import escape_tag as escape_key
from exporter.metrics import SelfMetrics, SweepCollector
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


def exposition(*samples) -> str:
    metrics = SelfMetrics()
    latest = sweep(*samples)
    metrics.registry.register(SweepCollector(lambda: latest))
    metrics.duration.observe(0.002)
    return generate_latest(metrics.registry).decode()


def test_the_exposition_carries_the_contracted_names_and_labels() -> None:
    text = exposition(sample())
    labels = f'{{container_id="{CID}",node="worker-1",service="web",task_id="task-1"}}'  # sorted by the client
    for line in (
        f"swarmguard_container_cpu_percent{labels} 12.5",
        f"swarmguard_container_memory_bytes{labels} 2.68435456e+08",
        f"swarmguard_container_memory_percent{labels} 25.0",
        f"swarmguard_container_network_percent{labels} 3.0",
        f"swarmguard_container_network_receive_mbps{labels} 1.5",
        f"swarmguard_container_network_transmit_mbps{labels} 1.5",
        f"swarmguard_container_sample_timestamp_seconds{labels} 1.70000000025e+09",
        f"swarmguard_container_network_receive_bytes_total{labels} 1000.0",
        f"swarmguard_container_network_transmit_bytes_total{labels} 2000.0",
        'swarmguard_node_cpu_percent{node="worker-1"} 40.0',
        'swarmguard_node_memory_percent{node="worker-1"} 60.0',
        'swarmguard_node_network_percent{node="worker-1"} 3.0',
        'swarmguard_exporter_errors_total{kind="vanished"} 0.0',
        "swarmguard_exporter_collection_seconds_count 1.0",
    ):
        assert line in text.splitlines(), line


def test_before_the_first_sweep_there_are_no_series_but_the_exposition_is_valid() -> None:
    metrics = SelfMetrics()
    metrics.registry.register(SweepCollector(lambda: None))
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE swarmguard_container_cpu_percent gauge" in text
    assert "swarmguard_container_cpu_percent{" not in text and "swarmguard_node_cpu_percent{" not in text


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
