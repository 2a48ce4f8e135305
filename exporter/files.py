"""Cheap repeated reads of small kernel files (cgroup, /proc, /sys).

The collection loop reads the same few files for every container once a second. Opening a
file by path walks the directory tree each time; keeping the descriptor open and reading it
again with `pread` at offset 0 makes the kernel regenerate the content without any path
lookup (seq_file restarts at offset 0). A vanished container turns into a FileGone error on
the next read, which the caller counts and handles. A file larger than MAX_BYTES (no file we
read comes close; junk could) is a ValueError, never a growing buffer.
"""
from __future__ import annotations

import errno
import os

_BUFSIZE = 65536
MAX_BYTES = 1 << 20


class FileGone(OSError):
    """The file (or the cgroup / process behind it) no longer exists."""


class KernelFile:
    """One kernel file opened once and re-read on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def read(self) -> str:
        """The file's current content; raises FileGone when it cannot be opened or read."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise FileGone(exc.errno, f"{self.path}: {exc.strerror}") from None
        try:
            data = os.pread(self._fd, _BUFSIZE, 0)
            if len(data) == _BUFSIZE:  # rare: more than one buffer (e.g. many interfaces in net/dev)
                data = self._read_rest(data)
        except OSError as exc:
            self.close()
            raise FileGone(exc.errno, f"{self.path}: {exc.strerror}") from None
        if not data:
            self.close()
            raise FileGone(errno.ESRCH, f"{self.path}: empty read (gone)")
        return data.decode("ascii", "replace")

    def _read_rest(self, first: bytes) -> bytes:
        assert self._fd is not None
        chunks = [first]
        size = len(first)
        while True:
            more = os.pread(self._fd, _BUFSIZE, size)
            if not more:
                return b"".join(chunks)
            chunks.append(more)
            size += len(more)
            if size > MAX_BYTES:
                raise ValueError(f"{self.path}: more than {MAX_BYTES} bytes")

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def __del__(self) -> None:  # descriptors of forgotten containers must not leak
        self.close()


def read_once(path: str) -> str:
    """Reads a file that is read rarely (limits, speed, route table); raises FileGone, or
    ValueError when it is larger than MAX_BYTES."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FileGone(exc.errno, f"{path}: {exc.strerror}") from None
    if len(text) > MAX_BYTES:
        raise ValueError(f"{path}: more than {MAX_BYTES} bytes")
    return text
