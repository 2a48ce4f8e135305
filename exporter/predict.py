"""Predictive alerts: send a container's sample at once when its trend will reach the limit soon.

The controller scrapes every exporter once a second, so a sample reaches its rules 0-1 s after it
was read, and threshold alerts (exporter/alerts.py) only start once a threshold is crossed. A fast
leak (tens of MB/s toward a 256 MB limit: 40 % to 100 % in a few seconds) leaves no second to lose:
the replacement must be serving before the kernel's OOM killer ends the old container. So the
exporter watches the same kind of trend the rules' `predict()` reads (sgcommon/trend.py): per
container, the least-squares line through its sweep samples of the last `window` seconds; when
that line, lowered by `confidence` standard errors, is above `limit` (percent) `horizon` seconds
after the newest sample, the sample goes to the controller now, as an alert carrying the figure
and the time the line reaches the limit (sgcommon/alert.py, field "p"). The controller's rules
then decide on the alert path at once (rules/default.yml, docs/rules.md); the exporter only makes
sure they see the sample without the scrape's delay, so it may be more eager than the rules.

Called from the collection thread only, once per sweep: O(window) per watched figure and container.
docs/exporter.md ("Predictive alerts") has the settings and the measurements behind the defaults.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exporter.alerts import AlertSender
from exporter.sample import ContainerSample, Sweep
from sgcommon.alert import Prediction
from sgcommon.trend import MIN_SAMPLES, fit_line

METRICS = ("mem", "cpu")  # the figures a trend can be watched on (keys of sgcommon/metricset.py)
COVERAGE = 0.5  # as the rules' predict(): the samples must span at least half the window


@dataclass(frozen=True)
class TrendSettings:
    horizon: float  # seconds ahead of the newest sample; 0 turns predictive alerts off
    window: float  # seconds of samples the line goes through
    limit: float  # percent the line must stay under
    confidence: float  # standard errors below the line that must still be above the limit
    metrics: tuple[str, ...] = ("mem",)


@dataclass
class TrendStats:
    sent: int = 0  # samples offered as predictive alerts


def _figure(sample: ContainerSample, metric: str) -> float:
    return sample.memory_percent if metric == "mem" else sample.cpu_percent


class TrendAlerts:
    """Keeps each container's recent samples and offers the ones whose trend heads for the limit."""

    def __init__(self, alerts: AlertSender, settings: TrendSettings) -> None:
        self.alerts = alerts
        self.settings = settings
        self.stats = TrendStats()
        self._samples: dict[str, deque[ContainerSample]] = {}

    def on_sweep(self, sweep: Sweep) -> None:
        """Takes a fresh sweep's samples; forgets containers that are not in it."""
        seen = set()
        for sample in sweep.containers:
            cid = sample.meta.id
            seen.add(cid)
            kept = self._samples.get(cid)
            if kept is None:
                kept = self._samples[cid] = deque()
            if kept and not sample.ts > kept[-1].ts:  # the clock went back: start this container afresh
                kept.clear()
            kept.append(sample)
            while kept and not kept[0].ts > sample.ts - self.settings.window:
                kept.popleft()
            prediction = self.predict(kept)
            if prediction is not None and self.alerts.offer(sample, predicted=prediction):
                self.stats.sent += 1
        for gone in [c for c in self._samples if c not in seen]:
            del self._samples[gone]

    def predict(self, samples: Sequence[ContainerSample]) -> Prediction | None:
        """trend_prediction over a container's kept samples (oldest first, within the window)."""
        times = [x.ts for x in samples]
        return trend_prediction(times, {m: [_figure(x, m) for x in samples] for m in self.settings.metrics},
                                self.settings)


def trend_prediction(times: Sequence[float], figures: Mapping[str, Sequence[float]],
                     settings: TrendSettings) -> Prediction | None:
    """The first watched figure whose line (minus `confidence` standard errors) is above the limit
    `horizon` s after the newest sample, with the time the line reaches the limit; else None.
    `times` oldest first, all within the window; `figures` by metric key, one value per time."""
    s = settings
    if len(times) < MIN_SAMPLES or times[-1] - times[0] < COVERAGE * s.window:
        return None
    for metric in s.metrics:
        fit = fit_line(times, figures[metric])
        if fit is None:
            continue
        low = fit.value(s.horizon) - s.confidence * fit.se(s.horizon)
        if low > s.limit:
            at = fit.crossing(s.limit)
            if at is not None:
                return Prediction(metric=metric, at=at)
    return None
