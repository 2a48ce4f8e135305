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
    """Each period, spins until it has *used* duty*PERIOD_S of CPU, then sleeps out the period.

    Counting CPU time rather than wall time keeps the share right when other processes preempt
    the worker: it spins longer (within the period) to get the CPU it was given.
    Ends when the duty goes negative or the parent dies.
    """
    parent = os.getppid()
    wall, used = time.perf_counter, time.process_time
    while True:
        share = duty.value
        if share < 0 or os.getppid() != parent:
            return
        start = wall()
        period_end = start + PERIOD_S
        budget_end = used() + PERIOD_S * min(share, 1.0)
        while used() < budget_end and wall() < period_end:
            pass
        cpu_time[slot] = used()
        rest = period_end - wall()
        if rest > 0:
            time.sleep(rest)
