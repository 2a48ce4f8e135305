"""The series notation of rule tests (controller/ruletest/notation.py): promtool's expanding notation.

Examples pin the meaning of each form (promtool's own examples included); hypothesis checks that
any series written from generated segments reads back as the same samples, that the length is
known without expanding, and that arbitrary text gives a Series or NotationError, nothing else.
The example budgets are fixed (max_examples) and derandomized when CI=true; run with
`--hypothesis-show-statistics` to see how many examples each test ran.
"""
from __future__ import annotations

import math
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.ruletest.notation import MAX_SAMPLES, STALE, NotationError, Point, parse_series

CI = os.environ.get("CI") == "true"


def budget(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=CI, database=None if CI else settings().database,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("text", "points"), [
    ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),  # promtool's examples
    (" 1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
    (" 1x4", [1.0] * 5),
    (" 1 _x3 stale", [1.0, None, None, None, STALE]),
    ("40+2x3", [40.0, 42.0, 44.0, 46.0]),
    ("60 60 90x3 _", [60.0, 60.0, 90.0, 90.0, 90.0, 90.0, None]),
    ("90x0", [90.0]),
    ("_", [None]),
    ("1.5e1 .5 5. +3 -0", [15.0, 0.5, 5.0, 3.0, -0.0]),
    ("1e3+1e-3x2", [1000.0, 1000.001, 1000.002]),
    ("1e+3x1", [1000.0, 1000.0]),  # the exponent's sign is not a ramp
    ("  7\n\t8  ", [7.0, 8.0]),
])
def test_each_form_reads_as_promtool_reads_it(text: str, points: list[Point]) -> None:
    series = parse_series(text)
    assert series.expand() == points
    assert len(series) == len(points)


def test_a_yaml_number_is_one_sample() -> None:
    assert parse_series(50).expand() == [50.0]
    assert parse_series(2.5).expand() == [2.5]


def test_runs_of_plain_numbers_are_one_segment_and_gaps_are_merged() -> None:
    series = parse_series("1 2 3 _ _x2 4 5 stale stale")
    assert [s.count for s in series.segments] == [3, 1, 2, 2, 1, 1]
    assert series.gaps() == ((3, 6, "_"), (8, 10, "stale"))
    assert series.constant is None and parse_series("7").constant == 7.0 and parse_series("7x0").constant == 7.0


@pytest.mark.parametrize(("text", "message"), [
    ("", "the series is empty"),
    ("   ", "the series is empty"),
    ("abc", "token 1 'abc': expected a number, a+bxn"),
    ("1 2 nan", "token 3 'nan': expected a number"),
    ("inf", "token 1 'inf': expected a number"),
    ("1_000", "token 1 '1_000': expected a number"),
    ("\u0663", "expected a number"),  # an Arabic-Indic digit, which float() would take
    ("1e999", "token 1 '1e999': '1e999' is not a finite number"),
    ("1e308+1e308x3", "the series goes beyond the range of a number"),
    ("-1e308-1e308x2", "the series goes beyond the range of a number"),
    ("1x99999999999", "the repeat count is larger than 100000"),
    ("1x" + "9" * 5000, "the repeat count is larger than 100000"),  # int() of it would be refused or slow
    ("_x0", "token 1 '_x0': the repeat count must be at least 1"),
    ("1x100000", "more than 100000 samples"),  # 100001 samples
    ("1+x3", "expected a number"),
    ("1+-2x3", "expected a number"),
    ("1X3", "expected a number"),
    ("x3", "expected a number"),
    ("1+2", "expected a number"),
    ("stalex3", "expected a number"),
])
def test_bad_series_say_which_token_and_why(text: str, message: str) -> None:
    with pytest.raises(NotationError, match=None) as caught:
        parse_series(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("value", [True, None, [1, 2], {"a": 1}, float("nan"), float("inf"), 10 ** 400])
def test_values_that_are_not_series_are_refused(value: object) -> None:
    with pytest.raises(NotationError):
        parse_series(value)


def test_stale_is_refused_where_the_caller_does_not_allow_it() -> None:
    with pytest.raises(NotationError, match="stale is for node series"):
        parse_series("1 stale", stale=False)


def test_a_long_text_is_refused_by_its_length_before_anything_is_built() -> None:
    with pytest.raises(NotationError, match="more than 10 samples"):
        parse_series("1 " * 11, max_samples=10)
    assert len(parse_series("1x99999")) == MAX_SAMPLES


def test_a_series_is_walked_lazily() -> None:
    series = parse_series("0+1x99999")
    walk = iter(series)
    assert [next(walk) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert len(series.segments) == 1


# -- hypothesis ---------------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(-10_000, 10_000).map(float),
                    st.decimals(-1000, 1000, places=2, allow_nan=False, allow_infinity=False).map(float))
SEGMENTS = st.one_of(
    st.tuples(st.just("value"), NUMBERS, st.just(0.0), st.just(1)),
    st.tuples(st.just("ramp"), NUMBERS, NUMBERS, st.integers(0, 50)),
    st.tuples(st.just("missing"), st.just(0.0), st.just(0.0), st.integers(1, 20)),
    st.tuples(st.just("stale"), st.just(0.0), st.just(0.0), st.just(1)),
)


def _text(number: float) -> str:
    return repr(number)


def write(segments: list[tuple[str, float, float, int]]) -> tuple[str, list[Point]]:
    """The text of generated segments and the samples it stands for, computed independently."""
    tokens: list[str] = []
    points: list[Point] = []
    for kind, a, b, n in segments:
        if kind == "value":
            tokens.append(_text(a))
            points.append(a)
        elif kind == "ramp":
            sign = "-" if b < 0 or (b == 0 and math.copysign(1, b) < 0) else "+"
            tokens.append(f"{_text(a)}{sign}{_text(abs(b))}x{n}")
            points.extend(a + i * (abs(b) if sign == "+" else -abs(b)) for i in range(n + 1))
        elif kind == "missing":
            tokens.append("_" if n == 1 else f"_x{n}")
            points.extend([None] * n)
        else:
            tokens.append("stale")
            points.append(STALE)
    return " ".join(tokens), points


@budget(400)
@given(st.lists(SEGMENTS, min_size=1, max_size=20))
def test_written_segments_read_back_as_the_same_samples(segments: list[tuple[str, float, float, int]]) -> None:
    text, points = write(segments)
    series = parse_series(text)
    assert len(series) == len(points)
    assert series.expand() == points
    gaps = [(i, kind) for i, p in enumerate(points) if not isinstance(p, float)
            for kind in ("_" if p is None else "stale",)]
    assert [(i, kind) for first, end, kind in series.gaps() for i in range(first, end)] == gaps


@budget(600)
@given(st.lists(st.sampled_from(list("0123456789.+-xe_E stale\t\n")
                                + [" 1 ", " 2.5 ", " -3 ", " _ ", " _x2 ", " stale ", " 4+1x3 ", " 5-2x2 ", " 7x2 ",
                                   "1e999", "x99999999", "nan"]),
                max_size=40).map("".join))
def test_any_text_gives_a_series_of_finite_values_or_a_notation_error(text: str) -> None:
    try:
        series = parse_series(text, max_samples=10_000)
    except NotationError as exc:
        event("refused")
        assert str(exc)
        return
    event("read")
    assert 1 <= len(series) <= 10_000
    assert all(math.isfinite(p) for p in series if isinstance(p, float))
    assert all(isinstance(p, float) or p is None or p is STALE for p in series)


@budget(300)
@given(st.text(max_size=40))
def test_arbitrary_unicode_never_raises_anything_but_notation_error(text: str) -> None:
    try:
        parse_series(text)
    except NotationError:
        pass
