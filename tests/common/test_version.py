"""`--version` and `swarmguard_build_info` read the one version of the installed package."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sgcommon.version import register_build_info, version


def test_the_version_is_the_installed_distributions() -> None:
    assert version() == metadata.version("swarmguard")


@pytest.mark.slow
@pytest.mark.parametrize(("command", "name"), [
    (["-m", "exporter"], "swarmguard-exporter"),
    (["-m", "controller"], "swarmguard-controller"),
    (["-m", "stressapp"], "swarmguard-stressapp"),
    (["-m", "controller.check_rules"], "python -m controller.check_rules"),
    (["-m", "labkit.suite"], "run_full_test_suite"),
])
def test_every_command_line_prints_name_and_version(command: list[str], name: str) -> None:
    done = subprocess.run([sys.executable, *command, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"{name} {version()}\n"), done.stderr


def test_build_info_is_a_gauge_of_one_with_component_version_and_python() -> None:
    registry = CollectorRegistry()
    register_build_info(registry, "exporter")
    text = generate_latest(registry).decode()
    assert "# TYPE swarmguard_build_info gauge" in text
    assert (f'swarmguard_build_info{{component="exporter",python="{platform.python_version()}",version="{version()}"}} 1.0'
            in text.splitlines())


def test_the_controllers_registry_carries_its_build_info(tmp_path: Path) -> None:
    from controller.runtime import build
    from controller.settings import ControllerSettings

    (tmp_path / "r.yml").write_text("rules:\n  - {name: up, when: cpu > 90, action: scale_up}\n")
    runtime, config = build(ControllerSettings(rules=str(tmp_path / "r.yml"), exporters=["127.0.0.1:9"]),
                            alert_token="t", thresholds={}, swarm=object())
    try:
        text = generate_latest(config.registry).decode()
    finally:
        runtime.stop()
    assert 'swarmguard_build_info{component="controller"' in text
