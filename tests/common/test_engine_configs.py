"""The one Docker adapter lists, inspects, creates, relabels and removes Swarm configs, with the
engine's failures translated (on the fake engine, in both profiles)."""
from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from sgcommon.engine import EngineError, NotFound, OutOfSequence, ServerError, connect
from sgcommon.engine.configs import MAX_CONFIG_DATA, config_view
from sgcommon.engine.swarm import SwarmAdapter
from tests.fakes.engine import OUT_OF_SEQUENCE, EngineProfile, FakeEngine


@pytest.fixture
def fake(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    with FakeEngine("manager-1", workers=("worker-1",), profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


@pytest.fixture
def adapter(fake: FakeEngine) -> Iterator[SwarmAdapter]:
    client = connect(fake.base_url, timeout=5)
    yield SwarmAdapter(client, backoff=(0.01, 0.01, 0.01))
    client.close()


def test_a_created_config_comes_back_with_its_bytes_labels_and_version(adapter: SwarmAdapter) -> None:
    data = "thresholds: {cpu_high: 80}\n# ünïcode\n".encode() + bytes(range(256))
    made = adapter.create_config("rules-a", data, labels={"swarmguard.rules.set": "1"})
    assert made.name == "rules-a" and made.data == data and made.labels == {"swarmguard.rules.set": "1"}
    assert made.version > 0 and made.created_at and not made.data_error
    assert adapter.get_config("rules-a") == made == adapter.get_config(made.id)
    assert adapter.list_configs(label="swarmguard.rules.set") == [made]
    assert adapter.list_configs(label="swarmguard.rules.set=2") == []


def test_labels_are_set_and_removed_in_one_write_and_the_data_stays(adapter: SwarmAdapter, fake: FakeEngine) -> None:
    made = adapter.create_config("rules-a", b"x", labels={"keep": "1", "drop": "1"})
    after = adapter.update_config_labels("rules-a", {"drop": None, "new": "2"})
    assert after.labels == {"keep": "1", "new": "2"} and after.data == b"x" and after.version > made.version
    same = adapter.update_config_labels("rules-a", {"new": "2"})  # nothing to change: nothing written
    assert same.version == after.version


def test_a_label_update_that_loses_a_race_is_retried_once_with_the_new_version(adapter: SwarmAdapter,
                                                                                  fake: FakeEngine) -> None:
    adapter.create_config("rules-a", b"x", labels={})
    fake.fail("POST", r"^/configs/[^/]+/update$", status=500, message=OUT_OF_SEQUENCE, times=1)
    assert adapter.update_config_labels("rules-a", {"active": "true"}).labels == {"active": "true"}
    fake.fail("POST", r"^/configs/[^/]+/update$", status=500, message=OUT_OF_SEQUENCE, times=2)
    with pytest.raises(OutOfSequence):
        adapter.update_config_labels("rules-a", {"active": "false"})


def test_engine_failures_become_the_projects_errors(adapter: SwarmAdapter, fake: FakeEngine) -> None:
    with pytest.raises(NotFound, match="inspect config missing"):
        adapter.get_config("missing")
    with pytest.raises(NotFound, match="remove config missing"):
        adapter.remove_config("missing")
    adapter.create_config("taken", b"x", labels={})
    with pytest.raises(EngineError, match="already exists") as taken:
        adapter.create_config("taken", b"y", labels={})
    assert taken.value.status == 409
    with pytest.raises(EngineError, match="less than 1024000 bytes"):
        adapter.create_config("huge", b"x" * (MAX_CONFIG_DATA + 1), labels={})
    fake.fail("GET", r"^/configs$", status=503, message="This node is not a swarm manager.", times=4)
    with pytest.raises(ServerError, match="not a swarm manager"):
        adapter.list_configs()


def test_a_removed_config_is_gone(adapter: SwarmAdapter) -> None:
    adapter.create_config("rules-a", b"x", labels={})
    adapter.remove_config("rules-a")
    assert adapter.list_configs() == []


def test_data_the_engine_should_never_send_is_reported_in_the_view_not_raised() -> None:
    view = config_view({"ID": "c1", "Version": {"Index": 3}, "Spec": {"Name": "n", "Data": "%%%"}})
    assert view.data == b"" and view.data_error.startswith("Data is not base64")
    odd = config_view({"ID": "c2", "Spec": {"Name": "n", "Data": 12, "Labels": None}})
    assert odd.data_error == "Data is not base64 text (a JSON int)" and odd.labels == {} and odd.version == 0
    good = config_view({"ID": "c3", "Spec": {"Name": "n", "Data": base64.b64encode(b"ok").decode()}})
    assert good.data == b"ok" and not good.data_error


def test_a_label_write_can_be_forced_to_make_the_config_the_latest_write(adapter: SwarmAdapter) -> None:
    first = adapter.create_config("first", b"x", labels={"a": "1"})
    second = adapter.create_config("second", b"x", labels={})
    assert adapter.update_config_labels("first", {"a": "1"}).version == first.version
    forced = adapter.update_config_labels("first", {"a": "1"}, always=True)
    assert forced.version > second.version and forced.labels == {"a": "1"}
