"""The planned level over time: exact values of the pure function, and its shape as a property."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressapp.ramp import STEPS_PER_SECOND, Plan, level_at


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 0.0), (0.05, 0.0), (0.1, 2.0), (0.3, 6.0), (1.0, 20.0), (2.55, 50.0), (3.999, 78.0),
     (4.0, 80.0), (5.0, 80.0), (123.9, 80.0)],
)
def test_a_ramp_climbs_in_tenth_of_a_second_steps_then_holds(elapsed: float, expected: float) -> None:
    plan = Plan(target=80, duration=120, ramp=4)
    assert level_at(plan, elapsed) == pytest.approx(expected)


def test_a_plan_ends_after_ramp_plus_duration() -> None:
    plan = Plan(target=80, duration=120, ramp=30)
    assert level_at(plan, 149.99) == 80
    assert level_at(plan, 150.0) is None


def test_without_a_ramp_the_target_applies_at_once() -> None:
    plan = Plan(target=300, duration=2, ramp=0)
    assert [level_at(plan, t) for t in (0.0, 1.0, 1.999, 2.0)] == [300, 300, 300, None]


def test_a_ramp_shorter_than_a_step_is_one_step() -> None:
    plan = Plan(target=10, duration=1, ramp=0.05)
    assert (level_at(plan, 0.0), level_at(plan, 0.1)) == (0.0, 10.0)


def test_before_the_start_the_level_is_zero() -> None:
    assert level_at(Plan(target=50, duration=5, ramp=1), -0.5) == 0.0


@given(
    target=st.floats(min_value=0.1, max_value=5000),
    ramp=st.floats(min_value=0, max_value=100),
    duration=st.floats(min_value=0.1, max_value=100),
    times=st.lists(st.floats(min_value=0, max_value=250), min_size=2, max_size=20),
)
def test_the_level_never_falls_never_exceeds_the_target_and_moves_in_whole_steps(
    target: float, ramp: float, duration: float, times: list[float]
) -> None:
    plan = Plan(target=target, duration=duration, ramp=ramp)
    levels = [level_at(plan, t) for t in sorted(times) if t < plan.end]
    assert levels == sorted(levels)
    assert all(0 <= level <= target for level in levels)
    steps = max(1, math.ceil(ramp * STEPS_PER_SECOND - 1e-9))  # levels are multiples of target/steps
    for level in levels:
        assert level * steps / target == pytest.approx(round(level * steps / target), abs=1e-6)
