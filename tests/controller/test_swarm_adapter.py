"""The Swarm adapter against the fake engine: views, safe updates, and the fake's Swarm behaviour."""
from __future__ import annotations

from typing import Any

import docker
import pytest

from sgcommon.engine import (
    EngineError,
    EngineUnavailable,
    NotFound,
    OutOfSequence,
    ServerError,
    UnsupportedVersion,
    connect,
    translate,
)
from sgcommon.engine.swarm import SwarmAdapter, engine_time
from tests.fakes.engine import ENGINE_20_10, ENGINE_29, EngineProfile, FakeEngine, service_spec
from tests.support import free_port


def running_nodes(fake: FakeEngine, name: str) -> list[str]:
    return sorted(node for _, node in fake.running_tasks(name))


def test_nodes_are_listed_with_role_state_and_host_name(swarm: SwarmAdapter) -> None:
    nodes = {n.hostname: n for n in swarm.list_nodes()}
    assert set(nodes) == {"manager-1", "worker-1", "worker-2"}
    assert nodes["manager-1"].role == "manager" and nodes["worker-1"].role == "worker"
    assert all(n.schedulable for n in nodes.values())


def test_a_service_view_carries_version_replicas_order_and_healthcheck(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", replicas=2, labels={"swarmguard.enable": "true"}))
    fake_engine.create_service(service_spec("agent", replicas=None, healthcheck=False, order="start-first"))
    web, agent = swarm.get_service("web"), swarm.get_service("agent")
    assert (web.replicas, web.update_order, web.has_healthcheck) == (2, "stop-first", True)
    assert web.labels == {"swarmguard.enable": "true"}
    assert (agent.replicas, agent.update_order, agent.has_healthcheck) == (None, "start-first", False)
    assert web.version == fake_engine.service_version("web")
    assert [s.name for s in swarm.list_services(label="swarmguard.enable=true")] == ["web"]


def test_replicas_are_spread_and_tasks_carry_node_names_and_containers(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", replicas=3))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 3)
    tasks = swarm.list_tasks(service="web", desired_state="running")
    assert sorted(t.node_hostname for t in tasks) == ["manager-1", "worker-1", "worker-2"]
    assert all(t.state == "running" and t.container_id and t.addresses for t in tasks)
    assert sorted(t.slot for t in tasks) == [1, 2, 3]


def test_a_missing_service_raises_not_found(swarm: SwarmAdapter) -> None:
    with pytest.raises(NotFound):
        swarm.get_service("nope")


def test_scale_writes_the_replica_count_and_bumps_the_version(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", replicas=1))
    before = swarm.get_service("web").version
    after = swarm.scale("web", 2)
    assert after.replicas == 2 and after.version > before
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 2)


def test_scaling_a_global_service_is_refused_without_a_write(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("agent", replicas=None))
    version = swarm.get_service("agent").version
    with pytest.raises(ValueError, match="not replicated"):
        swarm.scale("agent", 3)
    assert fake_engine.service_version("agent") == version


def test_an_update_out_of_sequence_is_retried_once_with_a_fresh_version(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    fake_engine.version_conflict(times=1)
    assert swarm.scale("web", 2).replicas == 2
    updates = [r for r in fake_engine.requests if r[0] == "POST" and r[1].endswith("/update")]
    assert len(updates) == 2


def test_a_second_update_out_of_sequence_is_raised(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    fake_engine.version_conflict(times=2)
    with pytest.raises(OutOfSequence):
        swarm.scale("web", 2)
    assert fake_engine.service_spec("web")["Mode"]["Replicated"]["Replicas"] == 1


def test_a_stale_version_is_refused_by_the_fake_like_the_engine(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    sid = fake_engine.create_service(service_spec("web"))
    stale = fake_engine.service_version("web")
    swarm.scale("web", 2)
    with pytest.raises(OutOfSequence, match="update out of sequence"):
        with translate("raw update"):
            connect(fake_engine.base_url).update_service(sid, stale, mode={"Replicated": {"Replicas": 5}},
                                          task_template=fake_engine.service_spec("web")["TaskTemplate"])


def test_server_errors_are_backed_off_and_retried(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    fake_engine.fail("GET", r"^/services/web$", status=503, times=2)
    delays: list[float] = []
    adapter = SwarmAdapter(connect(fake_engine.base_url), backoff=(0.5, 1.0, 2.0), sleep=delays.append)
    assert adapter.get_service("web").name == "web"
    assert delays == [0.5, 1.0]


def test_server_errors_beyond_the_back_off_budget_are_raised(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    fake_engine.fail("POST", r"/update$", status=500, times=10)
    adapter = SwarmAdapter(connect(fake_engine.base_url), backoff=(0.1,), sleep=lambda s: None)
    with pytest.raises(ServerError):
        adapter.scale("web", 3)


def test_start_first_runs_the_replacement_before_the_old_task_stops(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", order="start-first", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-1"])
    swarm.update_placement("web", remove=["node.hostname==worker-1"], add=["node.hostname!=worker-1"])
    assert fake_engine.wait_until(lambda: fake_engine.task_events("web", state="shutdown") != [])
    events = fake_engine.task_events("web")
    new_running = next(e for e in events if e.state == "running" and e.node != "worker-1")
    old_shutdown = next(e for e in events if e.state == "shutdown")
    assert old_shutdown.node == "worker-1"
    assert new_running.t < old_shutdown.t


def test_stop_first_stops_the_old_task_before_the_replacement_starts(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-1"])
    swarm.update_placement("web", remove=["node.hostname==worker-1"], add=["node.hostname==worker-2"])
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-2"])
    events = fake_engine.task_events("web")
    old_shutdown = next(e for e in events if e.state == "shutdown")
    new_assigned = next(e for e in events if e.state == "assigned" and e.node == "worker-2")
    assert old_shutdown.t <= new_assigned.t


def test_a_task_with_a_healthcheck_is_starting_until_healthy(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.set_timing("web", healthy=False)
    fake_engine.create_service(service_spec("web"))
    assert fake_engine.wait_until(lambda: [t.state for t in swarm.list_tasks(service="web")] == ["starting"])
    fake_engine.set_timing("web", healthy=True, health_delay=0.0)
    fake_engine.create_service(service_spec("plain", healthcheck=False))
    assert fake_engine.wait_until(lambda: [t.state for t in swarm.list_tasks(service="plain")] == ["running"])
    assert "starting" not in [e.state for e in fake_engine.task_events("plain")]


def test_relaxing_a_constraint_moves_nothing(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", order="start-first", constraints=["node.hostname!=manager-1"]))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    before = fake_engine.running_tasks("web")
    swarm.update_placement("web", remove=["node.hostname!=manager-1"])
    assert not fake_engine.wait_until(lambda: fake_engine.running_tasks("web") != before, timeout=0.2)


def test_excluding_every_node_leaves_the_new_task_pending_and_the_old_one_serving(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", order="start-first", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-1"])
    swarm.update_placement("web", add=["node.hostname!=worker-1"])
    assert fake_engine.wait_until(lambda: any(t.state == "pending" for t in swarm.list_tasks(service="web")))
    assert running_nodes(fake_engine, "web") == ["worker-1"]


def test_a_down_node_orphans_its_tasks_and_they_are_replaced_elsewhere(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", constraints=["node.role==worker"]))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [(_, node)] = fake_engine.running_tasks("web")
    fake_engine.node_down(node)
    assert {n.hostname: n.state for n in swarm.list_nodes()}[node] == "down"
    other = "worker-2" if node == "worker-1" else "worker-1"
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == [other])
    assert fake_engine.task_events("web", state="orphaned")[0].node == node


def test_a_global_service_runs_one_task_per_eligible_node(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("agent", replicas=None, constraints=["node.role==worker"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "agent") == ["worker-1", "worker-2"])


def test_an_invalid_constraint_is_refused_with_the_engine_message(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    with pytest.raises(EngineError, match="constraint expected one operator from ==, !="):
        swarm.update_placement("web", add=["node.color=blue"])


def test_a_drained_node_loses_its_tasks_and_a_paused_one_gets_no_new_ones(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", constraints=["node.role==worker"]))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [(_, node)] = fake_engine.running_tasks("web")
    other = "worker-2" if node == "worker-1" else "worker-1"
    fake_engine.set_availability(node, "drain")
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == [other])
    assert {n.hostname: n.schedulable for n in swarm.list_nodes()}[node] is False
    fake_engine.set_availability(other, "pause")
    assert running_nodes(fake_engine, "web") == [other]
    swarm.scale("web", 2)
    assert fake_engine.wait_until(lambda: any(t.state == "pending" for t in swarm.list_tasks(service="web")))


def test_scaling_proceeds_while_a_start_first_update_is_stuck(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", order="start-first", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-1"])
    fake_engine.set_timing("web", healthy=False)
    swarm.update_placement("web", remove=["node.hostname==worker-1"], add=["node.hostname!=worker-1"])
    swarm.scale("web", 2)
    assert fake_engine.wait_until(lambda: len(swarm.list_tasks(service="web", desired_state="running")) == 3)
    assert running_nodes(fake_engine, "web") == ["worker-1"]  # the old one still serves


def test_a_stop_first_update_replaces_the_task_exactly_once(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", constraints=["node.hostname==worker-1"]))
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-1"])
    swarm.update_placement("web", remove=["node.hostname==worker-1"], add=["node.hostname==worker-2"])
    assert fake_engine.wait_until(lambda: running_nodes(fake_engine, "web") == ["worker-2"])
    assert not fake_engine.wait_until(lambda: len(swarm.list_tasks(service="web", desired_state="running")) > 1, timeout=0.2)
    assert len(fake_engine.task_events("web", state="new")) == 2


def test_tasks_can_be_listed_by_node_and_desired_state(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web", replicas=3))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 3)
    swarm.scale("web", 2)
    on_worker = swarm.list_tasks(node="worker-1")
    assert [t.node_hostname for t in on_worker] == ["worker-1"]
    assert fake_engine.wait_until(lambda: len(swarm.list_tasks(service="web", desired_state="shutdown")) == 1)
    assert len(swarm.list_tasks(service="web", desired_state="running")) == 2


def test_engine_timestamps_read_as_unix_seconds(fake_engine: FakeEngine, swarm: SwarmAdapter) -> None:
    assert engine_time("2026-11-28T01:23:03.768424546Z") == pytest.approx(1795828983.768424546, abs=1e-6)
    assert engine_time("2026-11-28T01:23:03Z") == 1795828983.0
    assert engine_time("0001-01-01T00:00:00Z") is not None and engine_time("garbage") is None
    fake_engine.create_service(service_spec("web"))
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [task] = swarm.list_tasks(service="web")
    running = fake_engine.task_events("web", state="running")[0].t
    assert engine_time(task.status_at) == pytest.approx(running, abs=1e-5)


def test_a_node_back_before_the_orphan_delay_keeps_its_tasks(engine_mode: EngineProfile) -> None:
    with FakeEngine("manager-1", workers=("worker-1",), orphan_delay=0.3, profile=engine_mode) as fake:
        fake.create_service(service_spec("web", constraints=["node.hostname==worker-1"]))
        assert fake.wait_until(lambda: len(fake.running_tasks("web")) == 1)
        before = fake.running_tasks("web")
        fake.node_down("worker-1")
        fake.node_up("worker-1")
        assert not fake.wait_until(lambda: fake.task_events("web", state="orphaned") != [], timeout=0.5)
        assert fake.running_tasks("web") == before


def test_an_update_sends_the_whole_spec_back_so_networks_and_other_fields_survive(fake_engine: FakeEngine,
                                                                                  swarm: SwarmAdapter) -> None:
    spec = service_spec("web")
    spec["TaskTemplate"]["Networks"] = [{"Target": "net1", "Aliases": ["web"]}]
    spec["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] = 10_000_000_000
    if fake_engine.profile.legacy_service_networks:  # an old client's top-level field, which 20.10 still returns
        spec["Networks"] = [{"Target": "net0"}]
    fake_engine.create_service(spec)
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 1)
    [(first, _)] = fake_engine.running_tasks("web")
    swarm.scale("web", 2)
    after = fake_engine.service_spec("web")
    assert after["TaskTemplate"] == spec["TaskTemplate"]
    assert after.get("Networks") == spec.get("Networks")
    assert fake_engine.wait_until(lambda: len(fake_engine.running_tasks("web")) == 2)
    assert first in {task for task, _ in fake_engine.running_tasks("web")}  # the task template did not change


def test_a_health_start_interval_is_written_only_when_the_negotiated_version_carries_it(fake_engine: FakeEngine,
                                                                                         swarm: SwarmAdapter) -> None:
    fake_engine.create_service(service_spec("web"))
    version = fake_engine.service_version("web")

    def faster_start(spec: dict[str, Any]) -> None:
        spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["StartInterval"] = 500_000_000

    if fake_engine.profile is ENGINE_20_10:  # API 1.41: the engine would drop the field without a word
        with pytest.raises(UnsupportedVersion, match=r"not written: the spec sets "
                           r"TaskTemplate\.ContainerSpec\.Healthcheck\.StartInterval \(API 1\.44\+\), "
                           r"which the negotiated API 1\.41 does not carry"):
            swarm.update("web", faster_start, what="faster start of web")
        assert fake_engine.service_version("web") == version
    else:
        swarm.update("web", faster_start, what="faster start of web")
        assert fake_engine.service_spec("web")["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["StartInterval"] == 500_000_000


def test_a_client_pinned_to_api_1_41_fails_on_a_current_engine_and_the_negotiated_one_does_not(
    fake_engine: FakeEngine,
) -> None:
    fake_engine.create_service(service_spec("web"))
    pinned = SwarmAdapter(docker.APIClient(base_url=fake_engine.base_url, version="1.41", timeout=5), backoff=())
    negotiated = SwarmAdapter(connect(fake_engine.base_url, timeout=5), backoff=())
    assert [s.name for s in negotiated.list_services()] == ["web"]
    if fake_engine.profile is ENGINE_20_10:
        assert [s.name for s in pinned.list_services()] == ["web"]
    else:
        with pytest.raises(UnsupportedVersion, match="client version 1.41 is too old. Minimum supported API "
                                                     "version is 1.44"):
            pinned.list_services()


def test_an_adapter_given_a_connect_function_negotiates_at_its_first_call_and_again_after_an_engine_upgrade() -> None:
    unreachable = SwarmAdapter(lambda: connect(f"http://127.0.0.1:{free_port()}", timeout=1), backoff=())
    with pytest.raises(EngineUnavailable):  # constructing it asked nothing; the first call reports the engine
        unreachable.list_services()
    with FakeEngine(profile=ENGINE_20_10) as fake:
        opened: list[docker.APIClient] = []

        def open_client() -> docker.APIClient:
            opened.append(connect(fake.base_url, timeout=5))
            return opened[-1]

        adapter = SwarmAdapter(open_client, backoff=())
        fake.create_service(service_spec("web"))
        assert [s.name for s in adapter.list_services()] == ["web"]
        assert [c.api_version for c in opened] == ["1.41"]
        fake.profile = ENGINE_29  # upgraded in place: API 1.41 is refused from now on
        with pytest.raises(UnsupportedVersion, match="client version 1.41 is too old"):
            adapter.list_services()
        assert [s.name for s in adapter.list_services()] == ["web"]
        assert [c.api_version for c in opened] == ["1.41", "1.53"]
        assert fake.api_versions[-1] == "1.53"
