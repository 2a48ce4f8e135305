"""Scraping exporters: parsing their exposition text, and living with one that goes away."""
from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from controller.cache import MetricsCache
from controller.scrape import Scraper, StaticTargets, SwarmTargets, Target, parse_exposition
from sgcommon.summary import encode_summary

EXPOSITION = """\
# HELP swarmguard_container_cpu_percent CPU use
# TYPE swarmguard_container_cpu_percent gauge
swarmguard_container_cpu_percent{node="NODE",service="web",container_id="CID",task_id="t1"} 82.5
# TYPE swarmguard_container_memory_percent gauge
swarmguard_container_memory_percent{node="NODE",service="web",container_id="CID",task_id="t1"} 40.25
# TYPE swarmguard_container_memory_bytes gauge
swarmguard_container_memory_bytes{node="NODE",service="web",container_id="CID",task_id="t1"} 268435456
# TYPE swarmguard_container_network_percent gauge
swarmguard_container_network_percent{node="NODE",service="web",container_id="CID",task_id="t1"} 3.5
# TYPE swarmguard_container_network_receive_mbps gauge
swarmguard_container_network_receive_mbps{node="NODE",service="web",container_id="CID",task_id="t1"} 2.0
# TYPE swarmguard_container_network_transmit_mbps gauge
swarmguard_container_network_transmit_mbps{node="NODE",service="web",container_id="CID",task_id="t1"} 1.5
# TYPE swarmguard_container_sample_timestamp_seconds gauge
swarmguard_container_sample_timestamp_seconds{node="NODE",service="web",container_id="CID",task_id="t1"} 1700000000.5
# TYPE swarmguard_node_cpu_percent gauge
swarmguard_node_cpu_percent{node="NODE"} 55.0
# TYPE swarmguard_node_memory_percent gauge
swarmguard_node_memory_percent{node="NODE"} 60.0
# TYPE swarmguard_node_network_percent gauge
swarmguard_node_network_percent{node="NODE"} 5.0
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
"""


def exposition(node: str = "worker-1", cid: str = "c1") -> str:
    return EXPOSITION.replace("NODE", node).replace("CID", cid)


def test_exposition_text_becomes_container_and_node_samples_with_the_exporters_timestamp() -> None:
    parsed = parse_exposition(exposition(), scraped_at=1700000001.0)
    assert parsed.problems == []
    [c] = parsed.containers
    assert (c.node, c.service, c.container_id, c.task_id) == ("worker-1", "web", "c1", "t1")
    assert (c.cpu, c.mem, c.mem_mb, c.net, c.net_rx, c.net_tx) == (82.5, 40.25, 256.0, 3.5, 2.0, 1.5)
    assert c.ts == 1700000000.5
    [n] = parsed.nodes
    assert (n.node, n.ts, n.cpu, n.mem, n.net) == ("worker-1", 1700000001.0, 55.0, 60.0, 5.0)


def test_a_container_without_a_timestamp_gets_the_scrape_time() -> None:
    text = "\n".join(line for line in exposition().splitlines() if "timestamp" not in line) + "\n"
    [c] = parse_exposition(text, scraped_at=42.0).containers
    assert c.ts == 42.0


def test_a_container_missing_a_required_figure_is_skipped_with_a_reason() -> None:
    text = "\n".join(line for line in exposition().splitlines() if "cpu_percent{node" not in line
                     or "container" not in line) + "\n"
    parsed = parse_exposition(text, scraped_at=1.0)
    assert parsed.containers == []
    assert parsed.problems == ["container c1: missing cpu"]


def test_a_container_sample_from_the_future_is_skipped_with_a_reason() -> None:
    parsed = parse_exposition(exposition(), scraped_at=1700000000.5 - 3600)
    assert parsed.containers == []
    assert parsed.problems == ["container c1: sample timestamp 1700000000.5 is ahead of the controller's clock"]


def test_text_that_is_not_exposition_format_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_exposition("this is { not metrics\n", scraped_at=1.0)


def test_static_targets_accept_hosts_host_port_and_urls() -> None:
    urls = [t.url for t in StaticTargets(["10.0.0.5", "exp:9200", "http://h:1/metrics", "http://h:2"],
                                         port=9101).targets()]
    assert urls == ["http://10.0.0.5:9101/metrics", "http://exp:9200/metrics", "http://h:1/metrics",
                    "http://h:2/metrics"]


class FakeTask:
    def __init__(self, node: str, addresses: tuple[str, ...]) -> None:
        self.node_hostname = node
        self.addresses = addresses


class FakeSwarm:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def list_tasks(self, *, service: str, desired_state: str) -> list[FakeTask]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("engine gone")
        assert (service, desired_state) == ("exporter", "running")
        return [FakeTask("worker-1", ("10.0.1.7/24",)), FakeTask("worker-2", ())]


def test_swarm_targets_use_each_exporter_tasks_overlay_address_and_keep_the_last_list_on_failure() -> None:
    now = [0.0]
    swarm = FakeSwarm()
    source = SwarmTargets(swarm, "exporter", port=9101, refresh=10.0, clock=lambda: now[0])
    expected = [Target("http://10.0.1.7:9101/metrics", node="worker-1")]
    assert source.targets() == expected
    now[0] = 5.0
    assert source.targets() == expected and swarm.calls == 1
    now[0] = 11.0
    swarm.fail = True
    assert source.targets() == expected and swarm.calls == 2


class ExporterServer:
    """A real local HTTP server serving a settable exposition text."""

    def __init__(self, text: str, *, port: int = 0, delay: float = 0.0) -> None:
        self.text = text
        self.delay = delay
        self.connections: list[socket.socket] = []
        self.routes: dict[str, tuple[int, str, bytes]] = {}  # path -> (status, content type, body); else `text`
        self.paths: list[str] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                time.sleep(owner.delay)  # a slow exporter (a real server's delay, not a test wait)
                owner.paths.append(self.path)
                status, ctype, body = owner.routes.get(self.path, (200, "text/plain; version=0.0.4",
                                                                    owner.text.encode()))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def setup(self) -> None:
                super().setup()
                owner.connections.append(self.connection)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self) -> None:
        """Like a dead exporter: no listener, and the kept-alive connections are cut."""
        self.server.shutdown()
        self.server.server_close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def exporters() -> Iterator[list[ExporterServer]]:
    servers = [ExporterServer(exposition("worker-1", "c1")), ExporterServer(exposition("worker-2", "c2"))]
    yield servers
    for server in servers:
        try:
            server.stop()
        except OSError:
            pass


def test_one_round_scrapes_every_exporter_into_the_cache(exporters: list[ExporterServer]) -> None:
    cache = MetricsCache()
    scraper = Scraper(StaticTargets([e.url for e in exporters]), cache, clock=lambda: 1700000001.0)
    try:
        result = scraper.scrape_round()
    finally:
        scraper.close()
    assert result.up == {exporters[0].url: True, exporters[1].url: True}
    assert (result.containers, result.nodes) == (2, 2)
    snap = cache.snapshot(1700000001.0)
    assert {c.node for c in snap.containers.values()} == {"worker-1", "worker-2"}
    assert set(snap.nodes) == {"worker-1", "worker-2"}


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == text]


def test_an_exporter_that_goes_away_is_logged_once_its_containers_go_stale_and_recovery_is_logged_once(
    exporters: list[ExporterServer], caplog: pytest.LogCaptureFixture
) -> None:
    cache = MetricsCache()
    observed: list[tuple[str, bool]] = []
    gone = exporters[0]
    scraper = Scraper(StaticTargets([e.url for e in exporters]), cache, clock=lambda: 1700000001.0,
                      timeout=0.5, observe=lambda url, seconds, ok: observed.append((url, ok)))
    caplog.set_level(logging.INFO, logger="swarmguard.controller.scrape")
    try:
        scraper.scrape_round()
        gone.stop()
        rounds = [scraper.scrape_round() for _ in range(3)]
        snap = cache.snapshot(1700000001.0)
        assert [r.up[gone.url] for r in rounds] == [False, False, False]
        assert all(r.up[exporters[1].url] for r in rounds)
        assert snap.containers["c1"].stale and not snap.containers["c2"].stale
        assert len(messages(caplog, "exporter unreachable")) == 1
        assert (gone.url, False) in observed

        back = ExporterServer(exposition("worker-1", "c1"), port=gone.port)
        try:
            for _ in range(2):
                scraper.scrape_round()
        finally:
            back.stop()
    finally:
        scraper.close()
    assert not cache.snapshot(1700000001.0).containers["c1"].stale
    assert len(messages(caplog, "exporter answers again")) == 1


def test_a_slow_exporter_does_not_hold_up_the_round_and_its_answer_lands_later(
    exporters: list[ExporterServer]
) -> None:
    exporters[0].delay = 1.0
    cache = MetricsCache()
    scraper = Scraper(StaticTargets([e.url for e in exporters]), cache, timeout=5.0, budget=0.3,
                      clock=lambda: 1700000001.0)
    try:
        first = scraper.scrape_round()
        second = scraper.scrape_round()  # the slow request is still in flight: not sent again
        assert first.seconds < 0.9 and second.seconds < 0.9
        assert first.up == {exporters[0].url: False, exporters[1].url: True}
        assert set(cache.snapshot(1700000001.0).containers) == {"c2"}
        for _ in range(20):  # rounds of at most 0.3 s until the slow answer has landed
            if "c1" in cache.snapshot(1700000001.0).containers:
                break
            scraper.scrape_round()
    finally:
        scraper.close()
    assert set(cache.snapshot(1700000001.0).containers) == {"c1", "c2"}


def summary_body(node: str, cid: str, *, cpu: float = 82.5) -> bytes:
    return encode_summary(node=node, ts=1700000000.5, node_figures={"cpu": 55.0, "mem": 60.0, "net": 5.0},
                          rows=[[cid, "web", "t1", 1700000000.5, cpu, 40.25, 256.0, 3.5, 2.0, 1.5]])


def test_an_exporter_with_a_sample_summary_is_scraped_through_it_with_the_same_figures(
    exporters: list[ExporterServer]
) -> None:
    summarised = exporters[0]
    summarised.routes["/v1/samples"] = (200, "application/json", summary_body("worker-1", "c1"))
    via_text, via_summary = MetricsCache(), MetricsCache()
    text_only = Scraper(StaticTargets([exporters[1].url]), via_text, clock=lambda: 1700000001.0)
    scraper = Scraper(StaticTargets([summarised.url]), via_summary, clock=lambda: 1700000001.0)
    try:
        for _ in range(2):
            assert scraper.scrape_round().up == {summarised.url: True}
        text_only.scrape_round()
    finally:
        scraper.close()
        text_only.close()
    assert summarised.paths == ["/v1/samples", "/v1/samples"]
    [from_summary] = via_summary.snapshot(1700000001.0).containers.values()
    [from_text] = via_text.snapshot(1700000001.0).containers.values()
    assert from_summary == from_text._replace(node="worker-1", container_id="c1")
    assert via_summary.snapshot(1700000001.0).nodes["worker-1"].cpu == 55.0


def test_an_exporter_without_the_summary_is_scraped_through_its_metrics_and_asked_again_later(
    exporters: list[ExporterServer], caplog: pytest.LogCaptureFixture
) -> None:
    old = exporters[0]
    old.routes["/v1/samples"] = (404, "text/plain", b"not found: try /metrics or /healthz\n")
    cache = MetricsCache()
    scraper = Scraper(StaticTargets([old.url]), cache, clock=lambda: 1700000001.0, summary_retry=0.5)
    caplog.set_level(logging.INFO, logger="swarmguard.controller.scrape")
    try:
        assert scraper.scrape_round().up == {old.url: True}
        assert scraper.scrape_round().up == {old.url: True}
        assert old.paths == ["/v1/samples", "/metrics", "/metrics"]  # one 404, then /metrics only
        old.routes["/v1/samples"] = (200, "application/json", summary_body("worker-1", "c1", cpu=12.0))
        time.sleep(0.6)  # the summary is asked for again after summary_retry (0.5 s)
        scraper.scrape_round()
        scraper.scrape_round()
    finally:
        scraper.close()
    assert old.paths[3:] == ["/v1/samples", "/v1/samples"]
    assert len(messages(caplog, "exporter has no sample summary; scraping its /metrics")) == 1
    assert len(messages(caplog, "exporter serves the sample summary again")) == 1


def test_a_broken_summary_or_a_server_error_makes_the_exporter_unreachable_not_a_text_scrape(
    exporters: list[ExporterServer]
) -> None:
    broken, failing = exporters
    broken.routes["/v1/samples"] = (200, "application/json", b'{"v": 9}')
    failing.routes["/v1/samples"] = (503, "text/plain", b"busy")
    cache = MetricsCache()
    scraper = Scraper(StaticTargets([e.url for e in exporters]), cache, clock=lambda: 1700000001.0)
    try:
        result = scraper.scrape_round()
    finally:
        scraper.close()
    assert result.up == {broken.url: False, failing.url: False}
    assert broken.paths == ["/v1/samples"] and failing.paths == ["/v1/samples"]


def test_an_exporter_that_is_no_longer_a_target_loses_its_connection() -> None:
    servers = [ExporterServer(exposition("worker-1", "c1")), ExporterServer(exposition("worker-2", "c2"))]
    urls = [s.url for s in servers]

    class Moving:
        def __init__(self) -> None:
            self.current = urls

        def targets(self) -> list[Target]:
            return [Target(u) for u in self.current]

    source = Moving()
    scraper = Scraper(source, MetricsCache(), clock=lambda: 1700000001.0)
    try:
        assert set(scraper.scrape_round().up) == set(urls)
        source.current = urls[:1]
        assert set(scraper.scrape_round().up) == {urls[0]}
        assert set(scraper._connections) == {urls[0]}
    finally:
        scraper.close()
        for s in servers:
            s.stop()
