"""The planned level of a stress over time: a pure function, so its shape is tested exactly.

A plan ramps linearly from 0 to its target in steps of 1/STEPS_PER_SECOND s, holds the target
for `duration` seconds, then ends. The ramp counts towards neither: a 30 s ramp and a 120 s
duration end 150 s after the start, as the PRD's example reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

STEPS_PER_SECOND = 10


@dataclass(frozen=True)
class Plan:
    target: float
    duration: float
    ramp: float = 0.0

    @property
    def end(self) -> float:
        return self.ramp + self.duration


def level_at(plan: Plan, elapsed: float) -> float | None:
    """The level `elapsed` seconds after the start; None once the plan has ended."""
    if elapsed < 0:
        return 0.0
    if elapsed >= plan.end:
        return None
    steps = math.ceil(plan.ramp * STEPS_PER_SECOND - 1e-9)
    if steps <= 0:
        return plan.target
    # Step k (1-based) is reached k/STEPS_PER_SECOND s after the start; the small epsilon
    # keeps exact step times (0.1 * 3 = 0.30000000000000004) on the right side.
    done = math.floor(elapsed * STEPS_PER_SECOND + 1e-9)
    if done >= steps:  # the target itself: target * steps / steps can round above it
        return plan.target
    return plan.target * done / steps
