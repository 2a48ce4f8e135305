"""`swarmguard-controller run` refuses to start on bad settings or without a token, and says why."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from controller.__main__ import main
from controller.actions.settings import ActionSettings
from controller.settings import PREFIX, ControllerSettings
from sgcommon.settings import SettingsError, load_settings


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, env=env, err=err)
    return code, err.getvalue()


def test_without_an_alert_token_the_controller_refuses_to_start_and_names_the_way_out() -> None:
    code, text = run(["run"], {})
    assert code == 2
    assert "ALERT_TOKEN" in text and "--insecure-no-alert-token" in text


def test_an_alert_token_file_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    code, text = run(["run"], {"ALERT_TOKEN_FILE": str(tmp_path / "missing")})
    assert code == 2 and "ALERT_TOKEN_FILE" in text


def test_every_bad_setting_is_reported_at_once() -> None:
    code, text = run(["run", "--port", "x", "--scrape-interval", "fast"], {"ALERT_TOKEN": "t"})
    assert code == 2
    assert "--port" in text and "--scrape-interval" in text


def test_a_bad_threshold_override_stops_the_start() -> None:
    code, text = run(["run", "--threshold", "cpu_high=lots"], {"ALERT_TOKEN": "t"})
    assert code == 2 and "cpu_high=lots" in text


def test_settings_layer_defaults_yaml_env_and_command_line(tmp_path: Path) -> None:
    path = tmp_path / "controller.yml"
    path.write_text("scrape_interval: 3\nexporters: [a:9101, b]\nport: 6000\n")
    settings = load_settings(ControllerSettings, prefix=PREFIX, yaml_path=str(path),
                             env={"CONTROLLER_SCRAPE_INTERVAL": "2", "INFLUXDB_URL": "http://influx:8086"},
                             overrides={"port": "7000"})
    assert (settings.scrape_interval, settings.port, settings.exporters) == (2.0, 7000, ["a:9101", "b"])
    assert settings.influx_url == "http://influx:8086" and settings.events_keep == 500


def test_out_of_range_settings_are_refused_with_every_reason() -> None:
    with pytest.raises(SettingsError) as info:
        ControllerSettings(scrape_interval=0.01, events_keep=0)
    assert "scrape_interval" in str(info.value) and "events_keep" in str(info.value)


def test_the_action_settings_nest_under_actions_in_every_layer(tmp_path: Path) -> None:
    path = tmp_path / "controller.yml"
    path.write_text("actions:\n  workers: 6\n  max_replicas: 4\n")
    settings = load_settings(ControllerSettings, prefix=PREFIX, yaml_path=str(path),
                             env={"CONTROLLER_ACTIONS_POLL_INTERVAL": "0.5", "CONTROLLER_ACTIONS_DRY_RUN": "yes"},
                             overrides={"actions.max_moving_total": "5"})
    assert settings.actions == ActionSettings(workers=6, max_replicas=4, poll_interval=0.5, dry_run=True,
                                              max_moving_total=5)


def test_an_action_setting_under_its_old_name_stops_the_start_and_names_the_new_one() -> None:
    code, text = run(["run", "--dry-run"], {"ALERT_TOKEN": "t", "CONTROLLER_SCALE_DOWN_COOLDOWN": "60"})
    assert code == 2
    assert "--dry-run is now --actions-dry-run" in text
    assert "CONTROLLER_SCALE_DOWN_COOLDOWN is now CONTROLLER_ACTIONS_AFTER_SCALE_UP" in text


def test_a_bad_action_setting_is_reported_by_its_path() -> None:
    code, text = run(["run", "--actions-workers", "0"], {"ALERT_TOKEN": "t"})
    assert code == 2 and "actions.workers: must be >= 1" in text


def test_check_rules_accepts_the_shipped_rules_and_exits_0() -> None:
    out = io.StringIO()
    assert main(["check-rules", "rules/"], env={}, out=out) == 0
    assert out.getvalue().startswith("OK: 8 rules")


def test_check_rules_prints_every_error_with_its_place_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(Path("rules/default.yml").read_text().replace("action: migrate", "action: teleport"))
    out = io.StringIO()
    assert main(["check-rules", str(bad)], env={}, out=out) == 1
    assert f"{bad}:" in out.getvalue() and "teleport" in out.getvalue()


def test_check_rules_applies_threshold_overrides_and_refuses_unknown_ones() -> None:
    out = io.StringIO()
    assert main(["check-rules", "rules/", "--threshold", "no_such_threshold=1"], env={}, out=out) == 1
    assert "no_such_threshold" in out.getvalue()
