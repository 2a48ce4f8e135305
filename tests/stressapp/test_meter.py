"""The /metrics figures computed from two samples of cumulative counters, on a fake clock."""
from __future__ import annotations

import pytest

from stressapp.meter import MB, Meter, Sample


class Script:
    """Feeds the meter a fixed sequence of (time, sample) pairs."""

    def __init__(self, *points: tuple[float, Sample]) -> None:
        self._points = list(points)
        self._now = 0.0

    def clock(self) -> float:
        self._now = self._points[0][0]
        return self._now

    def sample(self) -> Sample:
        return self._points.pop(0)[1]


def test_rates_are_the_counter_deltas_over_the_elapsed_time() -> None:
    script = Script(
        (10.0, Sample(cpu_seconds=5.0, rss_bytes=100 * MB, rx_bytes=0, tx_bytes=1000)),
        (12.0, Sample(cpu_seconds=7.0, rss_bytes=300 * MB, rx_bytes=5_000_000, tx_bytes=2_501_000)),
    )
    meter = Meter(script.sample, capacity_cores=2.0, memory_limit_bytes=1200 * MB, clock=script.clock)
    figures = meter.update()
    assert figures.cpu_percent == 50.0  # 1 core of 2
    assert figures.memory_mb == 300.0
    assert figures.memory_percent == 25.0
    assert figures.network_rx_mbps == 20.0  # 5 MB in 2 s = 20 Mbit/s
    assert figures.network_tx_mbps == 10.0
    assert meter.figures == figures


def test_before_a_second_sample_the_rates_are_zero() -> None:
    script = Script((1.0, Sample(cpu_seconds=9.0, rss_bytes=64 * MB, rx_bytes=10, tx_bytes=10)))
    meter = Meter(script.sample, capacity_cores=1.0, memory_limit_bytes=128 * MB, clock=script.clock)
    assert (meter.figures.cpu_percent, meter.figures.memory_percent, meter.figures.network_tx_mbps) == (0.0, 50.0, 0.0)


def test_a_counter_that_goes_backwards_reads_as_zero_not_negative() -> None:
    script = Script(
        (0.0, Sample(cpu_seconds=10.0, rss_bytes=MB, rx_bytes=0, tx_bytes=0)),
        (1.0, Sample(cpu_seconds=9.5, rss_bytes=MB, rx_bytes=0, tx_bytes=0)),
    )
    meter = Meter(script.sample, capacity_cores=1.0, memory_limit_bytes=MB, clock=script.clock)
    assert meter.update().cpu_percent == pytest.approx(0.0)
