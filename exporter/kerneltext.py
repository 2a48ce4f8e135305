"""The numbers in kernel files, parsed strictly: one grammar for every cgroup, /proc and /sys value.

The kernel writes unsigned 64-bit counters as ASCII decimal. Python's `int()` would also take
signs, spaces, underscores and other scripts' digits, and a value with hundreds of digits would
later overflow a float; here anything but 1-20 ASCII digits up to 2^64 - 1 is a ValueError that
names the file, which the collector counts as a `parse` error of that container (or of the node).
"""
from __future__ import annotations

import re

U64_MAX = 2**64 - 1
_SIGNED = re.compile(r"-?[0-9]{1,20}")
_SHOWN = 40


def _show(text: str) -> str:
    return repr(text[:_SHOWN])


def counter(text: str, where: str) -> int:
    """An unsigned 64-bit value (surrounding whitespace allowed, as the kernel ends lines with \\n)."""
    stripped = text.strip()
    # isascii() + isdigit() is exactly [0-9]+ (and several times faster than the regex on this hot path)
    if not (0 < len(stripped) <= 20 and stripped.isascii() and stripped.isdigit()):
        raise ValueError(f"{where}: expected an unsigned integer, got {_show(stripped)}")
    value = int(stripped)
    if value > U64_MAX:
        raise ValueError(f"{where}: {stripped[:24]} is larger than a 64-bit counter")
    return value


def signed(text: str, where: str) -> int:
    """A signed value of at most 20 digits (link speed is -1 when unknown)."""
    stripped = text.strip()
    if not _SIGNED.fullmatch(stripped):
        raise ValueError(f"{where}: expected an integer, got {_show(stripped)}")
    return int(stripped)
