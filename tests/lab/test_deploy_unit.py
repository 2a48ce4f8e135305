"""What the deploy tool changes in a merged stack, and its arguments."""
from __future__ import annotations

from typing import Any

import pytest

from labkit import cleanup, deploy


def merged() -> dict[str, Any]:
    return {
        "version": "3.8",
        "services": {
            "web-stress": {"image": "r/stressapp", "deploy": {"endpoint_mode": "dnsrr", "replicas": 1},
                           "ports": [{"mode": "ingress", "target": 8080, "published": 8080}],
                           "networks": {"swarmguard-net": None}},
            "influxdb": {"image": "influxdb:2.7", "deploy": {"labels": {"org.swarmguard.lab": "omit"}},
                         "secrets": [{"source": "pw"}], "volumes": [{"type": "volume", "source": "data",
                                                                     "target": "/d"}]},
        },
        "networks": {"swarmguard-net": {"external": True}},
        "volumes": {"data": {}},
        "secrets": {"pw": {"external": True}},
    }


def test_the_lab_leaves_out_omitted_services_and_what_only_they_used() -> None:
    stack, notes = deploy.shape_stack(merged(), lab=True)
    assert list(stack["services"]) == ["web-stress"]
    assert "volumes" not in stack and "secrets" not in stack
    assert stack["networks"] == {"swarmguard-net": {"external": True}}
    assert any("influxdb" in n for n in notes)


def test_a_dnsrr_service_loses_its_ingress_ports_but_keeps_host_ports() -> None:
    config = merged()
    config["services"]["web-stress"]["ports"].append({"mode": "host", "target": 9000, "published": 9000})
    stack, _ = deploy.shape_stack(config, lab=True)
    assert stack["services"]["web-stress"]["ports"] == [{"mode": "host", "target": 9000, "published": 9000}]


def test_a_real_cluster_keeps_every_service_and_gets_the_requested_replicas_and_port() -> None:
    config = merged()
    config["services"]["web-stress"]["deploy"].pop("endpoint_mode")
    stack, _ = deploy.shape_stack(config, lab=False, replicas=3, port=18080)
    assert sorted(stack["services"]) == ["influxdb", "web-stress"]
    assert stack["services"]["web-stress"]["deploy"]["replicas"] == 3
    assert stack["services"]["web-stress"]["ports"][0]["published"] == 18080
    assert stack["secrets"] == {"pw": {"external": True}}


def test_shaping_does_not_touch_the_merged_config() -> None:
    config = merged()
    deploy.shape_stack(config, lab=True, replicas=2)
    assert config == merged()


def test_the_lab_is_the_default_target_with_both_stack_files() -> None:
    args = deploy.parse_args([])
    assert args.lab is True
    assert [f.rsplit("/", 1)[1] for f in args.files] == ["stack.yml", "stack.lab.yml"]
    assert [f.rsplit("/", 1)[1] for f in deploy.parse_args(["--docker-host", "ssh://m"]).files] == ["stack.yml"]


@pytest.mark.parametrize("argv", [["--port", "8080"], ["--replicas", "-1"], ["--lab", "--docker-host", "tcp://m:2375"],
                                  ["--docker-host", "tcp://m:2375", "--port", "0"]])
def test_bad_deploy_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        deploy.parse_args(argv)


def test_cleanup_removes_the_stack_services_and_a_hand_made_web_stress_only() -> None:
    services = [
        {"Spec": {"Name": "swarmguard_web-stress", "Labels": {"com.docker.stack.namespace": "swarmguard"}}},
        {"Spec": {"Name": "web-stress"}},
        {"Spec": {"Name": "other_web-stress", "Labels": {"com.docker.stack.namespace": "other"}}},
        {"Spec": {"Name": "unrelated", "Labels": None}},
    ]
    assert cleanup.doomed_services(services, "swarmguard") == ["swarmguard_web-stress", "web-stress"]


def test_the_production_stack_keeps_what_zero_downtime_and_the_small_machine_need() -> None:
    import yaml

    from labkit import labinfo

    stack = yaml.safe_load((labinfo.REPO / "swarm" / "stack.yml").read_text())
    app = stack["services"]["web-stress"]
    assert app["deploy"]["update_config"]["order"] == "start-first"
    assert app["healthcheck"]["interval"] == "100ms" and app["healthcheck"]["start_period"] == "10s"
    assert stack["version"] == "3.8"  # deployable by a docker CLI as old as the engine (20.10)
    assert app["deploy"]["resources"]["limits"] == {"cpus": "0.5", "memory": "512M"}
    assert app["ports"][0]["published"] == 8080
    assert "endpoint_mode" not in app["deploy"]  # VIP and the routing mesh on a real cluster
    lab = yaml.safe_load((labinfo.REPO / "swarm" / "stack.lab.yml").read_text())
    assert lab["services"]["web-stress"]["deploy"]["endpoint_mode"] == "dnsrr"
    assert lab["services"]["web-stress"]["image"].startswith(labinfo.REGISTRY + "/")


def test_another_network_name_stands_in_for_swarmguard_net() -> None:
    stack, notes = deploy.shape_stack(merged(), lab=True, network="blue-net")
    assert stack["networks"]["swarmguard-net"] == {"external": True, "name": "blue-net"}
    assert stack["services"]["web-stress"]["networks"] == {"swarmguard-net": None}
    assert deploy.shape_stack(merged(), lab=True, network="swarmguard-net")[0]["networks"] == merged()["networks"]


def test_a_file_config_is_named_by_its_content_so_a_changed_file_rolls_out(tmp_path) -> None:
    rules = tmp_path / "default.yml"
    rules.write_text("rules: []\n")
    stack = {"configs": {"swarmguard-rules": {"file": str(rules)}, "other": {"external": True}}}
    deploy.name_configs_by_content(stack)
    first = stack["configs"]["swarmguard-rules"]["name"]
    assert first.startswith("swarmguard-rules-") and "name" not in stack["configs"]["other"]
    rules.write_text("rules: [] # edited\n")
    deploy.name_configs_by_content(stack)
    assert stack["configs"]["swarmguard-rules"]["name"] != first


class SecretsClient:
    def __init__(self, have: list[str]) -> None:
        self.have = have
        self.created: dict[str, bytes] = {}

    def secrets(self) -> list[dict[str, Any]]:
        return [{"Spec": {"Name": name}} for name in self.have]

    def create_secret(self, name: str, data: bytes) -> None:
        self.created[name] = data


def test_the_lab_creates_only_the_missing_external_secrets_with_random_values() -> None:
    client = SecretsClient(have=["swarmguard-alert-token"])
    stack = {"secrets": {"swarmguard-alert-token": {"external": True},
                         "swarmguard-influxdb-token": {"external": True}, "inline": {"file": "x"}}}
    notes = deploy.ensure_lab_secrets(client, stack)
    assert list(client.created) == ["swarmguard-influxdb-token"]
    assert len(client.created["swarmguard-influxdb-token"]) >= 32
    assert notes == ["created the secret swarmguard-influxdb-token (random value)"]
    again = SecretsClient(have=["swarmguard-alert-token"])
    deploy.ensure_lab_secrets(again, stack)
    assert again.created["swarmguard-influxdb-token"] != client.created["swarmguard-influxdb-token"]


class SwarmSays:
    """A service whose UpdateStatus, ServiceStatus and tasks change between polls, as Swarm reports them.

    Each poll is (update state or None, [(state, up_to_date), ...] of the tasks meant to run); the
    `_up-to-date` filter answers only the up-to-date ones, as the engine does.
    """

    api_version = "1.41"

    def __init__(self, polls: list[tuple[str | None, list[tuple[str, bool]]]], *, desired: int = 1,
                 started_at: str = "2026-12-01T10:00:00Z") -> None:
        self.polls = polls
        self.desired = desired
        self.started_at = started_at
        self.filters: list[dict[str, Any]] = []

    def _now(self) -> tuple[str | None, list[tuple[str, bool]]]:
        return self.polls[0]

    def inspect_service(self, name: str) -> dict[str, Any]:
        state, _ = self._now()
        doc: dict[str, Any] = {"ID": "svc1", "Spec": {"Mode": {"Replicated": {"Replicas": self.desired}}}}
        if state is not None:
            doc["UpdateStatus"] = {"State": state, "StartedAt": self.started_at, "Message": f"update {state}"}
        return doc

    def services(self, filters: dict[str, Any], status: bool) -> list[dict[str, Any]]:
        assert filters == {"id": "svc1"} and status is True
        _, tasks = self._now()
        running = sum(1 for state, _ in tasks if state == "running")
        return [dict(self.inspect_service("svc1"), ServiceStatus={"RunningTasks": running, "DesiredTasks": self.desired})]

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.filters.append(filters)
        _, tasks = self._now()
        picked = [{"Status": {"State": state}} for state, fresh in tasks if fresh or "_up-to-date" not in filters]
        if "_up-to-date" in filters and len(self.polls) > 1:  # the last call of a poll: on to the next
            self.polls.pop(0)
        return picked


def wait(client: Any, want: int | None = 1, *, timeout: float = 50, since: str | None = None) -> int:
    """How many polls it took until rolled out (a fake clock ticks one second per look)."""
    ticks = iter(range(1000))
    sleeps: list[float] = []
    deploy.wait_running(client, "web", want, timeout=timeout, since_update=since,
                        clock=lambda: float(next(ticks)), sleep=sleeps.append)
    return len(sleeps) + 1


def test_a_start_first_redeploy_is_done_when_swarm_says_completed_and_only_the_new_task_runs() -> None:
    client = SwarmSays([
        (None, [("running", False)]),  # deployed, the update not started: the running task is out of date
        ("updating", [("running", False), ("starting", True)]),
        ("updating", [("running", False), ("running", True)]),  # start-first: both run for a moment
        ("completed", [("running", False), ("running", True)]),  # the old one is still meant to run
        ("completed", [("running", True)]),
    ])
    assert wait(client) == 5
    assert {"service": "svc1", "desired-state": "running", "_up-to-date": "true"} in client.filters


def test_a_running_task_that_swarm_calls_up_to_date_is_rolled_out_whatever_its_spec_holds() -> None:
    # After a lifted exclusion the task's own spec keeps `node.hostname!=x`; Swarm does not replace it.
    client = SwarmSays([("completed", [("running", True)])])
    assert wait(client) == 1


def test_a_paused_update_fails_at_once_with_swarms_message() -> None:
    client = SwarmSays([("updating", [("running", False)]), ("paused", [("running", False)])])
    with pytest.raises(deploy.RolloutFailed, match="paused the update of web: 0/1 running tasks up to date.*update paused"):
        wait(client)


def test_a_rollback_of_this_deploy_fails_but_an_older_one_is_history() -> None:
    with pytest.raises(deploy.RolloutFailed, match="rolled the update back"):
        wait(SwarmSays([("rollback_started", [("running", False)]), ("rollback_completed", [("running", True)])]))
    older = SwarmSays([("rollback_completed", [("running", True)])], started_at="2026-11-30T08:00:00Z")
    assert wait(older, since="2026-11-30T08:00:00Z") == 1


def test_the_replicas_count_comes_from_swarm_and_must_match_what_was_asked() -> None:
    assert wait(SwarmSays([(None, [("running", True), ("running", True)])], desired=2), want=None) == 1
    with pytest.raises(SystemExit, match=r"not rolled out after 5 s: web: 2/2 running tasks up to date"):
        wait(SwarmSays([(None, [("running", True), ("running", True)])], desired=2), want=1, timeout=5)


def test_a_rollout_that_never_ends_is_a_clear_failure_with_the_last_state() -> None:
    client = SwarmSays([("updating", [("running", False), ("starting", True)])])
    with pytest.raises(SystemExit, match=r"web: 0/1 running tasks up to date, 1 running, 2 meant to run; update updating"):
        wait(client, timeout=5)


def test_after_a_migration_and_its_lifted_exclusion_the_fake_engine_rolls_out_at_once() -> None:
    from sgcommon.engine import connect
    from tests.fakes.engine import FakeEngine, Timing, service_spec

    with FakeEngine("manager-1", workers=("worker-1", "worker-2"), timing=Timing(0.01, 0.01, 0.01)) as engine:
        engine.create_service(service_spec("app", replicas=1, order="start-first", constraints=["node.role==worker"]))
        client = connect(engine.base_url, timeout=5)
        try:
            deploy.wait_running(client, "app", 1, timeout=10)
            [(_, node)] = engine.running_tasks("app")
            spec = engine.service_spec("app")
            spec["TaskTemplate"]["Placement"]["Constraints"].append(f"node.hostname!={node}")
            engine.update_service("app", engine.service_version("app"), spec)
            assert engine.wait_until(lambda: [n for _, n in engine.running_tasks("app")] not in ([], [node]))
            deploy.wait_running(client, "app", 1, timeout=10)
            spec = engine.service_spec("app")
            spec["TaskTemplate"]["Placement"]["Constraints"].remove(f"node.hostname!={node}")
            engine.update_service("app", engine.service_version("app"), spec)
            moved = engine.running_tasks("app")
            assert deploy.wait_running(client, "app", 1, timeout=10) < 1.0  # no spec to wait for
            assert engine.running_tasks("app") == moved  # relaxing a constraint moved nothing
        finally:
            client.close()


def test_the_stack_publishes_the_exporter_in_host_mode_and_not_the_controller_influxdb_or_prometheus() -> None:
    import yaml

    from labkit import labinfo

    stack = yaml.safe_load((labinfo.REPO / "swarm" / "stack.yml").read_text())
    services = stack["services"]
    assert services["exporter"]["ports"] == [{"target": 9101, "published": 9101, "protocol": "tcp", "mode": "host"}]
    assert not any(services[name].get("ports") for name in ("controller", "influxdb", "prometheus"))
    lab = yaml.safe_load((labinfo.REPO / "swarm" / "stack.lab.yml").read_text())
    merged = {name: {**services[name], "deploy": {**services[name].get("deploy", {}), **lab["services"].get(name, {}).get("deploy", {})}}
              for name in services}
    shaped, _ = deploy.shape_stack({"services": merged}, lab=True)
    assert shaped["services"]["exporter"]["ports"][0]["mode"] == "host"  # kept on a dnsrr service
    assert "prometheus" not in shaped["services"] and "ports" not in shaped["services"]["web-stress"]


def with_start_interval() -> dict[str, Any]:
    stack = merged()
    stack["services"]["web-stress"]["healthcheck"] = {"test": ["CMD", "true"], "interval": "250ms", "start_period": "10s"}
    stack["services"]["web-stress"][deploy.START_INTERVAL_KEY] = {"interval": "5s", "start_interval": "100ms"}
    stack["services"]["influxdb"][deploy.START_INTERVAL_KEY] = {"start_interval": "1s"}  # no healthcheck of its own
    return stack


def test_an_engine_with_a_start_interval_gets_it_and_the_compose_format_that_carries_it() -> None:
    stack = with_start_interval()
    notes = deploy.use_start_interval(stack, api_version="1.44")
    assert stack["services"]["web-stress"]["healthcheck"] == {
        "test": ["CMD", "true"], "interval": "5s", "start_period": "10s", "start_interval": "100ms"}
    assert stack["version"] == "3.12" and len(notes) == 1 and "web-stress" in notes[0]
    assert not any(deploy.START_INTERVAL_KEY in service for service in stack["services"].values())
    assert "healthcheck" not in stack["services"]["influxdb"]


def test_engine_20_10_keeps_the_short_interval_and_the_old_format() -> None:
    stack = with_start_interval()
    assert deploy.use_start_interval(stack, api_version="1.41") == []
    assert stack["services"]["web-stress"]["healthcheck"]["interval"] == "250ms"
    assert "start_interval" not in stack["services"]["web-stress"]["healthcheck"] and stack["version"] == "3.8"
    assert deploy.START_INTERVAL_KEY not in stack["services"]["web-stress"]


def test_the_docker_cli_turns_the_production_stack_into_a_start_interval_on_a_new_engine() -> None:
    import os
    import shutil
    import subprocess

    import yaml

    from labkit import labinfo

    if not shutil.which("docker"):
        pytest.skip("no docker CLI here")
    offline = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}  # the CLI deploy.py runs; no engine
    config = subprocess.run(["docker", "stack", "config", "-c", str(labinfo.REPO / "swarm" / "stack.yml")],
                            capture_output=True, text=True, env=offline, check=True).stdout
    stack = yaml.safe_load(config)
    deploy.use_start_interval(stack, api_version="1.45")
    again = subprocess.run(["docker", "stack", "config", "-c", "-"], input=yaml.safe_dump(deploy.escape_interpolation(stack)),
                           capture_output=True,
                           text=True, env=offline, check=False)
    if "unsupported Compose file version" in again.stderr:
        pytest.skip(f"this docker CLI predates compose format 3.12: {again.stderr.strip()}")
    assert again.returncode == 0, again.stderr
    health = yaml.safe_load(again.stdout)["services"]["web-stress"]["healthcheck"]
    assert (health["start_interval"], health["interval"], health["start_period"]) == ("100ms", "5s", "10s")
    assert health["test"] == stack["services"]["web-stress"]["healthcheck"]["test"]  # its $code survived


def test_a_literal_dollar_survives_the_second_interpolation_of_the_deploy() -> None:
    stack = {"services": {"a": {"healthcheck": {"test": ["CMD", "bash", "-c", '[ "$code" = 200 ]']},
                                "entrypoint": ["sh", "-c", "X=$(cat f) exec run"], "replicas": 2}}}
    escaped = deploy.escape_interpolation(stack)
    assert escaped["services"]["a"]["healthcheck"]["test"][3] == '[ "$$code" = 200 ]'
    assert escaped["services"]["a"]["entrypoint"][2] == "X=$$(cat f) exec run"
    assert escaped["services"]["a"]["replicas"] == 2 and stack["services"]["a"]["entrypoint"][2] == "X=$(cat f) exec run"
