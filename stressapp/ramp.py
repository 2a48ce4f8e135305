"""The planned level of a stress over time: a pure function, so its shape is tested exactly.

A plan ramps linearly from `start` (default 0) to its target in steps of 1/STEPS_PER_SECOND s,
holds the target for `duration` seconds, then ends. The ramp counts towards neither: a 30 s ramp
and a 120 s duration end 150 s after the start.

With `noise` > 0 the hold is a noisy steady load: every `step` seconds the level is redrawn
uniformly from target +/- noise (never below 0). The draws depend only on the plan's `seed` and
the step's number, so the same plan gives the same load every time and the function stays pure.
A leak (stressapp/app.py, /stress/leak) is a ramp from `start` that ends when its ramp does.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

STEPS_PER_SECOND = 10


@dataclass(frozen=True)
class Plan:
    target: float
    duration: float
    ramp: float = 0.0
    start: float = 0.0  # the level the ramp starts from
    noise: float = 0.0  # half-width of the noisy hold, in the target's unit
    step: float = 1.0  # seconds between two draws of the noisy hold
    seed: int = 0

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
        return _hold(plan, elapsed)
    # Step k (1-based) is reached k/STEPS_PER_SECOND s after the start; the small epsilon
    # keeps exact step times (0.1 * 3 = 0.30000000000000004) on the right side.
    done = math.floor(elapsed * STEPS_PER_SECOND + 1e-9)
    if done >= steps:  # the target itself: target * steps / steps can round above it
        return _hold(plan, elapsed)
    return plan.start + (plan.target - plan.start) * done / steps


def _hold(plan: Plan, elapsed: float) -> float:
    if plan.noise <= 0:
        return plan.target
    draw = math.floor((elapsed - plan.ramp) / plan.step + 1e-9)
    offset = random.Random(plan.seed * 1_000_003 + draw).uniform(-plan.noise, plan.noise)
    return max(0.0, plan.target + offset)
