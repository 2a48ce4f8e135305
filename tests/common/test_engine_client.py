"""connect() speaks the newest API version the engine and SwarmGuard share, in one round trip."""
from __future__ import annotations

import dataclasses
import logging

import pytest

from sgcommon.engine import EngineUnavailable, UnsupportedVersion, connect
from sgcommon.engine import containers as engine_containers
from sgcommon.engine.versions import (
    MAX_API_VERSION,
    MIN_API_VERSION,
    EngineVersions,
    VersionedField,
    fields_newer_than,
    negotiate,
)
from tests.fakes.engine import ENGINE_29, EngineProfile, FakeEngine
from tests.support import free_port


def test_the_negotiated_version_is_the_engines_newest_and_every_request_after_the_probe_uses_it(
    engine_mode: EngineProfile,
) -> None:
    with FakeEngine(profile=engine_mode) as fake:
        cid = fake.add_container(name="web.1.a")
        client = connect(fake.base_url, timeout=5)
        try:
            assert client.api_version == engine_mode.api_version
            assert engine_containers.list_running(client) == [cid]
        finally:
            client.close()
        assert fake.requests == [("GET", "/version"), ("GET", "/containers/json")]
        assert fake.api_versions == [None, engine_mode.api_version]


def test_an_engine_newer_than_our_maximum_is_spoken_to_at_our_maximum_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="swarmguard.engine.client")
    future = dataclasses.replace(ENGINE_29, engine_version="31.0.0", api_version="1.60")
    with FakeEngine(profile=future) as fake:
        client = connect(fake.base_url, timeout=5)
        client.close()
    assert client.api_version == MAX_API_VERSION
    [record] = [r for r in caplog.records if r.name == "swarmguard.engine.client"]
    assert record.levelno == logging.WARNING and record.getMessage() == "engine API version negotiated"
    assert record.__dict__["fields"]["engine"] == "Docker Engine 31.0.0, API 1.44 to 1.60"


@pytest.mark.parametrize(("engine_min", "engine_max"), [("1.56", "1.60"), ("1.12", "1.40")])
def test_an_engine_without_a_common_version_gets_one_error_naming_both_ranges(engine_min: str, engine_max: str) -> None:
    profile = dataclasses.replace(ENGINE_29, min_api_version=engine_min, api_version=engine_max, engine_version="x.y")
    with FakeEngine(profile=profile) as fake:
        with pytest.raises(UnsupportedVersion) as err:
            connect(fake.base_url, timeout=5)
        assert fake.requests == [("GET", "/version")]  # nothing else was tried
    text = str(err.value)
    assert f"API {engine_min} to {engine_max}" in text
    assert f"SwarmGuard speaks API {MIN_API_VERSION} to {MAX_API_VERSION}" in text
    assert "no common API version" in text


def test_the_negotiated_version_is_logged_once_per_engine(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swarmguard.engine.client")
    with FakeEngine() as fake:
        for _ in range(3):
            connect(fake.base_url, timeout=5).close()
        assert fake.requests == [("GET", "/version")] * 3  # one round trip per client
    records = [r for r in caplog.records if r.name == "swarmguard.engine.client"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert records[0].__dict__["fields"]["api_version"] == "1.41"


def test_an_unreachable_engine_is_engine_unavailable() -> None:
    with pytest.raises(EngineUnavailable, match="engine unreachable"):
        connect(f"http://127.0.0.1:{free_port()}", timeout=2)


def test_a_version_answer_without_an_api_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an API version"):
        EngineVersions.from_version_doc({"Version": "29.0.0"})
    assert EngineVersions.from_version_doc({"ApiVersion": "1.41"}).min_api_version == "1.0"


@pytest.mark.parametrize(("engine_min", "engine_max", "chosen"), [
    ("1.12", "1.41", "1.41"), ("1.24", "1.43", "1.43"), ("1.44", "1.52", "1.52"), ("1.40", "1.55", "1.55"),
    ("1.44", "1.99", MAX_API_VERSION), ("1.55", "1.55", "1.55"), ("1.41", "1.41", "1.41"),
])
def test_negotiation_takes_the_newest_version_inside_both_ranges(engine_min: str, engine_max: str, chosen: str) -> None:
    assert negotiate(EngineVersions(api_version=engine_max, min_api_version=engine_min), where="test") == chosen


def test_version_strings_compare_as_numbers_not_text() -> None:
    # "1.100" > "1.55" as numbers, < as text: a text comparison would pick the wrong side.
    assert negotiate(EngineVersions(api_version="1.100", min_api_version="1.9"), where="t") == MAX_API_VERSION
    with pytest.raises(UnsupportedVersion):
        negotiate(EngineVersions(api_version="1.9", min_api_version="1.9"), where="t")


def test_fields_newer_than_the_version_are_found_where_they_are_set() -> None:
    spec = {"TaskTemplate": {
        "ContainerSpec": {"Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 10**9}, "OomScoreAdj": 0,
                          "Mounts": [{"Type": "tmpfs"}, {"Type": "tmpfs", "TmpfsOptions": {"Options": [["exec"]]}}]},
        "Resources": {"MemorySwappiness": 0}}}
    names = {f.name for f in fields_newer_than(spec, "1.41")}
    assert names == {"TaskTemplate.ContainerSpec.Healthcheck.StartInterval",
                     "TaskTemplate.ContainerSpec.Mounts[].TmpfsOptions.Options",
                     "TaskTemplate.Resources.MemorySwappiness"}  # OomScoreAdj 0 is unset; swappiness 0 is a value
    assert {f.name for f in fields_newer_than(spec, "1.46")} == {"TaskTemplate.Resources.MemorySwappiness"}
    assert fields_newer_than(spec, "1.52") == []
    assert fields_newer_than({}, "1.41") == []
    assert VersionedField(("A", "*", "B"), "1.44").name == "A[].B"


def test_an_ssh_engine_without_paramiko_is_refused_with_the_socket_forward_to_use_instead() -> None:
    import importlib.util

    from sgcommon.engine import EngineUnavailable, connect

    if importlib.util.find_spec("paramiko") is not None:
        pytest.skip("paramiko is installed here: docker-py reaches ssh:// engines itself")
    with pytest.raises(EngineUnavailable, match=r"ssh://admin@manager: .*paramiko.*ssh -nNT -L /tmp/manager.sock"):
        connect("ssh://admin@manager", timeout=1)
