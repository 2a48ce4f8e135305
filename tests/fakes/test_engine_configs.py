"""The fake engine's Config endpoints answer as Docker Engine 20.10 and 29 do (both profiles)."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.fakes.engine import MAX_CONFIG_SIZE, OUT_OF_SEQUENCE, EngineProfile, FakeEngine, service_spec


@pytest.fixture
def fake(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    with FakeEngine("manager-1", workers=("worker-1",), profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


def api(fake: FakeEngine, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
    url = f"{fake.base_url}/v{fake.profile.api_version}{path}"
    return requests.request(method, url, json=body, params=params, timeout=5)


def create(fake: FakeEngine, name: str, data: bytes = b"rules", **labels: str) -> requests.Response:
    return api(fake, "POST", "/configs/create",
               {"Name": name, "Labels": labels, "Data": base64.b64encode(data).decode()})


def test_a_created_config_is_listed_and_inspected_with_its_data_by_id_name_or_id_prefix(fake: FakeEngine) -> None:
    answer = create(fake, "set-a", b"hello", role="rules")
    assert answer.status_code == 201 and set(answer.json()) == {"ID"}
    config_id = answer.json()["ID"]
    for key in (config_id, "set-a", config_id[:6]):
        doc = api(fake, "GET", f"/configs/{key}").json()
        assert doc["ID"] == config_id and doc["Spec"]["Name"] == "set-a"
        assert base64.b64decode(doc["Spec"]["Data"]) == b"hello" and doc["Spec"]["Labels"] == {"role": "rules"}
    [listed] = api(fake, "GET", "/configs").json()
    assert listed == api(fake, "GET", f"/configs/{config_id}").json()


def test_the_list_filters_by_label_name_prefix_exact_names_and_id(fake: FakeEngine) -> None:
    create(fake, "rules-a", active="true")
    create(fake, "rules-b", active="false")
    create(fake, "other")

    def names(**filters: list[str]) -> list[str]:
        docs = api(fake, "GET", "/configs", filters=json.dumps(filters)).json()
        return sorted(doc["Spec"]["Name"] for doc in docs)

    assert names(label=["active"]) == ["rules-a", "rules-b"]
    assert names(label=["active=true"]) == ["rules-a"]
    assert names(name=["rules-"]) == ["rules-a", "rules-b"]
    assert names(names=["rules-"]) == [] and names(names=["other"]) == ["other"]
    other_id = api(fake, "GET", "/configs/other").json()["ID"]
    assert names(id=[other_id[:8]]) == ["other"]


@pytest.mark.parametrize(("name", "size", "status", "message"), [
    ("taken", 5, 409, "rpc error: code = AlreadyExists desc = config taken already exists"),
    ("bad name!", 5, 400, "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"),
    ("x" * 65, 5, 400, "invalid name"),
    ("empty", 0, 400, f"config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes"),
    ("too-big", MAX_CONFIG_SIZE, 400, "config data must be larger than 0 and less than 1024000 bytes"),
])
def test_a_create_is_refused_as_the_engine_refuses_it(fake: FakeEngine, name: str, size: int, status: int,
                                                      message: str) -> None:
    create(fake, "taken")
    answer = create(fake, name, b"x" * size)
    assert answer.status_code == status and message in answer.json()["message"]


def test_the_largest_config_the_engine_takes_is_one_byte_under_the_limit(fake: FakeEngine) -> None:
    assert create(fake, "largest", b"x" * (MAX_CONFIG_SIZE - 1)).status_code == 201


def test_only_labels_can_change_and_only_at_the_current_version(fake: FakeEngine) -> None:
    config_id = create(fake, "set-a", b"v1", keep="1").json()["ID"]
    doc = api(fake, "GET", f"/configs/{config_id}").json()
    version = str(doc["Version"]["Index"])
    changed = {**doc["Spec"], "Data": base64.b64encode(b"v2").decode()}
    refused = api(fake, "POST", f"/configs/{config_id}/update", changed, version=version)
    assert refused.status_code == 400 and refused.json()["message"].endswith("only updates to Labels are allowed")
    renamed = api(fake, "POST", f"/configs/{config_id}/update", {**doc["Spec"], "Name": "set-b"}, version=version)
    assert renamed.status_code == 400
    stale = api(fake, "POST", f"/configs/{config_id}/update", {**doc["Spec"], "Labels": {"x": "1"}}, version="1")
    assert stale.status_code == 500 and stale.json()["message"] == OUT_OF_SEQUENCE
    no_data = {"Name": "set-a", "Labels": {"new": "yes"}}  # Data left out: allowed, as in swarmkit
    assert api(fake, "POST", f"/configs/{config_id}/update", no_data, version=version).status_code == 200
    after = api(fake, "GET", f"/configs/{config_id}").json()
    assert after["Spec"]["Labels"] == {"new": "yes"} and base64.b64decode(after["Spec"]["Data"]) == b"v1"
    assert after["Version"]["Index"] > doc["Version"]["Index"]


def test_every_write_to_any_object_takes_the_next_version_index(fake: FakeEngine) -> None:
    first = create(fake, "first").json()["ID"]
    fake.create_service(service_spec("web", replicas=1))
    second = create(fake, "second").json()["ID"]
    doc = api(fake, "GET", f"/configs/{first}").json()
    api(fake, "POST", f"/configs/{first}/update", {**doc["Spec"], "Labels": {"touched": "1"}},
        version=str(doc["Version"]["Index"]))
    versions = {key: api(fake, "GET", f"/configs/{key}").json()["Version"]["Index"] for key in (first, second)}
    assert fake.service_version("web") < versions[second] < versions[first]


def test_a_removed_config_is_gone_and_one_in_use_by_a_service_is_not_removed(fake: FakeEngine) -> None:
    used = create(fake, "used").json()["ID"]
    spec = service_spec("web", replicas=1)
    spec["TaskTemplate"]["ContainerSpec"]["Configs"] = [{"ConfigID": used, "ConfigName": "used"}]
    fake.create_service(spec)
    refused = api(fake, "DELETE", f"/configs/{used}")
    assert refused.status_code == 400 and "config 'used' is in use by the following service: web" in refused.json()["message"]
    create(fake, "spare")
    assert api(fake, "DELETE", "/configs/spare").status_code == 204
    gone = api(fake, "GET", "/configs/spare")
    assert gone.status_code == 404 and gone.json()["message"] == "config spare not found"
    assert api(fake, "DELETE", f"/configs/{quote('spare')}").status_code == 404


def test_the_configs_api_answers_only_on_a_manager(engine_mode: EngineProfile) -> None:
    with FakeEngine("worker-9", swarm=False, profile=engine_mode) as outside:
        answer = api(outside, "GET", "/configs")
        assert answer.status_code == 503 and answer.json()["message"] == "This node is not part of a swarm"
    with FakeEngine("manager-1", workers=("worker-1",), profile=engine_mode) as fake:
        with fake.lock:
            fake._nodes[next(iter(fake._nodes))].role = "worker"
        answer = api(fake, "GET", "/configs")
        assert answer.status_code == 503 and answer.json()["message"].startswith("This node is not a swarm manager.")


def test_data_that_is_not_standard_base64_is_refused(fake: FakeEngine) -> None:
    answer = api(fake, "POST", "/configs/create", {"Name": "bad", "Data": "not base64!"})
    assert answer.status_code == 400 and "base64" in answer.json()["message"]
