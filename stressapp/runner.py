"""Drives one kind of stress through its plan: a thread that applies the planned level 10 times a second.

An actuator turns a level into load (`apply`) and gives everything back (`release`). A new
plan replaces the running one at once; stopping releases before `stop` returns.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sgcommon.jsonlog import event, get_logger
from stressapp.ramp import STEPS_PER_SECOND, Plan, level_at

log = get_logger("swarmguard.stressapp.runner")


class Actuator(Protocol):
    def apply(self, level: float) -> None: ...

    def release(self) -> None: ...


class StressRunner:
    """Runs at most one plan of one kind at a time."""

    def __init__(self, kind: str, actuator: Actuator, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self._actuator = actuator
        self._clock = clock
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._started = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # Serialises apply/release: a thread that is winding down may overlap a new one.
        self._actuating = threading.Lock()

    @property
    def active(self) -> bool:
        with self._lock:
            return self._plan is not None

    def start(self, plan: Plan) -> None:
        """Starts `plan`, replacing the plan of this kind that runs, if any."""
        with self._lock:
            replaced = self._plan is not None
            self._plan, self._started = plan, self._clock()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"stress-{self.kind}", daemon=True)
                self._thread.start()
        self._wake.set()
        event(log, "stress started", kind=self.kind, target=plan.target, duration=plan.duration,
              ramp=plan.ramp, replaced=replaced)

    def stop(self) -> bool:
        """Ends the running plan and waits for the release; False when nothing ran."""
        with self._lock:
            was_active, self._plan = self._plan is not None, None
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        return was_active

    def _current_level_locked(self) -> float | None:
        if self._plan is None:
            return None
        level = level_at(self._plan, self._clock() - self._started)
        if level is None:
            self._plan = None
            event(log, "stress finished", kind=self.kind)
        return level

    def _next_level_or_exit(self) -> float | None:
        """The level to apply, or None after deregistering this thread (atomically with the check)."""
        with self._lock:
            level = self._current_level_locked()
            if level is None:
                self._thread = None
            return level

    def _run(self) -> None:
        period = 1.0 / STEPS_PER_SECOND
        try:
            while (level := self._next_level_or_exit()) is not None:
                with self._actuating:
                    self._actuator.apply(level)
                self._wake.wait(period)
                self._wake.clear()
        except Exception as exc:  # a failed actuator ends this stress, never the app
            with self._lock:
                self._plan = self._thread = None
            event(log, "stress failed", level=logging.ERROR, kind=self.kind, error=repr(exc))
        finally:
            with self._actuating:
                self._actuator.release()
