"""The series notation of rule tests: `"40+2x30"`, `"60 60 90x3 _"`, `"_x5 stale"`.

It is promtool's expanding notation (https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/),
so a Prometheus user reads it at once:

- `a`: one sample of value a;
- `a+bxn` / `a-bxn`: n+1 samples a, a+b, ..., a+n*b (or decreasing); `axn` is `a+0xn`;
- `_`: no sample at that time; `_xn`: n of them;
- `stale`: the exporter did not answer (node series only; the test file reader checks where).

A series is kept as its segments and walked lazily, never expanded in full: its length is known
before anything is built, so a short text cannot ask for a huge amount of memory (`1x99999999`
is refused by its length, not by running out of memory). Numbers are plain decimals (no `nan`,
`inf`, `1_000` or non-ASCII digits, which Python's float() would take) and every value the series
reaches must be finite.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from itertools import chain, repeat
from dataclasses import dataclass

MAX_SAMPLES = 100_000  # samples in one series (a day of 1 s samples fits)
MAX_TEXT = 1 << 20  # characters of one series text (the test file is at most 1 MiB anyway)
_REPEAT_DIGITS = 9  # `xN` with more digits is over MAX_SAMPLES whatever they are (int() of a huge text is slow)

_NUM = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_UNUM = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_NUMBER_RE = re.compile(_NUM)
_RAMP_RE = re.compile(rf"(?P<a>{_NUM})(?:(?P<op>[+-])(?P<b>{_UNUM}))?x(?P<n>[0-9]+)")
_MISSING_RE = re.compile(r"_(?:x(?P<n>[0-9]+))?")


class NotationError(ValueError):
    """The series text is not valid; the message names the token and why."""


class Stale:
    """The `stale` marker: the exporter did not answer at that time."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "stale"


STALE = Stale()
Point = float | None | Stale  # a value, no sample (None), or the stale marker


@dataclass(frozen=True)
class Segment:
    """`count` samples: `start`, `start + step`, ...; or `count` missing (None) or stale points; or,
    for a run of plain numbers (a recorded series), those `values`."""

    start: Point
    step: float
    count: int
    values: tuple[float, ...] = ()

    def points(self) -> Iterator[Point]:
        """The segment's points, iterated in C (a replay walks tens of thousands of them)."""
        if self.values:
            return iter(self.values)
        if not isinstance(self.start, float) or self.step == 0.0:
            return repeat(self.start, self.count)
        return map(self.start.__add__, map(self.step.__mul__, range(self.count)))  # start + index * step


@dataclass(frozen=True)
class Series:
    """A parsed series: its text and segments, walked lazily."""

    text: str
    segments: tuple[Segment, ...]

    def __len__(self) -> int:
        return sum(segment.count for segment in self.segments)

    def __iter__(self) -> Iterator[Point]:
        return chain.from_iterable(segment.points() for segment in self.segments)

    def expand(self) -> list[Point]:
        """Every point (for tests and small series; the replay walks the series instead)."""
        return list(self)

    @property
    def constant(self) -> float | None:
        """The value of a one-sample series, which a test reads as "this value in every sample"."""
        if len(self.segments) == 1 and self.segments[0].count == 1 and isinstance(self.segments[0].start, float):
            return self.segments[0].start
        return None

    def gaps(self) -> tuple[tuple[int, int, str], ...]:
        """(first index, end index, "_" or "stale") of each run of points that are not values, merged."""
        runs: list[tuple[int, int, str]] = []
        index = 0
        for segment in self.segments:
            end = index + segment.count
            if not isinstance(segment.start, float):
                kind = "_" if segment.start is None else "stale"
                if runs and runs[-1][1] == index and runs[-1][2] == kind:
                    runs[-1] = (runs[-1][0], end, kind)
                else:
                    runs.append((index, end, kind))
            index = end
        return tuple(runs)


def parse_series(text: object, *, max_samples: int = MAX_SAMPLES, stale: bool = True) -> Series:
    """Parses `text`; NotationError says which token is wrong and why.

    stale: whether the `stale` marker is allowed (node series) or not (container series).
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise NotationError(f"a series is a text like \"40+2x30\" or \"60 60 90x3 _\", got {type(text).__name__}")
    if not isinstance(text, str):  # YAML reads `cpu: 50` as a number: one sample
        try:
            value = float(text)
        except OverflowError:  # an int beyond the float range
            value = math.inf
        if not math.isfinite(value):
            raise NotationError("the value is not a finite number")
        return Series(f"{value:g}", (Segment(value, 0.0, 1),))
    if len(text) > MAX_TEXT:
        raise NotationError(f"the series text is too long ({len(text)} characters, at most {MAX_TEXT})")
    segments: list[Segment] = []
    values: list[float] = []  # the current run of plain numbers: one segment, not one per sample
    total = 0
    for position, token in enumerate(text.split(), start=1):
        if _NUMBER_RE.fullmatch(token):
            values.append(_number(token, position, token))
            total += 1
        else:
            if values:
                segments.append(_values(values))
                values = []
            segment = _segment(token, position, stale=stale)
            total += segment.count
            segments.append(segment)
        if total > max_samples:
            raise NotationError(f"the series has more than {max_samples} samples (at token {position} {_quote(token)})")
    if values:
        segments.append(_values(values))
    if not segments:
        raise NotationError("the series is empty (write at least one value, or _ for no sample)")
    return Series(" ".join(text.split()), tuple(segments))


def _values(values: list[float]) -> Segment:
    return Segment(values[0], 0.0, len(values), tuple(values)) if len(values) > 1 else Segment(values[0], 0.0, 1)


def _quote(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")


def _segment(token: str, position: int, *, stale: bool) -> Segment:
    where = f"token {position} {_quote(token)}"
    if token == "stale":
        if not stale:
            raise NotationError(f"{where}: stale is for node series (a node's exporter not answering); "
                                "a container without samples becomes stale by itself (write _)")
        return Segment(STALE, 0.0, 1)
    missing = _MISSING_RE.fullmatch(token)
    if missing:
        count = 1 if missing.group("n") is None else _repeat(missing.group("n"), where, least=1)
        return Segment(None, 0.0, count)
    ramp = _RAMP_RE.fullmatch(token)
    if ramp is None:
        raise NotationError(f"{where}: expected a number, a+bxn, a-bxn, axn, _, _xn"
                            f"{', stale' if stale else ''}")
    start = _number(ramp.group("a"), position, token)
    step = 0.0 if ramp.group("b") is None else _number(ramp.group("b"), position, token)
    if ramp.group("op") == "-":
        step = -step
    repeats = _repeat(ramp.group("n"), where, least=0)
    last = start + repeats * step
    if not math.isfinite(last):
        raise NotationError(f"{where}: the series goes beyond the range of a number")
    return Segment(start, step, repeats + 1)


def _number(text: str, position: int, token: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotationError(f"token {position} {_quote(token)}: {_quote(text)} is not a finite number")
    return value


def _repeat(digits: str, where: str, *, least: int) -> int:
    if len(digits) > _REPEAT_DIGITS:
        raise NotationError(f"{where}: the repeat count is larger than {MAX_SAMPLES}")
    count = int(digits)
    if count < least:
        raise NotationError(f"{where}: the repeat count must be at least {least}")
    return count
