"""The fake engine answers API versions as Docker Engine 20.10 and a current engine do.

Each expectation comes from the Engine API reference or the engines' code named in
tests/fakes/engine.py's docstring, so the adapter's tests in both modes mean something.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import docker
import pytest
import requests

from sgcommon.engine import UnsupportedVersion
from sgcommon.engine import containers as engine_containers
from sgcommon.engine.versions import at_least
from tests.fakes.engine import ENGINE_20_10, ENGINE_29, EngineProfile, FakeEngine, service_spec

TOO_OLD = ("client version 1.41 is too old. Minimum supported API version is 1.44, "
           "please upgrade your client to a newer version")


@pytest.fixture
def fake(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    with FakeEngine(hostname="manager-1", profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


def test_a_client_pinned_to_1_41_is_refused_by_a_current_engine_and_served_by_20_10(fake: FakeEngine) -> None:
    fake.add_container(name="web.1.a")
    pinned = docker.APIClient(base_url=fake.base_url, version="1.41", timeout=5)
    try:
        if fake.profile is ENGINE_29:
            with pytest.raises(docker.errors.APIError) as raw:
                pinned.containers()
            assert raw.value.status_code == 400
            assert raw.value.response is not None and raw.value.response.json() == {"message": TOO_OLD}
            with pytest.raises(UnsupportedVersion, match="list containers: the engine refused the API version: "
                                                         "client version 1.41 is too old") as err:
                engine_containers.list_running(pinned)
            assert err.value.status == 400
        else:
            assert len(engine_containers.list_running(pinned)) == 1
    finally:
        pinned.close()


def test_a_version_above_the_engines_newest_is_refused_as_too_new(fake: FakeEngine) -> None:
    answer = requests.get(f"{fake.base_url}/v1.56/info", timeout=5)
    assert answer.status_code == 400
    newest = fake.profile.api_version
    assert answer.json() == {"message": f"client version 1.56 is too new. Maximum supported API version is {newest}"}


def test_unversioned_paths_are_served_at_the_engines_own_version_with_its_headers(fake: FakeEngine) -> None:
    answer = requests.get(f"{fake.base_url}/version", timeout=5)
    doc = answer.json()
    assert (doc["ApiVersion"], doc["MinAPIVersion"], doc["Version"]) == (
        fake.profile.api_version, fake.profile.min_api_version, fake.profile.engine_version)
    assert doc["Components"][0]["Details"]["ApiVersion"] == fake.profile.api_version
    assert answer.headers["Api-Version"] == fake.profile.api_version
    assert answer.headers["Server"] == f"Docker/{fake.profile.engine_version} (linux)"
    ping = requests.head(f"{fake.base_url}/_ping", timeout=5)
    assert ping.status_code == 200 and ping.headers["Api-Version"] == fake.profile.api_version
    assert "Min-Api-Version" not in ping.headers  # only /version tells the minimum
    assert ping.headers.get("Swarm") == ("active/manager" if fake.profile is ENGINE_29 else None)
    assert fake.api_versions == [None, None]


def read_events(fake: FakeEngine, version: str, accept: str | None) -> tuple[str, list[dict[str, object]]]:
    since = time.time()
    cid = fake.add_container(name="x", image="app:1")
    headers = {"Accept": accept}  # None drops requests' default "*/*"
    answer = requests.get(f"{fake.base_url}/v{version}/events", params={"since": f"{since:.6f}", "until": "9999999999"},
                          headers=headers, stream=True, timeout=5)
    lines = []
    for line in answer.iter_lines():
        lines.append(json.loads(line.lstrip(b"\x1e")))
        if len(lines) == 2:
            break
    answer.close()
    assert [(e["Action"], e["Actor"]["ID"]) for e in lines] == [("create", cid), ("start", cid)]
    return answer.headers["Content-Type"], lines


def test_events_carry_the_legacy_fields_only_below_api_1_52(fake: FakeEngine) -> None:
    for version in ("1.41", "1.44", "1.51", "1.52", "1.53"):
        if fake.version_refusal(version) is not None:
            continue
        _, events = read_events(fake, version, "*/*")
        legacy = not at_least(version, "1.52")
        assert all(("status" in e and "id" in e and e.get("from") == "app:1") == legacy for e in events), version


@pytest.mark.parametrize(("accept", "wanted"), [
    ("*/*", "application/jsonl"), (None, "application/json"), ("application/x-ndjson", "application/x-ndjson"),
    ("application/json-seq", "application/json-seq"),
])
def test_a_current_engine_negotiates_the_events_media_type_and_20_10_always_says_json(
    fake: FakeEngine, accept: str | None, wanted: str
) -> None:
    ctype, _ = read_events(fake, fake.profile.api_version, accept)
    assert ctype == (wanted if fake.profile is ENGINE_29 else "application/json")


def test_a_health_start_interval_is_kept_only_from_api_1_44_on(fake: FakeEngine) -> None:
    spec = service_spec("web")
    spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["StartInterval"] = 500_000_000
    created = requests.post(f"{fake.base_url}/v{fake.profile.api_version}/services/create", json=spec, timeout=5)
    assert created.status_code == 201
    kept = fake.service_spec("web")["TaskTemplate"]["ContainerSpec"]["Healthcheck"].get("StartInterval")
    assert kept == (500_000_000 if fake.profile is ENGINE_29 else None)


def test_a_top_level_networks_field_is_kept_by_20_10_and_folded_into_the_task_by_a_current_engine_below_1_44() -> None:
    legacy = {**service_spec("web"), "Networks": [{"Target": "net1"}]}
    assert FakeEngine(profile=ENGINE_20_10).adjust_spec(legacy, "1.41")["Networks"] == [{"Target": "net1"}]
    current = FakeEngine(profile=ENGINE_29)
    below = current.adjust_spec(legacy, "1.43")
    assert "Networks" not in below and below["TaskTemplate"]["Networks"] == [{"Target": "net1"}]
    at = current.adjust_spec(legacy, "1.44")
    assert "Networks" not in at and "Networks" not in at["TaskTemplate"]

