"""The console script refuses bad settings with one clear message and exit code 2."""
from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys

import pytest
from sgcommon.settings import SettingsError

from stressapp.settings import StressSettings, check
from tests.stressapp.helpers import REPO


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"network_peer": "nonsense"}, "STRESS_NETWORK_PEER: expected host:port"),
        ({"port": 70000}, "STRESS_PORT: expected a port"),
        ({"max_duration": 0.0}, "STRESS_MAX_DURATION: expected a number > 0"),
        ({"sample_interval": float("nan")}, "STRESS_SAMPLE_INTERVAL: expected a number > 0"),
    ],
)
def test_a_setting_the_app_cannot_run_with_is_named(changes: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check(dataclasses.replace(StressSettings(), **changes))


def test_every_bad_setting_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        check(StressSettings(port=-1, max_memory_mb=-5))
    assert "STRESS_PORT" in str(caught.value) and "STRESS_MAX_MEMORY_MB" in str(caught.value)


def test_the_defaults_are_valid() -> None:
    check(StressSettings())


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [([], {"STRESS_PORT": "abc"}, "STRESS_PORT: expected an integer"),
     (["--network-peer", "web"], {}, "STRESS_NETWORK_PEER: expected host:port")],
)
def test_the_console_script_exits_2_with_the_message(args: list[str], env: dict[str, str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "stressapp", *args], cwd=REPO, env={"PATH": "/usr/bin:/bin", **env},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_port_already_in_use_ends_the_app_with_a_clear_line_not_a_traceback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "stressapp", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                                env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{port} is in use" in result.stderr  # werkzeug's own message (werkzeug.serving.prepare_socket)
    assert "Traceback" not in result.stderr
