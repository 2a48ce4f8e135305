"""The sample summary (GET /v1/samples): the exporter's rendering, the wire format, the controller's reading."""
from __future__ import annotations

import json

import pytest

from controller.scrape import parse_exposition, parse_summary
from exporter.metrics import SweepText
from exporter.sample import Sweep
from exporter.summary import SweepSummary
from sgcommon.summary import FIELDS, MAX_SUMMARY_BYTES, SummaryError, decode_summary, encode_summary
from tests.exporter.samples import sample, sweep

NOW = 1_700_000_001.0


def two_container_sweep() -> Sweep:
    return sweep(sample(cpu=81.25, mem_pct=33.3333333333, net_pct=2.5),
                 sample(cid="b" * 64, cpu=0.1 + 0.2, mem_pct=99.99, net_pct=64.9999, service="api", task="task-2"))


def test_the_summary_and_the_exposition_of_one_sweep_give_the_controller_the_same_samples() -> None:
    s = two_container_sweep()
    from_summary = parse_summary(SweepSummary().render(s, "worker-1"), scraped_at=NOW)
    from_text = parse_exposition(SweepText().render(s).decode(), scraped_at=NOW)
    assert from_summary.problems == [] and from_text.problems == []
    assert sorted(from_summary.containers, key=lambda c: c.container_id) == \
        sorted(from_text.containers, key=lambda c: c.container_id)
    assert from_summary.nodes == from_text.nodes and len(from_summary.nodes) == 1
    [c] = [c for c in from_summary.containers if c.service == "api"]
    assert (c.cpu, c.mem, c.mem_mb, c.net) == (0.1 + 0.2, 99.99, 256.0, 64.9999)  # exact, mem_mb in MiB


def test_a_sweep_is_rendered_once_and_an_exporter_without_a_sweep_yet_sends_an_empty_summary() -> None:
    summary = SweepSummary()
    s = two_container_sweep()
    assert summary.render(s, "worker-1") is summary.render(s, "worker-1")
    empty = decode_summary(summary.render(None, "worker-1"))
    assert (empty.node, empty.rows, empty.node_figures) == ("worker-1", [], None)


def test_the_summary_is_a_few_hundred_bytes_a_container() -> None:
    samples = [sample(cid=f"{i:064x}", task=f"task-{i}") for i in range(30)]
    body = SweepSummary().render(sweep(*samples), "worker-1")
    text = SweepText().render(sweep(*samples))
    assert len(body) < 300 * 30 and len(text) > 10 * len(body)


def body(**changes: object) -> bytes:
    doc: dict[str, object] = {"v": 1, "node": "worker-1", "ts": NOW - 1, "node_figures": {"cpu": 1, "mem": 2, "net": 3},
                              "fields": list(FIELDS),
                              "containers": [["c1", "web", "t1", NOW - 1, 10.0, 20.0, 64.0, 1.0, 0.5, 0.5]]}
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("raw", "message"), [
    (b"# HELP swarmguard_container_cpu_percent ...", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (body(v=2), "v: version 2"),
    (body(node=""), "node: a non-empty string"),
    (body(ts="now"), "ts: a number"),
    (body(fields=["container_id", "service"]), "task_id, ts missing"),
    (body(fields=[*FIELDS, "cpu"]), "a name twice"),
    (body(containers=[["c1", "web"]]), "rows of 10 values"),
    (body(containers={"c1": []}), "rows of 10 values"),
    (body(node_figures={"cpu": "high"}), "node_figures"),
    (body().replace(b"10.0", b"NaN"), "NaN is not a number"),
    (b" " * (MAX_SUMMARY_BYTES + 1), "at most"),
])
def test_a_body_that_is_not_a_summary_is_refused_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(SummaryError, match=message):
        parse_summary(raw, scraped_at=NOW)


def test_a_container_with_a_bad_row_is_skipped_with_a_reason_and_the_others_are_kept() -> None:
    good = ["c1", "web", "t1", NOW - 1, 10.0, 20.0, 64.0, 1.0, 0.5, 0.5]
    rows = [good,
            ["c2", "web", "t2", NOW - 1, "high", 20.0, 64.0, 1.0, 0.5, 0.5],
            ["c3", "web", "t3", NOW - 1, True, 20.0, 64.0, 1.0, 0.5, 0.5],
            ["c4", "", "t4", NOW - 1, 10.0, 20.0, 64.0, 1.0, 0.5, 0.5],
            [None, "web", "t5", NOW - 1, 10.0, 20.0, 64.0, 1.0, 0.5, 0.5],
            ["c6", "web", "t6", NOW + 3600, 10.0, 20.0, 64.0, 1.0, 0.5, 0.5],
            ["c7", "web", "t7", NOW - 1, 1e999, 20.0, 64.0, 1.0, 0.5, 0.5]]
    parsed = parse_summary(body(containers=rows).replace(b"Infinity", b"1e999"), scraped_at=NOW)
    assert [c.container_id for c in parsed.containers] == ["c1"]
    assert parsed.problems == [
        "container c2: a figure or its timestamp is not a finite number",
        "container c3: a figure or its timestamp is not a finite number",
        "container c4: missing service",
        "container 'None': no container id",
        f"container c6: sample timestamp {NOW + 3600} is ahead of the controller's clock",
        "container c7: a figure or its timestamp is not a finite number",
    ]


def test_columns_are_found_by_name_and_a_missing_required_figure_skips_every_container() -> None:
    fields = ["ts", "task_id", "service", "container_id", "net", "mem", "cpu", "extra"]
    parsed = parse_summary(body(fields=fields, containers=[[NOW - 1, "t1", "web", "c1", 1.0, 2.0, 3.0, "x"]]),
                           scraped_at=NOW)
    [c] = parsed.containers
    assert (c.container_id, c.service, c.task_id, c.cpu, c.mem, c.net, c.mem_mb, c.net_rx) == \
        ("c1", "web", "t1", 3.0, 2.0, 1.0, 0.0, 0.0)
    lacking = parse_summary(body(fields=fields[:-2] + ["extra"], containers=[[NOW - 1, "t1", "web", "c1", 1.0, 2.0, 3.0]]),
                            scraped_at=NOW)
    assert lacking.containers == [] and lacking.problems == ["container c1: missing cpu"]


def test_node_figures_become_the_nodes_sample_at_the_scrape_time_and_null_means_none_yet() -> None:
    [node] = parse_summary(body(), scraped_at=NOW).nodes
    assert (node.node, node.ts, node.cpu, node.mem, node.net) == ("worker-1", NOW, 1.0, 2.0, 3.0)
    assert parse_summary(body(node_figures=None), scraped_at=NOW).nodes == []
    partial = parse_summary(body(node_figures={"cpu": 1.0}), scraped_at=NOW)
    assert partial.nodes == [] and partial.problems == ["node worker-1: missing mem, net"]


def test_the_encoder_refuses_a_figure_that_is_not_finite() -> None:
    with pytest.raises(ValueError):
        encode_summary(node="n", ts=1.0, node_figures=None, rows=[["c", "s", "t", 1.0, float("nan"), 0, 0, 0, 0, 0]])
