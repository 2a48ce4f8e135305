"""The runner drives an actuator through a plan: sampled shape, replacement, stop, release."""
from __future__ import annotations

import threading
import time

from stressapp.ramp import Plan, level_at
from stressapp.runner import StressRunner


class RecordingActuator:
    def __init__(self) -> None:
        self.applied: list[tuple[float, float]] = []
        self.released = threading.Event()
        self.fail_at: float | None = None
        self.clock_reads: list[float] | None = None

    def apply(self, level: float) -> None:
        if self.fail_at is not None and level >= self.fail_at:
            raise RuntimeError("boom")
        # With a recording clock: the runner's last clock read, the one this level came from.
        self.applied.append((self.clock_reads[-1] if self.clock_reads else time.monotonic(), level))

    def release(self) -> None:
        self.released.set()


def test_the_applied_levels_follow_the_planned_ramp_then_release() -> None:
    reads: list[float] = []

    def clock() -> float:
        reads.append(time.monotonic())
        return reads[-1]

    actuator = RecordingActuator()
    actuator.clock_reads = reads
    runner = StressRunner("cpu", actuator, clock=clock)
    plan = Plan(target=50, duration=0.5, ramp=1.0)
    runner.start(plan)
    started = reads[0]
    assert actuator.released.wait(5.0)
    assert not runner.active
    levels = [level for _, level in actuator.applied]
    assert len(set(levels)) >= 5  # about 15 ticks at 10 per second: the ramp is climbed, not jumped
    assert levels == sorted(levels) and levels[-1] == 50
    # Each applied level is exactly the plan's level at the moment the runner read its clock.
    assert [level for read, level in actuator.applied] == [level_at(plan, read - started) for read, _ in actuator.applied]


def test_a_new_plan_replaces_the_running_one_without_a_release() -> None:
    actuator = RecordingActuator()
    runner = StressRunner("memory", actuator)
    runner.start(Plan(target=100, duration=30))
    time.sleep(0.15)
    runner.start(Plan(target=20, duration=30))
    time.sleep(0.15)
    assert actuator.applied[-1][1] == 20
    assert not actuator.released.is_set()
    assert runner.stop() is True
    assert actuator.released.is_set() and not runner.active


def test_stopping_when_nothing_runs_says_so() -> None:
    assert StressRunner("cpu", RecordingActuator()).stop() is False


def test_a_failing_actuator_ends_its_stress_and_is_released() -> None:
    actuator = RecordingActuator()
    actuator.fail_at = 10
    runner = StressRunner("network", actuator)
    runner.start(Plan(target=10, duration=30))
    assert actuator.released.wait(2.0)
    assert not runner.active


def test_a_stress_started_again_after_it_ended_runs_again() -> None:
    restarts = 3
    actuator = RecordingActuator()
    runner = StressRunner("cpu", actuator)
    for _ in range(restarts):
        actuator.released.clear()
        runner.start(Plan(target=5, duration=0.15))
        assert actuator.released.wait(2.0)
    assert sum(1 for _, level in actuator.applied if level == 5) >= restarts
