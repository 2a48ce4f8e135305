"""A leak (grows past the limit), a ramp from a start level, and a noisy steady load (scenario 3 and
the false-trigger runs: docs/stressapp.md)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from stressapp import procfs
from stressapp.app import EXTENSION
from stressapp.ramp import Plan, level_at
from stressapp.settings import StressSettings
from tests.stressapp.conftest import write_tree


def test_a_ramp_can_start_from_a_level() -> None:
    plan = Plan(target=100, duration=10, ramp=60, start=40)
    assert [level_at(plan, t) for t in (0.0, 30.0, 59.95, 60.0)] == pytest.approx([40.0, 70.0, 99.9, 100.0])


def test_a_noisy_hold_draws_a_level_per_step_within_the_noise_and_the_same_every_time() -> None:
    plan = Plan(target=60, duration=600, ramp=5, noise=15, step=0.5, seed=7)
    levels = [level_at(plan, 5 + 0.1 * i) for i in range(6000)]
    assert all(45 <= v <= 75 for v in levels if v is not None)
    steps = [levels[i] for i in range(0, 6000, 5)]
    assert all(levels[i] == levels[i - i % 5] for i in range(6000))  # constant within a step
    assert len(set(steps)) > 1000 and abs(sum(steps) / len(steps) - 60) < 1.0
    assert levels == [level_at(plan, 5 + 0.1 * i) for i in range(6000)]  # pure: the same load again
    assert level_at(Plan(target=60, duration=600, ramp=5, noise=15, step=0.5, seed=8), 5.0) != levels[0]


def test_a_noisy_level_never_goes_below_zero() -> None:
    plan = Plan(target=5, duration=100, noise=5, step=0.1)
    assert min(level_at(plan, 0.1 * i) or 0.0 for i in range(1000)) >= 0.0


def test_a_leak_is_a_ramp_from_its_start_that_never_holds() -> None:
    from stressapp.validation import Limits, leak_plan

    plan = leak_plan({"rate": "30", "start": "100", "duration": "10"}, Limits(600, 512, 200))
    assert (plan.start, plan.ramp, plan.duration) == (100.0, 10.0, 0.0)
    assert level_at(plan, 5.0) == pytest.approx(250.0) and level_at(plan, 10.0) is None
    assert plan.target == 400.0  # beyond the 512 MB limit is fine: the OOM killer ends a leak


def test_the_leak_endpoint_starts_a_leak_and_stop_ends_it(client: FlaskClient) -> None:
    answer = client.get("/stress/leak?rate=20&start=4&duration=30").get_json()
    assert answer == {"status": "started", "leak_mb_per_s": 20, "start_mb": 4, "duration": 30}
    deadline = time.monotonic() + 5
    core = client.application.extensions[EXTENSION]
    while core._leak.held_bytes < 8 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert core._leak.held_bytes >= 8 * 2**20  # grows in 1 MB pieces
    assert client.get("/metrics").get_json()["active_stress"] == ["leak"]
    assert client.get("/stress/stop").get_json()["stopped_tests"] == ["leak"]
    assert core._leak.held_bytes == 0


BAD = [
    ("/stress/leak", "rate", "required"),
    ("/stress/leak?rate=0", "rate", "greater than 0"),
    ("/stress/leak?rate=2000", "rate", "at most 1000"),
    ("/stress/leak?rate=5&start=-1", "start", "at least 0"),
    ("/stress/leak?rate=5&start=9999", "start", "at most 512"),
    ("/stress/leak?rate=5&duration=601", "duration", "at most 600"),
    ("/stress/leak?rate=5&target=3", "target", "unknown parameter"),
    ("/stress/cpu?target=60&noise=15&step=0.05", "step", "at least 0.1"),
    ("/stress/cpu?target=60&step=1", "step", "only with noise"),
    ("/stress/cpu?target=60&seed=3", "seed", "only with noise"),
    ("/stress/cpu?target=90&noise=15", "noise", "at most 100% of the container's CPU"),
    ("/stress/cpu?target=10&noise=15", "noise", "at most 10"),
    ("/stress/memory?target=500&noise=20", "noise", "at most 512 MB"),
    ("/stress/memory?target=100&noise=10&seed=-1", "seed", "whole number"),
    ("/stress/cpu?target=60&start=70", "start", "at most 60"),
    ("/stress/network?bandwidth=10&start=1", "start", "unknown parameter"),
]


@pytest.mark.parametrize(("path", "parameter", "message"), BAD, ids=[p for p, _, _ in BAD])
def test_bad_leak_noise_and_start_parameters_get_400_naming_them(client: FlaskClient, path: str, parameter: str,
                                                                 message: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == parameter and message in response.get_json()["error"]
    assert client.get("/metrics").get_json()["active_stress"] == []


def test_a_leak_start_above_the_containers_limit_is_refused(make_client, settings: StressSettings, tmp_path: Path) -> None:
    # The app in this process counts this process's own memory as in use: the limit is set 256 MB
    # above it, however big the test process has grown.
    limit_mb = round(procfs.tree_rss_bytes("/proc", os.getpid()) / 2**20) + 256
    cgroups = write_tree(tmp_path / "cg", {"memory/memory.limit_in_bytes": str(limit_mb * 2**20)})
    client = make_client(settings, cgroup_root=str(cgroups))
    response = client.get("/stress/leak?rate=10&start=300")
    assert response.status_code == 400 and f"memory limit of {limit_mb} MB" in response.get_json()["error"]
    assert client.get("/stress/leak?rate=10&start=100&duration=1").status_code == 200
