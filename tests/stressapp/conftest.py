"""Fixtures of the stress app tests: settings on free ports, a Flask test client, fake cgroup/proc trees."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from stressapp.app import EXTENSION, create_app
from stressapp.settings import StressSettings


@pytest.fixture
def settings() -> StressSettings:
    return StressSettings(sink_port=0, sample_interval=0.2, max_duration=600, max_memory_mb=512, max_bandwidth_mbps=200)


@pytest.fixture
def make_client() -> Iterator:
    """Builds test clients from settings; every app's stress and threads are closed afterwards."""
    apps = []

    def build(settings: StressSettings, **changes: object) -> FlaskClient:
        app = create_app(dataclasses.replace(settings, **changes))
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions[EXTENSION].close()


@pytest.fixture
def client(make_client, settings: StressSettings) -> FlaskClient:
    return make_client(settings)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    """A /proc where "self" lives in /docker/abc (v1) and 0::/user.slice/app (v2), with 4 GiB of RAM."""
    return write_tree(tmp_path / "proc", {
        "self/cgroup": "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/user.slice/app\n",
        "meminfo": "MemTotal:        4194304 kB\nMemFree:         1000000 kB\n",
    })
