"""The figures /metrics reports, sampled on a fixed interval so every reader sees the same rates.

`Meter.update` turns two consecutive samples of cumulative counters into rates; it is pure
given the samples and the clock, so its arithmetic is tested without real processes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """Cumulative counters at one moment."""

    cpu_seconds: float
    rss_bytes: int
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class Figures:
    cpu_percent: float
    memory_mb: float
    memory_percent: float
    network_rx_mbps: float
    network_tx_mbps: float


class Meter:
    """Keeps the latest figures; `update()` takes a sample and recomputes them."""

    def __init__(
        self,
        sample: Callable[[], Sample],
        *,
        capacity_cores: float,
        memory_limit_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sample = sample
        self._capacity = capacity_cores
        self._limit = memory_limit_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._previous = (clock(), sample())
        self._figures = self._figures_between(self._previous, self._previous)

    def _figures_between(self, old: tuple[float, Sample], new: tuple[float, Sample]) -> Figures:
        elapsed = new[0] - old[0]
        a, b = old[1], new[1]

        def rate(delta: float) -> float:
            return max(0.0, delta) / elapsed if elapsed > 0 else 0.0

        return Figures(
            cpu_percent=round(rate(b.cpu_seconds - a.cpu_seconds) / self._capacity * 100, 1),
            memory_mb=round(b.rss_bytes / MB, 1),
            memory_percent=round(b.rss_bytes / self._limit * 100, 1),
            network_rx_mbps=round(rate(b.rx_bytes - a.rx_bytes) * 8 / 1e6, 2),
            network_tx_mbps=round(rate(b.tx_bytes - a.tx_bytes) * 8 / 1e6, 2),
        )

    def update(self) -> Figures:
        current = (self._clock(), self._sample())
        with self._lock:
            self._figures = self._figures_between(self._previous, current)
            self._previous = current
            return self._figures

    @property
    def figures(self) -> Figures:
        with self._lock:
            return self._figures


class MeterThread:
    """Calls `meter.update()` every `interval` seconds until closed."""

    def __init__(self, meter: Meter, interval: float) -> None:
        self._meter = meter
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meter", daemon=True)

    def start(self) -> MeterThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._meter.update()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
