"""Cheap repeated reads of small kernel files (cgroup, /proc, /sys).

The collection loop reads the same few files for every container once a second. Opening a
file by path walks the directory tree each time; keeping the descriptor open and reading it
again with `pread` at offset 0 makes the kernel regenerate the content without any path
lookup (seq_file restarts at offset 0). A vanished container turns into a FileGone error on
the next read, which the caller counts and handles.
"""
from __future__ import annotations

import errno
import os

_BUFSIZE = 65536


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
        except OSError as exc:
            self.close()
            raise FileGone(exc.errno, f"{self.path}: {exc.strerror}") from None
        if not data:
            self.close()
            raise FileGone(errno.ESRCH, f"{self.path}: empty read (gone)")
        return data.decode("ascii", "replace")

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def __del__(self) -> None:  # descriptors of forgotten containers must not leak
        self.close()


def read_once(path: str) -> str:
    """Reads a file that is read rarely (limits, speed, route table); raises FileGone."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise FileGone(exc.errno, f"{path}: {exc.strerror}") from None
