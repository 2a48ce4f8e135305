"""Layered settings: defaults < YAML < environment < command line, every error reported at once."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from sgcommon.settings import SettingsError, add_arguments, cli_overrides, describe, group, load_settings, setting


@dataclass(frozen=True)
class Demo:
    interval: float = setting(1.0, "seconds between sweeps")
    port: int = setting(9101, "listen port")
    net_iface: str = setting("", "interface", env="NET_IFACE")
    debug: bool = setting(False, "debug logs")
    peers: list[str] = setting([], "peer URLs")


def test_defaults_apply_when_nothing_is_given() -> None:
    assert load_settings(Demo, prefix="X_", env={}) == Demo()


def test_each_layer_overrides_the_one_below(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("interval: 2\nport: 1000\npeers: [a, b]\n")
    env = {"X_PORT": "2000", "NET_IFACE": "eth1", "X_DEBUG": "yes"}
    got = load_settings(Demo, prefix="X_", yaml_path=str(path), env=env, overrides={"port": "3000", "interval": None})
    assert got == Demo(interval=2.0, port=3000, net_iface="eth1", debug=True, peers=["a", "b"])


def test_a_comma_separated_environment_value_becomes_a_list() -> None:
    assert load_settings(Demo, prefix="X_", env={"X_PEERS": "h1:1, h2:2,"}).peers == ["h1:1", "h2:2"]


def test_every_bad_value_is_reported_at_once(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("intervall: 2\nport: many\n")
    with pytest.raises(SettingsError) as err:
        load_settings(Demo, prefix="X_", yaml_path=str(path), env={"X_DEBUG": "maybe"})
    text = str(err.value)
    assert "unknown setting 'intervall'" in text
    assert "port: expected an integer" in text
    assert "X_DEBUG: expected true/false" in text


def test_a_yaml_file_that_is_not_a_mapping_is_refused(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_settings(Demo, prefix="X_", yaml_path=str(path), env={})


def test_command_line_flags_are_generated_from_the_fields() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Demo, prefix="X_")
    args = parser.parse_args(["--port", "7", "--debug"])
    assert load_settings(Demo, prefix="X_", env={}, overrides=cli_overrides(args, Demo)) == Demo(port=7, debug=True)


def test_a_fractional_number_for_an_integer_setting_is_refused_not_truncated(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("port: 9101.5\n")
    with pytest.raises(SettingsError, match=r"port: expected an integer, got 9101\.5"):
        load_settings(Demo, prefix="X_", yaml_path=str(path), env={})
    path.write_text("port: 9101.0\n")
    assert load_settings(Demo, prefix="X_", yaml_path=str(path), env={}).port == 9101


@dataclass(frozen=True)
class Limits:
    workers: int = setting(4, "actions at once")
    timeout: float = setting(60.0, "seconds per action")
    dry_run: bool = setting(False, "change nothing")

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingsError("workers: must be >= 1")


@dataclass(frozen=True)
class Nested:
    RENAMED = {"workers": "limits.workers", "dry_run": "limits.dry_run"}

    port: int = setting(9101, "listen port")
    limits: Limits = group(Limits, "action limits")


def test_a_nested_group_is_set_in_every_layer_by_its_path(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("port: 1\nlimits:\n  workers: 2\n  timeout: 5\n")
    env = {"X_LIMITS_TIMEOUT": "7", "X_LIMITS_DRY_RUN": "true"}
    parser = argparse.ArgumentParser()
    add_arguments(parser, Nested, prefix="X_")
    args = parser.parse_args(["--limits-workers", "3"])
    got = load_settings(Nested, prefix="X_", yaml_path=str(path), env=env, overrides=cli_overrides(args, Nested))
    assert got == Nested(port=1, limits=Limits(workers=3, timeout=7.0, dry_run=True))
    assert load_settings(Nested, prefix="X_", env={}) == Nested()


def test_bad_nested_values_are_reported_at_once_by_their_path(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("limits:\n  workerz: 2\n  timeout: soon\n")
    with pytest.raises(SettingsError) as err:
        load_settings(Nested, prefix="X_", yaml_path=str(path), env={"X_LIMITS_DRY_RUN": "maybe"},
                      overrides={"limits.workers": "many"})
    text = str(err.value)
    assert "unknown setting 'limits.workerz'" in text
    assert "limits.timeout: expected a number, got 'soon'" in text
    assert "X_LIMITS_DRY_RUN: expected true/false" in text
    assert "--limits-workers: expected an integer" in text


def test_a_nested_groups_own_checks_name_the_setting_by_its_path() -> None:
    with pytest.raises(SettingsError, match=r"^limits\.workers: must be >= 1$"):
        load_settings(Nested, prefix="X_", env={"X_LIMITS_WORKERS": "0"})


def test_a_group_given_as_anything_but_a_mapping_is_refused(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("limits: 8\n")
    with pytest.raises(SettingsError, match="limits: expected a mapping of settings, got 8"):
        load_settings(Nested, prefix="X_", yaml_path=str(path), env={})


def test_a_renamed_setting_is_refused_with_its_new_name_in_every_layer(tmp_path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("workers: 2\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser, Nested, prefix="X_")
    args = parser.parse_args(["--dry-run"])
    with pytest.raises(SettingsError) as err:
        load_settings(Nested, prefix="X_", yaml_path=str(path), env={"X_WORKERS": "3"},
                      overrides=cli_overrides(args, Nested))
    text = str(err.value)
    assert f"{path}: setting 'workers' is now 'limits.workers'" in text
    assert "X_WORKERS is now X_LIMITS_WORKERS" in text
    assert "--dry-run is now --limits-dry-run" in text


def test_describe_names_nested_settings_by_their_path() -> None:
    assert dict(describe(Nested())) == {"port": 9101, "limits.workers": 4, "limits.timeout": 60.0,
                                        "limits.dry_run": False}
