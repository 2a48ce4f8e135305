"""The least-squares line behind predict(), the exporter's predictive alert and scenario 3's timeline."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgcommon.trend import fit_line


def test_a_straight_line_is_fitted_exactly_with_no_standard_error() -> None:
    fit = fit_line([100.0, 101.0, 102.0, 103.0], [40.0, 42.0, 44.0, 46.0])
    assert fit is not None
    assert fit.slope == pytest.approx(2.0) and fit.value(0) == pytest.approx(46.0) and fit.value(10) == pytest.approx(66.0)
    assert fit.se(10) == pytest.approx(0.0, abs=1e-9) and (fit.n, fit.span, fit.newest) == (4, 3.0, 103.0)


def test_unix_timestamps_cost_no_precision() -> None:
    t0 = 1_800_000_000.0
    fit = fit_line([t0 + 0.001 * i for i in range(5)], [1.0 + 0.002 * i for i in range(5)])
    assert fit is not None and fit.slope == pytest.approx(2.0, rel=1e-6) and fit.sse == pytest.approx(0.0, abs=1e-12)


def test_the_standard_error_follows_the_textbook_formula() -> None:
    times, values = [0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0, 4.0]
    fit = fit_line(times, values)
    assert fit is not None
    # slope 0.8, intercept at x=-4: 1.4; residuals -0.4, 0.8, -1.0, 1.2, -0.6 -> sse 3.6; s^2 = 1.2
    assert fit.slope == pytest.approx(0.8) and fit.sse == pytest.approx(3.6)
    # at 2 s after the newest sample: x = 2, mean x = -2, sxx = 10 -> se^2 = 1.2 * (1/5 + 16/10)
    assert fit.se(2.0) == pytest.approx(math.sqrt(1.2 * 1.8))


def test_the_crossing_is_where_the_line_reaches_the_level_and_none_for_a_flat_or_falling_line() -> None:
    rising = fit_line([0.0, 1.0, 2.0], [50.0, 55.0, 60.0])
    assert rising is not None and rising.crossing(80.0) == pytest.approx(6.0) and rising.crossing(40.0) == pytest.approx(-2.0)
    for values in ([50.0, 50.0, 50.0], [60.0, 55.0, 50.0]):
        fit = fit_line([0.0, 1.0, 2.0], values)
        assert fit is not None and fit.crossing(80.0) is None


@pytest.mark.parametrize(("times", "values"), [
    ([0.0, 1.0], [1.0, 2.0]),  # two samples: no scatter to judge the line by
    ([5.0, 5.0, 5.0], [1.0, 2.0, 3.0]),  # all at one time
    ([0.0, 1.0, 2.0], [1.0, math.nan, 3.0]),
    ([0.0, 1.0, 2.0], [1.0, math.inf, 3.0]),
    ([0.0, 1.0, 2.0], [math.inf, 1.0, -math.inf]),
    ([0.0, math.nan, 2.0], [1.0, 2.0, 3.0]),
    ([0.0, 1.0, 2.0], [1e308, 1e308, 1e308]),  # the sum overflows
    ([0.0, 1.0, 2.0], [1.0, 2.0]),  # mismatched lengths
    ([0.0, 1.3e-205, 5e-324], [0.0, 0.0, 0.0]),  # distinct, but their spread squares to 0
])
def test_no_line_is_drawn_through_what_cannot_carry_one(times: list[float], values: list[float]) -> None:
    assert fit_line(times, values) is None


# Times are sample times in seconds, at the clock's 1 us resolution: times apart by less than a
# float can square (5e-324 and 1e-205 s) are the same time to the fit, which then draws no line.
TIMES = st.integers(0, 1_000_000_000).map(lambda us: us / 1e6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TIMES, st.floats(-1e6, 1e6)), min_size=3, max_size=50, unique_by=lambda p: p[0]))
def test_the_fit_never_raises_and_its_figures_are_finite_and_order_free(points: list[tuple[float, float]]) -> None:
    fit = fit_line([t for t, _ in points], [v for _, v in points])
    again = fit_line([t for t, _ in reversed(points)], [v for _, v in reversed(points)])
    assert fit is not None and again is not None
    assert math.isfinite(fit.value(10.0)) and math.isfinite(fit.se(10.0)) and fit.sse >= 0
    assert fit.slope == pytest.approx(again.slope, rel=1e-6, abs=1e-6)
