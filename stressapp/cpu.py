"""CPU stress: worker processes burn a share of the container's CPU, corrected in closed loop.

The GIL rules out threads, so the load runs in one spawned process per core of capacity.
Each tick the actuator measures the CPU the whole app used (this process, whose HTTP threads
and other stresses count too, plus the workers) and steers the workers' duty so the app's
total follows the planned level: feed-forward plus a bounded integral of the shortfall.
"""
from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from sgcommon.jsonlog import event, get_logger
from stressapp.cpuburn import burn

log = get_logger("swarmguard.stressapp.cpu")

GAIN_PER_S = 1.5  # cores of correction per core-second owed
MAX_OWED_CORE_S = 0.5  # bounds the integral so a starved period does not overshoot later


class CpuActuator:
    """Holds the app's CPU use at `level` % of `capacity` cores while applied."""

    def __init__(self, capacity: float, workers: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._count = workers
        self._clock = clock
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._duties: list[Any] = []  # shared doubles (RawValue), one per worker
        self._times: Any = None  # shared array of the workers' CPU seconds (RawArray)
        self._last: tuple[float, float] | None = None
        self._owed = 0.0

    def _spawn(self) -> None:
        self._times = self._ctx.RawArray("d", self._count)
        self._duties = [self._ctx.RawValue("d", 0.0) for _ in range(self._count)]
        self._procs = [
            self._ctx.Process(target=burn, args=(duty, self._times, slot), name=f"cpu-burn-{slot}", daemon=True)
            for slot, duty in enumerate(self._duties)
        ]
        for proc in self._procs:
            proc.start()
        event(log, "cpu workers started", workers=self._count, pids=[p.pid for p in self._procs])

    def _used_cpu_s(self) -> float:
        return time.process_time() + sum(self._times or ())

    def apply(self, level: float) -> None:
        if not self._procs:
            self._spawn()
            self._last, self._owed = None, 0.0
        desired = level / 100.0 * self.capacity
        now, used = self._clock(), self._used_cpu_s()
        if self._last is not None and now > self._last[0]:
            elapsed = now - self._last[0]
            actual = (used - self._last[1]) / elapsed
            self._owed += (desired - actual) * elapsed
            self._owed = max(-MAX_OWED_CORE_S, min(MAX_OWED_CORE_S, self._owed))
        self._last = (now, used)
        command = max(0.0, desired + GAIN_PER_S * self._owed) if desired > 0 else 0.0
        for duty in self._duties:
            duty.value = min(1.0, command / self._count)

    def release(self) -> None:
        if not self._procs:
            return
        for duty in self._duties:
            duty.value = -1.0
        for proc in self._procs:
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
            proc.close()
        event(log, "cpu workers stopped", workers=len(self._procs))
        self._procs, self._duties, self._times, self._last = [], [], None, None
