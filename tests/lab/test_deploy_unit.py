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


class RolloutClient:
    """A service whose tasks change between polls: each poll takes the next list of tasks."""

    def __init__(self, template: dict[str, Any], polls: list[list[dict[str, Any]]]) -> None:
        self.template = {**template, "Runtime": "container"}  # the engine fills it on the service side
        self.polls = polls

    def inspect_service(self, name: str) -> dict[str, Any]:
        return {"Spec": {"TaskTemplate": self.template}}

    def tasks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]


def task(image: str, state: str = "running") -> dict[str, Any]:
    return {"Spec": {"ContainerSpec": {"Image": image}}, "Status": {"State": state}}


def test_a_redeploy_is_waited_for_until_the_old_task_no_longer_runs_beside_the_new_one() -> None:
    new = {"ContainerSpec": {"Image": "app@sha256:new"}}
    polls = [
        [task("app@sha256:old")],  # the update has not started: the running task is the old spec
        [task("app@sha256:old"), task("app@sha256:new", "starting")],
        [task("app@sha256:old"), task("app@sha256:new")],  # start-first: both run for a moment
        [task("app@sha256:new")],
    ]
    client = RolloutClient(new, polls)
    ticks = iter(range(100))
    waited = deploy.wait_running(client, "web", 1, timeout=50, clock=lambda: float(next(ticks)), sleep=lambda s: None)
    assert client.polls == [[task("app@sha256:new")]] and waited == 4.0


def test_a_rollout_that_never_ends_is_a_clear_failure() -> None:
    client = RolloutClient({"ContainerSpec": {"Image": "app@sha256:new"}}, [[task("app@sha256:old")]])
    ticks = iter(range(100))
    with pytest.raises(SystemExit, match=r"0/1 running tasks of its current spec \(1 meant to run\)"):
        deploy.wait_running(client, "web", 1, timeout=5, clock=lambda: float(next(ticks)), sleep=lambda s: None)


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
