"""Memory stress really takes resident memory and really gives it back (measured RSS)."""
from __future__ import annotations

from stressapp import procfs
from stressapp.memory import MB, MemoryActuator


def rss_mb() -> float:
    return procfs.status_kib("/proc", "self", "VmRSS") / 1024


def test_the_rss_rises_by_the_level_and_falls_back_on_release() -> None:
    actuator = MemoryActuator()
    before = rss_mb()
    actuator.apply(200)
    held = rss_mb()
    actuator.release()
    after = rss_mb()
    assert held - before >= 195  # every page written, so resident
    assert after - before < 15  # munmap gave it back (a CPython-freed bytearray may not)
    assert actuator.held_bytes == 0


def test_while_ramping_whole_chunks_are_taken_and_the_rest_once_the_level_holds() -> None:
    actuator = MemoryActuator(chunk_bytes=10 * MB)
    actuator.apply(35)
    assert actuator.held_bytes == 30 * MB
    actuator.apply(35)
    assert actuator.held_bytes == 35 * MB
    actuator.release()


def test_a_lower_level_frees_chunks_down_to_it() -> None:
    actuator = MemoryActuator(chunk_bytes=10 * MB)
    actuator.apply(50)
    before = rss_mb()
    actuator.apply(20)
    assert actuator.held_bytes == 20 * MB
    assert before - rss_mb() >= 28
    actuator.release()
