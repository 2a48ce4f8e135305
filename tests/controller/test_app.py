"""The controller's HTTP contract: /alert (token, validation, evaluation), /events, /metrics, /healthz."""
from __future__ import annotations

import io
import json
import logging

import pytest
from flask.testing import FlaskClient

from controller.app import create_app
from sgcommon.alert import MAX_ALERT_BYTES, Alert, encode_alert
from tests.controller.test_runtime import TOKEN, Rig, make_rig

NOW = 1700000010.0


def alert(cpu: float = 90.0, *, cid: str = "c1", t0: float = NOW - 0.5, t1: float = NOW - 0.2) -> bytes:
    return encode_alert(Alert(t0=t0, t1=t1, node="worker-1", container_id=cid, service="web", task_id="t1",
                              metrics={"cpu": cpu, "mem": 50.0, "mem_mb": 128.0, "net": 2.0, "net_rx": 1.0,
                                       "net_tx": 1.0}))


@pytest.fixture
def rig() -> Rig:
    return make_rig(clock=iter([NOW + 0.001 * i for i in range(10_000)]).__next__)


@pytest.fixture
def client(rig: Rig) -> FlaskClient:
    return create_app(rig.config, rig.runtime).test_client()


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def test_an_alert_without_a_token_is_401_and_changes_nothing(client: FlaskClient, rig: Rig) -> None:
    response = client.post("/alert", data=alert())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in response.get_json()["error"]
    assert rig.runtime.cache.stats()["containers"] == 0 and rig.evaluate.calls == []


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, "Bearer é"])
def test_an_alert_with_a_wrong_token_is_401(client: FlaskClient, rig: Rig, header: str) -> None:
    assert client.post("/alert", data=alert(), headers={"Authorization": header}).status_code == 401
    assert rig.executor.submitted == []


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"t0": 1}', "missing field"),
    (alert().replace(b'"cpu":90.0', b'"cpu":"high"'), "m.cpu: expected a number"),
])
def test_a_malformed_alert_is_400_with_a_message_naming_the_problem(client: FlaskClient, body: bytes,
                                                                    message: str) -> None:
    response = client.post("/alert", data=body, headers=AUTH)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_an_alert_from_the_future_is_400_and_not_cached(client: FlaskClient, rig: Rig) -> None:
    response = client.post("/alert", data=alert(t0=NOW + 3600, t1=NOW + 3600), headers=AUTH)
    assert response.status_code == 400
    assert "ahead of the controller's clock" in response.get_json()["error"]
    assert rig.runtime.cache.stats()["containers"] == 0


def test_an_oversized_alert_is_400_before_it_is_read(client: FlaskClient, rig: Rig) -> None:
    response = client.post("/alert", data=b"x" * (MAX_ALERT_BYTES + 1), headers=AUTH)
    assert response.status_code == 400
    assert f"at most {MAX_ALERT_BYTES}" in response.get_json()["error"]
    assert rig.evaluate.calls == []


def test_an_oversized_chunked_alert_without_a_length_is_400(client: FlaskClient) -> None:
    body = io.BytesIO(b"{" + b" " * 1200 + b"}")
    response = client.post("/alert", input_stream=body, headers={**AUTH, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 400
    assert "at most" in response.get_json()["error"]


def test_a_good_alert_is_cached_evaluated_for_its_container_and_submitted_with_t1_t2_t3(
    client: FlaskClient, rig: Rig
) -> None:
    response = client.post("/alert", data=alert(cpu=90.0), headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["decisions"] == [
        {"rule": "cpu-high", "action": "migrate", "service": "web", "submit": "accepted"}]
    assert rig.runtime.cache.snapshot(NOW).containers["c1"].cpu == 90.0
    [call] = rig.evaluate.calls
    assert call["container_id"] == "c1" and call["scope"] is None
    [(decision, timeline)] = rig.executor.submitted
    assert decision.container_id == "c1" and decision.node == "worker-1"
    assert timeline.t0 == pytest.approx(NOW - 0.5)
    assert timeline.t1 == pytest.approx(NOW - 0.2)
    assert timeline.t2 is not None and timeline.t3 is not None
    assert timeline.t1 < timeline.t2 < timeline.t3
    assert call["now"] == timeline.t2


def test_a_good_alert_that_breaches_nothing_is_200_with_no_decisions(client: FlaskClient, rig: Rig) -> None:
    response = client.post("/alert", data=alert(cpu=10.0), headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "decisions": []}
    assert rig.executor.submitted == []


def test_without_a_configured_token_alerts_are_accepted_without_one() -> None:
    rig = make_rig(token=None)
    client = create_app(rig.config, rig.runtime).test_client()
    assert client.post("/alert", data=alert(cpu=10.0)).status_code == 200


def test_events_lists_the_newest_records_first_and_honours_limit(client: FlaskClient) -> None:
    for cid in ("c1", "c2", "c3"):
        client.post("/alert", data=alert(cid=cid), headers=AUTH)
    events = client.get("/events").get_json()["events"]
    assert [e["container_id"] for e in events] == ["c3", "c2", "c1"]
    assert events[0]["t1"] == pytest.approx(NOW - 0.2) and events[0]["result"] == "dry_run"
    assert [e["container_id"] for e in client.get("/events?limit=2").get_json()["events"]] == ["c3", "c2"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "100000", ""])
def test_events_with_a_bad_limit_is_400(client: FlaskClient, limit: str) -> None:
    response = client.get(f"/events?limit={limit}")
    assert response.status_code == 400
    assert "limit" in response.get_json()["error"]


def test_metrics_shows_actions_and_latencies_in_prometheus_text(client: FlaskClient) -> None:
    client.post("/alert", data=alert(), headers=AUTH)
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert 'swarmguard_controller_actions_total{action="migrate",result="dry_run"} 1.0' in text
    assert "swarmguard_controller_alert_latency_seconds_count 1.0" in text
    assert "swarmguard_controller_decision_latency_seconds_count 1.0" in text
    assert 'swarmguard_controller_evaluation_seconds_count{kind="alert"} 1.0' in text
    assert 'swarmguard_controller_alerts_total{outcome="action"} 1.0' in text


def test_a_sender_that_keeps_sending_bad_alerts_is_logged_once_until_it_gets_it_right(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="swarmguard.controller.app")
    for _ in range(3):
        client.post("/alert", data=b"{}", headers=AUTH)
        client.post("/alert", data=alert())
    client.post("/alert", data=alert(cpu=10.0), headers=AUTH)
    client.post("/alert", data=b"{}", headers=AUTH)
    messages = [r.getMessage() for r in caplog.records if r.name == "swarmguard.controller.app"]
    assert messages == ["alert refused", "alerts accepted again", "alert refused"]


def test_refused_alerts_are_counted_by_reason(client: FlaskClient) -> None:
    client.post("/alert", data=alert())
    client.post("/alert", data=b"{}", headers=AUTH)
    client.post("/alert", data=b"[]", headers=AUTH)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'swarmguard_controller_alerts_total{outcome="unauthorized"} 1.0' in text
    assert 'swarmguard_controller_alerts_total{outcome="invalid"} 2.0' in text


def test_healthz_answers_with_the_runtime_state(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_an_unknown_path_or_method_is_json_not_html(client: FlaskClient) -> None:
    assert client.get("/nope").status_code == 404
    assert "error" in client.get("/nope").get_json()
    response = client.get("/alert")
    assert response.status_code == 405 and "error" in json.loads(response.data)


@pytest.mark.real
def test_metrics_pass_promtools_exposition_lint(client: FlaskClient) -> None:
    import shutil
    import subprocess

    from tests.support import unavailable

    client.post("/alert", data=alert(), headers=AUTH)
    if shutil.which("promtool") is None:
        unavailable("promtool not installed (Debian package prometheus)")
    text = client.get("/metrics").get_data()
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
