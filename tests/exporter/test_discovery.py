"""Discovery lists the engine's containers once, then follows its events, and outlives engine errors."""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator

import docker
import pytest

from exporter.discovery import Discovery, Inventory
from sgcommon.engine import connect
from sgcommon.engine import containers as containers_module
from sgcommon.engine.containers import EventStream, LocalContainer, inspect, list_running, node_name, parse_inspect
from tests.fakes.engine import EngineProfile, FakeEngine

SWARM = {"com.docker.swarm.service.name": "web", "com.docker.swarm.task.id": "task-9"}


@pytest.fixture
def fake(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    with FakeEngine(hostname="worker-3", profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


@pytest.fixture
def client(fake: FakeEngine) -> Iterator[docker.APIClient]:
    c = connect(fake.base_url)
    yield c
    c.close()


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def discover(fake: FakeEngine) -> Iterator[Callable[..., Discovery]]:
    started: list[Discovery] = []

    def start(**kwargs: object) -> Discovery:
        d = Discovery(Inventory(), base_url=fake.base_url, backoff=(0.01, 0.05), **kwargs)  # type: ignore[arg-type]
        started.append(d.start())
        return d

    yield start
    for d in started:
        d.stop()


def test_inspect_gives_service_task_pid_and_limits(fake: FakeEngine, client: docker.APIClient) -> None:
    cid = fake.add_container(name="web.1.task-9", labels=SWARM, pid=777, nano_cpus=1_500_000_000, memory=64 << 20,
                             image="10.99.0.1:5000/stressapp:latest")
    assert list_running(client) == [cid]
    assert node_name(client) == "worker-3"
    assert inspect(client, cid) == LocalContainer(
        id=cid, name="web.1.task-9", service="web", task_id="task-9", pid=777, cpu_limit=1.5, memory_limit=64 << 20,
        image="10.99.0.1:5000/stressapp:latest")


def test_a_quota_limit_counts_and_a_plain_container_is_its_own_service() -> None:
    doc = {"Id": "x", "Name": "/db", "State": {"Pid": 5}, "Config": {"Labels": None},
           "HostConfig": {"CpuQuota": 50_000, "CpuPeriod": 100_000, "Memory": 0}}
    assert parse_inspect(doc) == LocalContainer(id="x", name="db", service="db", task_id="", pid=5, cpu_limit=0.5, memory_limit=None)


def test_discovery_lists_then_follows_start_die_and_destroy(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    first = fake.add_container(name="web.1.a", labels=SWARM, pid=100)
    d = discover()
    assert d.ready.wait(5)
    assert set(d.inventory.snapshot()) == {first}
    assert d.inventory.node == "worker-3"
    second = fake.add_container(name="web.2.b", labels=SWARM, pid=200)
    assert eventually(lambda: set(d.inventory.snapshot()) == {first, second})
    fake.stop_container(first)
    assert eventually(lambda: set(d.inventory.snapshot()) == {second})
    fake.remove_container(second)
    assert eventually(lambda: d.inventory.snapshot() == {})


def test_a_restarted_container_gets_its_new_pid(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    cid = fake.add_container(name="web.1.a", labels=SWARM, pid=100)
    d = discover()
    assert d.ready.wait(5)
    fake.stop_container(cid)
    fake.start_container(cid, pid=101)
    assert eventually(lambda: cid in d.inventory.snapshot() and d.inventory.snapshot()[cid].pid == 101)


def test_engine_errors_are_counted_and_discovery_reconnects_and_relists(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    errors: Counter = Counter()
    fake.fail("GET", r"^/containers/json$", status=500, message="engine restarting", times=2)
    cid = fake.add_container(name="web.1.a", labels=SWARM, pid=100)
    d = discover(node_name="fixed-node", on_error=lambda kind: errors.update([kind]))
    assert d.ready.wait(5)
    assert set(d.inventory.snapshot()) == {cid} and d.inventory.node == "fixed-node"
    assert errors == Counter(engine=2)


def test_a_broken_event_stream_makes_discovery_list_again(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    errors: Counter = Counter()
    fake.fail("GET", r"^/events$", status=500, message="stream broke", times=1)
    d = discover(on_error=lambda kind: errors.update([kind]))
    assert eventually(lambda: errors["engine"] == 1)
    cid = fake.add_container(name="web.1.late", labels=SWARM, pid=300)
    assert eventually(lambda: cid in d.inventory.snapshot())


def test_a_container_gone_between_listing_and_inspect_is_skipped(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    gone = fake.add_container(name="web.1.gone", labels=SWARM, pid=100)
    kept = fake.add_container(name="web.2.kept", labels=SWARM, pid=200)
    fake.fail("GET", rf"^/containers/{gone}/json$", status=404, message="No such container", times=1)
    d = discover()
    assert d.ready.wait(5)
    assert set(d.inventory.snapshot()) == {kept}


def test_the_event_stream_yields_only_watched_container_actions(fake: FakeEngine, client: docker.APIClient) -> None:
    stream = EventStream(client, since=time.time() - 1)
    cid = fake.add_container(name="x", pid=1)  # create (ignored) and start
    fake.set_health(cid, "healthy")  # ignored
    fake.remove_container(cid)  # die, stop (ignored), destroy
    seen = []
    for ev in stream:
        seen.append((ev.action, ev.container_id))
        if ev.action == "destroy":
            break
    stream.close()
    assert seen == [("start", cid), ("die", cid), ("destroy", cid)]


def test_the_exporter_only_ever_reads_from_the_engine(fake: FakeEngine, discover: Callable[..., Discovery]) -> None:
    first = fake.add_container(name="web.1.a", labels=SWARM, pid=100)
    d = discover()
    assert d.ready.wait(5)
    fake.stop_container(first)
    fake.start_container(first, pid=101)
    second = fake.add_container(name="web.2.b", labels=SWARM, pid=200)
    fake.remove_container(second)
    assert eventually(lambda: set(d.inventory.snapshot()) == {first} and d.inventory.snapshot()[first].pid == 101)
    d.stop()
    assert fake.requests and {method for method, _ in fake.requests} == {"GET"}, fake.requests
    paths = {re.sub(r"/containers/[0-9a-f]{64}/", "/containers/ID/", path.split("?")[0]) for _, path in fake.requests}
    assert {re.sub(r"^/v[0-9.]+", "", p) for p in paths} <= {"/_ping", "/version", "/info", "/containers/json",
                                                              "/containers/ID/json", "/events"}, paths


def test_an_inspect_answer_that_cannot_be_read_skips_that_container_only(fake: FakeEngine, discover: Callable[..., Discovery],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bad = fake.add_container(name="web.1.bad", labels=SWARM, pid=100)
    good = fake.add_container(name="web.2.good", labels=SWARM, pid=200)
    real_parse = containers_module.parse_inspect

    def parse(doc: dict) -> LocalContainer:
        if doc["Id"] == bad:
            doc = {**doc, "HostConfig": {"NanoCpus": "lots"}}  # a string where a number belongs
        return real_parse(doc)

    monkeypatch.setattr(containers_module, "parse_inspect", parse)
    errors: Counter = Counter()
    d = discover(on_error=lambda kind: errors.update([kind]))
    assert d.ready.wait(5)
    assert set(d.inventory.snapshot()) == {good} and errors == Counter(engine=1)
