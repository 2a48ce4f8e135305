"""Following a fast memory climb between sweeps: sub-second samples of a leak, sent as it happens.

A leak of 30 MiB/s toward a 256 MiB limit goes from 8 % to 100 % in 8 s. A migration needs about
5 s from the rule's decision until Swarm stops the old task (about 2 s until the replacement serves,
then about 3 s that are Swarm's own: docs/fast-recovery.md), so the decision must come within
2-3 s of the leak's start. One sample a second gives the rules two or three points of the climb by
then, and the line through them is not enough to act on (docs/rules.md, "Trends"). Memory, unlike
CPU, is a level and not a rate: a read 0.25 s after another is as exact as one a second later.

So, per container: when a sweep sample's memory is `rate` points a second or more above the
previous sweep's, the container is read again every `interval` seconds until the next sweep (one
container's files, as the confirming read of exporter/confirm.py). The run goes on while every read
keeps climbing at `rate` or more (the next sweep's sample continues it too); the first one that
does not ends it. Once the run holds `reads` such climbs in a row after its first sample, and the
line through its samples, lowered by `confidence` standard errors, is above `limit` percent
`horizon` seconds after the newest one (the exporter's predictive alert settings), every sample of
the run not sent yet goes to the controller as a predictive alert, oldest first, and so does each
further one while the run lasts. The controller's fast-leak rule (rules/default.yml) then draws its
line through these samples.

Why the run must climb `reads` times before anything is sent: a noisy load's memory jumps to a new
level in one step (an allocation) and then holds it, so its run ends at the first read after the
jump, and it sends nothing; a leak keeps climbing. Called from the collection thread only.
docs/exporter.md ("Following a fast climb") has the settings and the measurements behind them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.alerts import AlertSender
from exporter.sample import ContainerSample, Sweep
from sgcommon.alert import Prediction
from sgcommon.trend import fit_line


@dataclass(frozen=True)
class FollowSettings:
    interval: float  # seconds between two reads of a followed container; 0 turns following off
    rate: float  # points of memory_percent a second the climb must keep up
    reads: int  # climbs in a row after the run's first sample before its trend is judged
    horizon: float  # as the predictive alert (exporter/predict.py): seconds ahead of the newest sample
    limit: float  # percent the line must be above `horizon` seconds ahead
    confidence: float  # standard errors below the line
    window: float = 2.0  # seconds of the run kept: the line goes through these


@dataclass
class FollowStats:
    started: int = 0  # runs started by a sweep sample that climbed fast
    reads: int = 0  # extra reads between sweeps
    sent: int = 0  # samples offered to the controller as predictive alerts


@dataclass
class _Run:
    samples: list[ContainerSample]
    due: float  # monotonic time of the next read
    climbs: int = 0  # climbs in a row after the first sample
    sent: int = 0  # samples of the run offered so far, counted from its first (dropped ones included)
    dropped: int = 0  # samples let go from the front of `samples` (older than the window)


def climbs(before: ContainerSample, after: ContainerSample, rate: float) -> bool:
    """`after`'s memory is at least `rate` points a second above `before`'s."""
    dt = after.ts - before.ts
    return dt > 0 and after.memory_percent - before.memory_percent >= rate * dt


def judge(samples: list[ContainerSample], s: FollowSettings) -> Prediction | None:
    """The predictive alert's test on the run's samples: the line minus `confidence` standard errors above
    `limit` `horizon` seconds after the newest sample; the prediction (the time the line reaches the
    limit) or None."""
    fit = fit_line([x.ts for x in samples], [x.memory_percent for x in samples])
    if fit is None:
        return None
    if not fit.value(s.horizon) - s.confidence * fit.se(s.horizon) > s.limit:
        return None
    at = fit.crossing(s.limit)
    return None if at is None else Prediction(metric="mem", at=at)


class Follower:
    """Between the sweep and the alert sender, beside exporter.confirm; collection thread only."""

    def __init__(self, alerts: AlertSender, settings: FollowSettings) -> None:
        self.alerts = alerts
        self.settings = settings
        self.stats = FollowStats()
        self._last: dict[str, ContainerSample] = {}  # each container's previous sweep sample
        self._runs: dict[str, _Run] = {}

    def on_sweep(self, sweep: Sweep, now: float) -> None:
        """Starts, continues or ends each container's run with its fresh sweep sample (`now`: monotonic)."""
        seen = set()
        for sample in sweep.containers:
            cid = sample.meta.id
            seen.add(cid)
            before = self._last.get(cid)
            self._last[cid] = sample
            run = self._runs.get(cid)
            if run is not None:
                if climbs(run.samples[-1], sample, self.settings.rate):
                    run.due = now + self.settings.interval
                    self._extend(run, sample)
                    continue
                del self._runs[cid]
            if before is not None and climbs(before, sample, self.settings.rate):
                self._runs[cid] = _Run(samples=[sample], due=now + self.settings.interval)
                self.stats.started += 1
        for gone in [c for c in self._last if c not in seen]:
            del self._last[gone]
            self._runs.pop(gone, None)

    def next_due(self) -> float | None:
        """The monotonic time of the earliest read due, None when no container is followed."""
        return min((run.due for run in self._runs.values()), default=None)

    def run_due(self, now: float, read: Callable[[str], ContainerSample | None]) -> None:
        """Reads every followed container that is due; a read that does not climb (or fails) ends its run."""
        for cid in [c for c, run in self._runs.items() if run.due <= now]:
            run = self._runs[cid]
            again = read(cid)
            self.stats.reads += 1
            if again is None or not climbs(run.samples[-1], again, self.settings.rate):
                del self._runs[cid]
                continue
            run.due = now + self.settings.interval
            self._extend(run, again)

    def _extend(self, run: _Run, sample: ContainerSample) -> None:
        run.samples.append(sample)
        run.climbs += 1
        while run.samples and not run.samples[0].ts > sample.ts - self.settings.window:
            run.samples.pop(0)
            run.dropped += 1
        if run.climbs < self.settings.reads:
            return
        prediction = judge(run.samples, self.settings)
        if prediction is None:
            return
        for i in range(max(run.sent - run.dropped, 0), len(run.samples)):
            if self.alerts.offer(run.samples[i], predicted=prediction):
                self.stats.sent += 1
        run.sent = run.dropped + len(run.samples)
