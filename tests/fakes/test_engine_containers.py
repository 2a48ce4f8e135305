"""The fake engine's container half answers the `docker` package as a real engine would."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import docker
import pytest

from sgcommon.engine import NotFound, connect, translate
from sgcommon.engine.versions import at_least
from tests.fakes.engine import EngineProfile, FakeEngine

SWARM_LABELS = {"com.docker.swarm.service.name": "web", "com.docker.swarm.task.id": "task1"}


@pytest.fixture
def fake(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    with FakeEngine(hostname="worker-7", profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


@pytest.fixture
def client(fake: FakeEngine) -> Iterator[docker.APIClient]:
    api = connect(fake.base_url, timeout=5)
    yield api
    api.close()


def test_info_names_the_node_and_its_swarm_state(fake: FakeEngine, client: docker.APIClient) -> None:
    info = client.info()
    assert info["Name"] == "worker-7"
    assert info["Swarm"]["LocalNodeState"] == "active"
    assert client.ping() is True
    assert client.version()["ApiVersion"] == fake.profile.api_version
    assert client.api_version == fake.profile.api_version  # negotiated: both profiles are within our range


def test_a_container_is_listed_and_inspected_with_pid_labels_and_limits(fake: FakeEngine, client: docker.APIClient) -> None:
    cid = fake.add_container(name="web.1.task1", labels=SWARM_LABELS, pid=4321, nano_cpus=500_000_000, memory=256 << 20)
    listed = client.containers(filters={"label": "com.docker.swarm.service.name"})
    assert [c["Id"] for c in listed] == [cid]
    assert listed[0]["Labels"]["com.docker.swarm.service.name"] == "web"
    doc = client.inspect_container(cid)
    assert doc["State"]["Pid"] == 4321 and doc["State"]["Running"] is True
    assert doc["Config"]["Labels"]["com.docker.swarm.task.id"] == "task1"
    assert doc["HostConfig"]["NanoCpus"] == 500_000_000
    assert doc["HostConfig"]["Memory"] == 256 << 20


def test_a_stopped_container_is_listed_only_with_all(fake: FakeEngine, client: docker.APIClient) -> None:
    cid = fake.add_container(name="old")
    fake.stop_container(cid)
    assert client.containers() == []
    assert [c["State"] for c in client.containers(all=True)] == ["exited"]
    assert client.inspect_container(cid)["State"]["Running"] is False


def test_a_removed_container_is_not_found(fake: FakeEngine, client: docker.APIClient) -> None:
    cid = fake.add_container()
    fake.remove_container(cid)
    with pytest.raises(NotFound), translate("inspect"):
        client.inspect_container(cid)


def test_label_filters_select_containers(fake: FakeEngine, client: docker.APIClient) -> None:
    fake.add_container(labels={"a": "1"})
    wanted = fake.add_container(labels={"a": "2"})
    assert [c["Id"] for c in client.containers(filters={"label": "a=2"})] == [wanted]


def test_events_stream_pushed_events_at_once_and_honours_the_type_filter(fake: FakeEngine, client: docker.APIClient) -> None:
    stream = client.events(decode=True, filters={"type": "container"})
    got: list[dict] = []

    def read() -> None:
        for event in stream:
            got.append(event)
            if len(got) == 3:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    fake.emit_event({"Type": "network", "Action": "connect", "Actor": {"ID": "n"}})
    cid = fake.add_container(name="x")  # create, start
    fake.stop_container(cid)  # die, stop
    reader.join(timeout=5)
    stream.close()
    assert [e["Action"] for e in got] == ["create", "start", "die"]
    assert all(e["Type"] == "container" and e["Actor"]["ID"] == cid for e in got)
    legacy = not at_least(fake.profile.api_version, "1.52")  # the deprecated fields went in API 1.52
    assert all(("status" in e and e["id"] == cid and "from" in e) == legacy for e in got)


def test_events_since_and_until_replay_history_and_end(fake: FakeEngine, client: docker.APIClient) -> None:
    start = time.time() - 1
    cid = fake.add_container(name="y")
    fake.remove_container(cid)
    events = list(client.events(since=int(start), until=int(time.time()) + 1, decode=True))
    assert [e["Action"] for e in events] == ["create", "start", "die", "stop", "destroy"]


def test_an_unknown_route_answers_404_and_is_recorded(fake: FakeEngine, client: docker.APIClient) -> None:
    with pytest.raises(NotFound), translate("images"):
        client.images()
    assert fake.unknown_routes == ["GET /images/json"]
    fake.unknown_routes.clear()


def test_an_injected_fault_answers_the_error_a_given_number_of_times(fake: FakeEngine, client: docker.APIClient) -> None:
    fake.fail("GET", r"^/containers/json$", status=500, message="boom", times=1)
    with pytest.raises(docker.errors.APIError, match="boom"):
        client.containers()
    assert client.containers() == []


def test_a_slow_fault_delays_the_answer_then_answers_normally(fake: FakeEngine, client: docker.APIClient) -> None:
    fake.fail("GET", r"^/info$", status=None, delay=0.3)
    start = time.monotonic()
    assert client.info()["Name"] == "worker-7"
    assert time.monotonic() - start >= 0.3


def test_assert_no_unknown_routes_names_the_unknown_request(fake: FakeEngine, client: docker.APIClient) -> None:
    with pytest.raises(docker.errors.NotFound):
        client.volumes()
    with pytest.raises(AssertionError, match="GET /volumes"):
        fake.assert_no_unknown_routes()
    fake.unknown_routes.clear()


def test_a_restarted_container_runs_with_its_new_pid(fake: FakeEngine, client: docker.APIClient) -> None:
    cid = fake.add_container(pid=100)
    fake.stop_container(cid)
    fake.start_container(cid, pid=101)
    state = client.inspect_container(cid)["State"]
    assert (state["Running"], state["Pid"]) == (True, 101)
