"""The HTTP contract (docs/stressapp.md) through Flask's test client, and every kind of bad parameter."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from stressapp.app import RequestCounter
from stressapp.settings import StressSettings
from tests.stressapp.conftest import write_tree


def test_health_answers_healthy_with_the_uptime(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "healthy" and 0 <= body["uptime"] < 60


def test_metrics_has_exactly_the_prd_fields(client: FlaskClient) -> None:
    body = client.get("/metrics").get_json()
    assert list(body) == ["cpu_percent", "memory_mb", "memory_percent", "network_rx_mbps", "network_tx_mbps", "active_stress"]
    assert body["active_stress"] == []
    assert 5 < body["memory_mb"] < 2000 and 0 < body["memory_percent"] < 100


def test_api_data_is_a_small_realistic_json_page(client: FlaskClient) -> None:
    first, second = client.get("/api/data"), client.get("/api/data")
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert 300 <= len(first.data) <= 2048
    body = first.get_json()
    assert len(body["items"]) == body["page_size"] and {"id", "name", "price"} <= set(body["items"][0])
    assert second.get_json()["request_id"] == body["request_id"] + 1


def test_stats_counts_the_api_data_requests_served_and_nothing_else(client: FlaskClient) -> None:
    assert client.get("/stats").get_json()["api_data_requests"] == 0
    for _ in range(3):
        client.get("/api/data")
    client.get("/health")
    client.get("/metrics")
    client.get("/stress/cpu?target=nope")
    body = client.get("/stats").get_json()
    assert body["api_data_requests"] == 3 and body["uptime"] >= 0
    assert client.get("/api/data").get_json()["request_id"] == 4


def test_the_request_counter_loses_no_request_served_on_many_threads_at_once() -> None:
    counter = RequestCounter()
    ids: list[int] = []
    start = threading.Barrier(8)

    def serve() -> None:
        start.wait()
        mine = [counter.add() for _ in range(2000)]
        ids.extend(mine)

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value == 16000
    assert sorted(ids) == list(range(1, 16001))


@pytest.mark.parametrize(
    ("path", "response"),
    [
        ("/stress/cpu?target=5&duration=30&ramp=2", {"status": "started", "target_cpu": 5}),
        ("/stress/memory?target=20&duration=30&ramp=2", {"status": "started", "target_memory_mb": 20}),
        ("/stress/network?bandwidth=2.5&duration=30", {"status": "started", "target_bandwidth_mbps": 2.5}),
        ("/stress/combined?cpu=5&memory=20&network=2&duration=30&ramp=2",
         {"status": "started", "targets": {"cpu": 5, "memory": 20, "network": 2}}),
    ],
    ids=["cpu", "memory", "network", "combined"],
)
def test_a_stress_starts_answers_as_the_prd_shows_and_stops(client: FlaskClient, path: str, response: dict) -> None:
    started = client.get(path)
    assert (started.status_code, started.get_json()) == (200, response)
    kinds = sorted(response.get("targets", {path.split("/")[2].split("?")[0]: None}))
    assert sorted(client.get("/metrics").get_json()["active_stress"]) == kinds
    stopped = client.get("/stress/stop").get_json()
    assert stopped == {"status": "stopped", "stopped_tests": [k for k in ("cpu", "memory", "network") if k in kinds]}
    assert client.get("/metrics").get_json()["active_stress"] == []


def test_a_new_stress_of_a_kind_replaces_the_old_and_leaves_other_kinds_alone(client: FlaskClient) -> None:
    client.get("/stress/memory?target=30&duration=30")
    client.get("/stress/network?bandwidth=1&duration=30")
    assert client.get("/stress/memory?target=10&duration=30").status_code == 200
    assert client.get("/metrics").get_json()["active_stress"] == ["memory", "network"]
    assert client.get("/stress/stop").get_json()["stopped_tests"] == ["memory", "network"]


def test_stop_with_nothing_running_stops_nothing(client: FlaskClient) -> None:
    assert client.get("/stress/stop").get_json() == {"status": "stopped", "stopped_tests": []}


BAD_REQUESTS = [
    ("/stress/cpu?target=-5", "target", "greater than 0"),
    ("/stress/cpu?target=0", "target", "greater than 0"),
    ("/stress/cpu?target=101", "target", "at most 100"),
    ("/stress/cpu?target=abc", "target", "must be a number"),
    ("/stress/cpu?target=nan", "target", "finite"),
    ("/stress/cpu?target=inf", "target", "finite"),
    ("/stress/cpu", "target", "required"),
    ("/stress/cpu?target=", "target", "required"),
    ("/stress/cpu?target=50&duration=0", "duration", "greater than 0"),
    ("/stress/cpu?target=50&duration=601", "duration", "at most 600"),
    ("/stress/cpu?target=50&duration=-1", "duration", "greater than 0"),
    ("/stress/cpu?target=50&duration=10&ramp=-1", "ramp", "at least 0"),
    ("/stress/cpu?target=50&duration=10&ramp=1e9", "ramp", "at most 600"),
    ("/stress/cpu?target=50&duraton=10", "duraton", "unknown parameter"),
    ("/stress/memory?target=513", "target", "at most 512"),
    ("/stress/memory?target=-1", "target", "greater than 0"),
    ("/stress/memory?target=1e400", "target", "finite"),
    ("/stress/network?bandwidth=201", "bandwidth", "at most 200"),
    ("/stress/network?target=10", "target", "unknown parameter"),
    ("/stress/network?bandwidth=ten", "bandwidth", "must be a number"),
    ("/stress/combined?duration=10", "cpu", "at least one of"),
    ("/stress/combined?cpu=50&memory=9999", "memory", "at most 512"),
    ("/stress/combined?cpu=50&network=-3", "network", "greater than 0"),
    ("/stress/combined?cpu=150&memory=10", "cpu", "at most 100"),
    ("/stress/combined?cpu=50&duration=nan", "duration", "finite"),
]


@pytest.mark.parametrize(("path", "parameter", "message"), BAD_REQUESTS, ids=[p for p, _, _ in BAD_REQUESTS])
def test_a_bad_parameter_gets_400_naming_it_and_starts_nothing(client: FlaskClient, path: str, parameter: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter
    assert message in body["error"]
    assert client.get("/metrics").get_json()["active_stress"] == []


def test_a_bad_request_leaves_a_running_stress_untouched(client: FlaskClient) -> None:
    client.get("/stress/memory?target=10&duration=30")
    assert client.get("/stress/memory?target=-10").status_code == 400
    assert client.get("/metrics").get_json()["active_stress"] == ["memory"]


def test_memory_above_the_containers_limit_is_refused(make_client, settings: StressSettings, tmp_path: Path) -> None:
    cgroups = write_tree(tmp_path / "cg", {"memory/memory.limit_in_bytes": str(256 * 2**20)})
    client = make_client(settings, cgroup_root=str(cgroups))
    response = client.get("/stress/memory?target=300&duration=5")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == "target" and "memory limit of 256 MB" in body["error"]
    assert client.get("/metrics").get_json()["memory_percent"] > 0  # of the 256 MB limit


def test_only_get_is_served(client: FlaskClient) -> None:
    assert client.post("/stress/stop").status_code == 405


LENIENT_BUT_WRONG = [
    ("/stress/cpu?target=%C2%B2", "target", "must be a number"),  # "²": isdigit() but not a number
    ("/stress/cpu?target=%D9%A1%D9%A2", "target", "must be a number"),  # Arabic-Indic 12: float() takes it
    ("/stress/cpu?target=1_0", "target", "must be a number"),  # float() takes underscores
    ("/stress/cpu?target=%2010", "target", "must be a number"),  # leading space
    ("/stress/cpu?target=50&target=60", "target", "given 2 times"),
    ("/stress/cpu?target=50&duration=10&duration=20", "duration", "given 2 times"),
    ("/stress/combined?cpu=10&cpu=20", "cpu", "given 2 times"),
    ("/stress/cpu?target=" + "9" * 300, "target", "at most 100"),
    ("/stress/cpu?target=" + "9" * 400, "target", "finite"),
    ("/stress/cpu?target=50&duration=1e3", "duration", "at most 600"),
]


@pytest.mark.parametrize(("path", "parameter", "message"), LENIENT_BUT_WRONG, ids=[p for p, _, _ in LENIENT_BUT_WRONG])
def test_values_python_would_accept_leniently_are_400(client: FlaskClient, path: str, parameter: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == parameter and message in response.get_json()["error"]
    assert client.get("/metrics").get_json()["active_stress"] == []


def test_a_plus_sign_and_an_exponent_are_plain_numbers(client: FlaskClient) -> None:
    assert client.get("/stress/cpu?target=%2B5&duration=1e1").get_json() == {"status": "started", "target_cpu": 5}
    client.get("/stress/stop")
