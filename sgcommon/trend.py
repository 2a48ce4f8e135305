"""A least-squares line through a recent window of samples, and where it is heading.

One home for the arithmetic behind the rule language's `predict()` and `predict_se()`
(controller/rules/expr.py), the exporter's predictive alert (exporter/predict.py) and the lab's
scenario 3 timeline (labkit/scenario3.py), so the three agree on what "the trend" is.

Times are taken relative to the newest sample (x = t - t_newest <= 0), so Unix timestamps do not
cost precision; the sums are centred (two passes), so a nearly perfect line does not lose its
tiny residual to cancellation. Pure and O(n): no I/O, no clock. A fit that cannot be made
(fewer than MIN_SAMPLES samples, all at one time, a value that is not a finite number) is None,
never an exception; a result that overflows is left to the caller to check (`math.isfinite`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SAMPLES = 3  # a line through two samples is only their difference, and has no scatter to judge it by


@dataclass(frozen=True, slots=True)
class Fit:
    """y = mean_y + slope * (x - mean_x), x in seconds relative to the newest sample."""

    n: int
    newest: float  # Unix seconds of the newest sample (x = 0)
    span: float  # seconds from the oldest to the newest sample
    mean_x: float  # <= 0
    mean_y: float
    slope: float  # units per second
    sxx: float  # sum of (x - mean_x)^2, > 0
    sse: float  # sum of squared residuals around the line, >= 0

    def value(self, ahead: float) -> float:
        """The line `ahead` seconds after the newest sample."""
        return self.mean_y + self.slope * (ahead - self.mean_x)

    def se(self, ahead: float) -> float:
        """Standard error of `value(ahead)`: how far the line's value there could be off, given
        how much the samples scatter around it (s^2 = sse / (n - 2); the line's own uncertainty,
        not that of one future sample)."""
        variance = self.sse / (self.n - 2)
        return math.sqrt(variance * (1.0 / self.n + (ahead - self.mean_x) ** 2 / self.sxx))

    def crossing(self, level: float) -> float | None:
        """Unix seconds at which the line reaches `level` from below (a past time when it already
        has), None when the line does not rise."""
        if not self.slope > 0:
            return None
        return self.newest + self.mean_x + (level - self.mean_y) / self.slope


def fit_sums(n: int, *, newest: float, oldest: float, base: float, sx: float, sy: float, sxx: float, sxy: float,
             syy: float) -> Fit | None:
    """The line from running sums, for a caller that walks its samples once (the rule engine): x is
    each sample's time minus `newest`, y its value minus `base` (any value near the samples, e.g.
    the newest one, so the sums stay small). Equal to fit_line's to rounding; None as fit_line."""
    if n < MIN_SAMPLES or not newest > oldest:
        return None
    mean_x, mean_y = sx / n, sy / n
    cxx = sxx - sx * mean_x
    cxy = sxy - sx * mean_y
    cyy = syy - sy * mean_y
    if not (cxx > 0 and math.isfinite(cxy) and math.isfinite(cyy)):
        return None
    slope = cxy / cxx
    sse = max(0.0, cyy - slope * cxy)  # cancellation can leave a tiny negative for a perfect line
    fit = Fit(n=n, newest=newest, span=newest - oldest, mean_x=mean_x, mean_y=base + mean_y, slope=slope, sxx=cxx,
              sse=sse)
    return fit if math.isfinite(fit.mean_y) and math.isfinite(sse) else None


def fit_line(times: Sequence[float], values: Sequence[float]) -> Fit | None:
    """The least-squares line through (times[i], values[i]); None when there is none to draw.

    `times` need not be sorted; the newest is the largest. Non-finite inputs give None.
    """
    n = len(times)
    if n < MIN_SAMPLES or len(values) != n:
        return None
    newest = max(times)
    oldest = min(times)
    if not (math.isfinite(newest) and math.isfinite(oldest)) or newest == oldest:
        return None
    xs = [t - newest for t in times]
    total_y = sum(values)  # not fsum: it raises on inf - inf and on overflow
    if not math.isfinite(total_y):  # a NaN or an infinity among the values, or their sum overflows
        return None
    mean_x = sum(xs) / n
    mean_y = total_y / n
    dxs = [x - mean_x for x in xs]
    dys = [y - mean_y for y in values]
    sxx = sum(dx * dx for dx in dxs)
    sxy = sum(dx * dy for dx, dy in zip(dxs, dys, strict=True))
    if not (sxx > 0 and math.isfinite(sxy)):
        return None
    slope = sxy / sxx
    sse = sum((dy - slope * dx) ** 2 for dx, dy in zip(dxs, dys, strict=True))  # the residuals themselves: exact for a near-perfect line
    if not math.isfinite(sse):
        return None
    return Fit(n=n, newest=newest, span=newest - oldest, mean_x=mean_x, mean_y=mean_y, slope=slope, sxx=sxx,
               sse=sse)
