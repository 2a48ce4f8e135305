"""The controller as `run` builds it (real rules, engine, executor, scraper, Swarm adapter) against
the fake Docker Engine API and a local exporter: alerts or scrapes that breach scenario 1 end as a
zero-downtime migration on /events; a broken rule edit is rejected and the last good rules keep working."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from controller.actions.settings import ActionSettings
from controller.app import create_app
from controller.runtime import Runtime, build
from controller.settings import ControllerSettings
from sgcommon.alert import Alert, encode_alert
from tests.controller.test_scrape import EXPOSITION, ExporterServer
from tests.exporter.test_influx import export, victoria  # noqa: F401 (victoria is a fixture)
from tests.fakes.engine import FakeEngine, service_spec

TOKEN = "e2e-token"
RULES = Path("rules/default.yml").read_text()
NODE_ONLY = "\n".join(line for line in EXPOSITION.splitlines() if "container" not in line) + "\n"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "default.yml").write_text(RULES)
    return tmp_path / "rules"


@pytest.fixture
def web(fake_engine: FakeEngine) -> Iterator[FakeEngine]:
    fake_engine.create_service(service_spec("web", replicas=1, labels={"swarmguard.enable": "true"},
                                            order="start-first"))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    yield fake_engine


def started(fake: FakeEngine, rules_dir: Path, exporter: ExporterServer, *, dry_run: bool = False,
            **settings: Any) -> tuple[Runtime, FlaskClient]:
    config = ControllerSettings(rules=str(rules_dir), docker_url=fake.base_url, exporters=[exporter.url],
                                scrape_interval=0.2, actions=ActionSettings(migrate_timeout=10.0, dry_run=dry_run),
                                **settings)
    runtime, app_config = build(config, alert_token=TOKEN, thresholds={})
    runtime.start()
    return runtime, create_app(app_config, runtime).test_client()


def node_of_web(fake: FakeEngine) -> str:
    [(_, node)] = fake.running_tasks("web")
    return node


def send_breach(client: FlaskClient, fake: FakeEngine, *, count: int) -> list[int]:
    from sgcommon.engine import connect
    from sgcommon.engine.swarm import SwarmAdapter

    [task] = SwarmAdapter(connect(fake.base_url)).list_tasks(service="web", desired_state="running")
    codes = []
    first = time.time() - 0.5 * count  # one sample every half second, the last one just now
    for i in range(count):
        t = first + 0.5 * (i + 1)
        body = encode_alert(Alert(t0=t - 0.01, t1=t, node=task.node_hostname or "", container_id=task.container_id or "",
                                  service="web", task_id=task.id,
                                  metrics={"cpu": 93.0, "mem": 40.0, "mem_mb": 300.0, "net": 2.0, "net_rx": 1.0,
                                           "net_tx": 1.0}))
        codes.append(client.post("/alert", data=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code)
    return codes


def wait_for_event(client: FlaskClient, *, timeout: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        events = client.get("/events").get_json()["events"]
        if events:
            return events[0]
        time.sleep(0.05)
    raise AssertionError("no action record on /events")


@pytest.fixture
def exporter() -> Iterator[ExporterServer]:
    server = ExporterServer(NODE_ONLY.replace("NODE", "worker-2"))
    yield server
    server.stop()


def test_alerts_breaching_scenario_1_migrate_the_task_off_its_node(web: FakeEngine, rules_dir: Path,
                                                                   exporter: ExporterServer) -> None:
    node_before = node_of_web(web)
    runtime, client = started(web, rules_dir, exporter)
    try:
        assert send_breach(client, web, count=2) == [200, 202]
        record = wait_for_event(client)
    finally:
        runtime.stop()
    assert (record["action"], record["result"], record["service"]) == ("migrate", "success", "web"), record
    assert record["node_from"] == node_before
    assert all(record[f"t{i}"] is not None for i in range(7))
    assert record["t0"] < record["t1"] <= record["t2"] <= record["t3"] <= record["t4"] <= record["t5"]
    assert node_of_web(web) != node_before
    assert f"node.hostname!={node_before}" in web.service_spec("web")["TaskTemplate"]["Placement"]["Constraints"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'swarmguard_controller_actions_total{action="migrate",result="success"} 1.0' in metrics
    assert "swarmguard_controller_exporters_up 1.0" in metrics


def test_in_dry_run_the_same_alerts_are_recorded_and_nothing_moves(web: FakeEngine, rules_dir: Path,
                                                                    exporter: ExporterServer) -> None:
    version = web.service_version("web")
    runtime, client = started(web, rules_dir, exporter, dry_run=True)
    try:
        assert send_breach(client, web, count=2) == [200, 200]  # dry_run is not "accepted"
        record = wait_for_event(client)
    finally:
        runtime.stop()
    assert (record["action"], record["result"]) == ("migrate", "dry_run")
    assert web.service_version("web") == version


def test_a_scrape_that_shows_scenario_1_migrates_without_any_alert(web: FakeEngine, rules_dir: Path) -> None:
    from sgcommon.engine import connect
    from sgcommon.engine.swarm import SwarmAdapter

    [task] = SwarmAdapter(connect(web.base_url)).list_tasks(service="web", desired_state="running")
    text = (EXPOSITION.replace("NODE", task.node_hostname or "").replace("CID", task.container_id or "")
            .replace("t1", task.id))
    text = "\n".join(line for line in text.splitlines() if "timestamp" not in line) + "\n"  # fresh ts per scrape
    server = ExporterServer(text)
    runtime, client = started(web, rules_dir, server)
    try:
        record = wait_for_event(client)
    finally:
        runtime.stop()
        server.stop()
    assert (record["action"], record["service"], record["node_from"]) == ("migrate", "web", task.node_hostname)
    assert record["t1"] is None and record["t2"] <= record["t3"]


def test_a_broken_rule_edit_is_rejected_and_the_last_good_rules_keep_deciding(web: FakeEngine, rules_dir: Path,
                                                                             exporter: ExporterServer) -> None:
    runtime, client = started(web, rules_dir, exporter, dry_run=True)
    try:
        before = runtime._rules.current()
        (rules_dir / "default.yml").write_text(RULES.replace("when: (cpu", "when: (cpu.__class__"))
        assert not runtime._rules.check_now()
        assert runtime._rules.current() is before
        metrics = client.get("/metrics").get_data(as_text=True)
        assert "swarmguard_rules_last_reload_success 0.0" in metrics
        send_breach(client, web, count=2)
        assert wait_for_event(client)["rule"] == "migrate-on-container-problem"
    finally:
        runtime.stop()


@pytest.mark.real
def test_an_action_record_reaches_influxdb_as_recovery_events_with_its_tags(web: FakeEngine, rules_dir: Path,
                                                                           exporter: ExporterServer,
                                                                           victoria: str) -> None:  # noqa: F811 (the fixture imported above)
    runtime, client = started(web, rules_dir, exporter, dry_run=True, influx_url=f"{victoria}/api/v2/write?org=o&bucket=b")
    try:
        send_breach(client, web, count=2)
        record = wait_for_event(client)
    finally:
        runtime.stop()  # closes the writer: what is buffered is flushed
    (row,) = export(victoria, '{__name__="recovery_events_decision_latency"}')
    assert row["metric"] == {"__name__": "recovery_events_decision_latency", "action": "migrate", "result": "dry_run",
                             "rule": "migrate-on-container-problem", "service": "web"}
    assert row["values"] == [pytest.approx(record["t3"] - record["t2"], abs=1e-6)]
    (t0,) = export(victoria, '{__name__="recovery_events_t0"}')
    assert t0["values"] == [pytest.approx(record["t0"], abs=1e-3)]


def test_a_good_rule_edit_takes_effect_within_two_seconds_without_a_restart(web: FakeEngine, rules_dir: Path,
                                                                            exporter: ExporterServer) -> None:
    runtime, client = started(web, rules_dir, exporter, dry_run=True)
    try:
        (rules_dir / "default.yml").write_text(RULES.replace("cpu_high: 75", "cpu_high: 95"))
        edited = time.monotonic()
        while runtime._rules.current().thresholds["cpu_high"] != 95 and time.monotonic() - edited < 2.0:
            time.sleep(0.05)
        took = time.monotonic() - edited
        assert runtime._rules.current().thresholds["cpu_high"] == 95, f"not reloaded after {took:.1f} s"
        assert send_breach(client, web, count=2) == [200, 200]  # cpu 93 no longer breaches
        assert client.get("/events").get_json()["events"] == []
    finally:
        runtime.stop()


def test_the_replica_bounds_in_the_settings_apply_to_rules_that_name_none(tmp_path: Path) -> None:
    (tmp_path / "bounds.yml").write_text(
        "rules:\n"
        "  - {name: up, when: cpu > 90, action: scale_up}\n"
        "  - {name: down, scope: service, when: avg(cpu) < 5, action: scale_down}\n"
        "  - {name: up-named, when: cpu > 95, action: scale_up, max_replicas: 7}\n")
    config = ControllerSettings(rules=str(tmp_path / "bounds.yml"), exporters=["127.0.0.1:9"],
                                actions=ActionSettings(max_replicas=3, min_replicas=2, after_scale_up=30.0))
    runtime, _ = build(config, alert_token=TOKEN, thresholds={}, swarm=object())  # type: ignore[arg-type]
    try:
        in_effect = {rule.name: dict(rule.params) for rule in runtime._rules.current().rules}
    finally:
        runtime.stop()
    assert in_effect == {"up": {"max_replicas": 3}, "down": {"min_replicas": 2, "after_scale_up": 30.0},
                         "up-named": {"max_replicas": 7}}
