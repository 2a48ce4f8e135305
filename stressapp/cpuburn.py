"""The body of a CPU worker process: a duty-cycled busy loop.

Kept free of third-party imports: workers start with the "spawn" method, so each one is a
fresh interpreter that imports only this module. The parent writes the duty (0..1 of one core)
into a shared double and reads back the worker's CPU time; a negative duty ends the worker.
"""
from __future__ import annotations

import os
import time
from typing import Any

PERIOD_S = 0.02


def burn(duty: Any, cpu_time: Any, slot: int) -> None:
    """Busy for duty*PERIOD_S, asleep for the rest, until the duty goes negative or the parent dies."""
    parent = os.getppid()
    clock = time.perf_counter
    while True:
        share = duty.value
        if share < 0 or os.getppid() != parent:
            return
        start = clock()
        busy_until = start + PERIOD_S * min(share, 1.0)
        while clock() < busy_until:
            pass
        cpu_time[slot] = time.process_time()
        rest = start + PERIOD_S - clock()
        if rest > 0:
            time.sleep(rest)
