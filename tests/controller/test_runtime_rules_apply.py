"""The whole controller (`runtime.build`) on the fake engine takes a set applied with `rules apply`
into effect without a restart and shows it on /metrics; with the configs look turned off it does not."""
from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest

from controller.__main__ import main
from controller.app import create_app
from controller.rules.bundle import from_paths
from controller.runtime import build
from controller.settings import ControllerSettings
from sgcommon.settings import SettingsError
from tests.fakes.engine import FakeEngine

ROOT = Path(__file__).resolve().parents[2]


def test_an_applied_set_takes_effect_in_the_running_controller_and_shows_on_metrics(
        fake_engine: FakeEngine, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "mine")
    text = (tmp_path / "mine" / "default.yml").read_text().replace("cpu_high: 75", "cpu_high: 85")
    (tmp_path / "mine" / "default.yml").write_text(text)
    settings = ControllerSettings(rules=str(ROOT / "rules"), docker_url=fake_engine.base_url, exporters=["127.0.0.1:9"],
                                  rules_configs_interval=0.05)
    runtime, config = build(settings, alert_token="t", thresholds={})
    client = create_app(config, runtime).test_client()
    try:
        defaults = from_paths([str(ROOT / "rules")]).name
        assert f'swarmguard_rules_info{{set="{defaults}",source="files"}} 1.0' in client.get("/metrics").get_data(as_text=True)
        out = io.StringIO()
        assert main(["rules", "apply", str(tmp_path / "mine"), "--service", "", "--docker-host", fake_engine.base_url],
                    env={}, out=out, err=io.StringIO()) == 0
        time.sleep(0.06)  # the next look at the applied set is due
        runtime.check_rules()  # the scheduler's rules job
        mine = from_paths([str(tmp_path / "mine")]).name
        metrics = client.get("/metrics").get_data(as_text=True)
        assert f'swarmguard_rules_info{{set="{mine}",source="config"}} 1.0' in metrics
        assert f'set="{defaults}"' not in metrics
        assert "swarmguard_rules_applied_timestamp_seconds " in metrics
        assert runtime._rules.current().thresholds["cpu_high"] == 85
    finally:
        runtime.stop()


def test_with_the_configs_look_off_the_files_stay_in_effect_and_the_engine_is_not_asked(
        fake_engine: FakeEngine, tmp_path: Path) -> None:
    settings = ControllerSettings(rules=str(ROOT / "rules"), docker_url=fake_engine.base_url, exporters=["127.0.0.1:9"],
                                  rules_configs_interval=0.0)
    runtime, config = build(settings, alert_token="t", thresholds={})
    try:
        runtime.check_rules()
        assert not any(path.startswith("/configs") for _, path in fake_engine.requests)
    finally:
        runtime.stop()


@pytest.mark.parametrize("seconds", [-1.0, 61.0])
def test_a_configs_interval_outside_0_to_60_seconds_is_refused(seconds: float) -> None:
    with pytest.raises(SettingsError, match="rules_configs_interval"):
        ControllerSettings(rules_configs_interval=seconds)
