"""Memory stress: anonymous mmap chunks, every page written, unmapped on release.

mmap/munmap rather than bytearray: memory CPython frees may stay in its allocator, while an
unmapped chunk leaves the process at once, so the RSS really drops when the stress ends.
"""
from __future__ import annotations

import mmap

from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.stressapp.memory")

MB = 1024 * 1024
CHUNK_BYTES = 10 * MB


class MemoryActuator:
    """Holds `level` MB of written, resident memory while applied."""

    def __init__(self, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._chunk_bytes = chunk_bytes
        self._pattern = b""
        self._chunks: list[mmap.mmap] = []
        self._last_level: float | None = None

    @property
    def held_bytes(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def _grow(self, size: int) -> None:
        if len(self._pattern) < size:
            # Non-zero bytes: a page only becomes resident once written.
            self._pattern = b"\xa5" * self._chunk_bytes
        chunk = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        chunk.write(self._pattern[:size] if size < len(self._pattern) else self._pattern)
        self._chunks.append(chunk)

    def apply(self, level: float) -> None:
        """Grows in whole chunks while ramping; tops up the last partial chunk once the level holds."""
        want = int(level * MB)
        holding, self._last_level = level == self._last_level, level
        while self._chunks and self.held_bytes > want:
            self._chunks.pop().close()
        while self.held_bytes + self._chunk_bytes <= want:
            self._grow(self._chunk_bytes)
        rest = want - self.held_bytes
        if holding and rest >= mmap.PAGESIZE:
            self._grow(rest - rest % mmap.PAGESIZE)

    def release(self) -> None:
        held = self.held_bytes
        while self._chunks:
            self._chunks.pop().close()
        self._pattern, self._last_level = b"", None
        if held:
            event(log, "memory released", mb=round(held / MB, 1))
