"""Confirming a breach without waiting a whole interval (docs/exporter.md, "Confirming a breach").

The controller's rules fire on the second consecutive sample of a container that meets their
condition (`for: 2`), so with samples one interval apart a breach reached the controller's decision
one interval (1 s) after its first sample. With a confirm delay d > 0, a container whose sweep
sample crosses a threshold is read again d seconds later (`Collector.confirm`: CPU and network as
rates over those d seconds, memory as it is then), and that read decides:

- a **first breach** (the container was in no confirmed breach): the first sample is held. If the
  read confirms it (see `confirms`), both samples go to the alert sender at once (the controller
  sees its two consecutive samples d after the first); otherwise the first sample waits for the
  next sweep, as before: if that sample breaches too, both go to the sender then (one interval
  after the first, as with d = 0); if not, nothing;
- a **new figure in a confirmed breach** (say memory crossing while CPU is already over: a load
  ramping up, scenario 2), or in the sweep sample whose pairing confirms the breach: the sweep
  sample is sent at once, as every breaching sample of a confirmed breach is, and the read is
  sent too when it confirms the new figure and every figure the sweep sample had over is still
  over, so a rule that needs them all gets its second sample d later instead of one interval
  later. A read with one of them back under would reach the controller as a sample between the
  two sweep samples that do meet such a rule, and restart its `for: 2` count (seen on the lab: a
  read whose 0.25 s CPU rate was under 75 delayed the decision by a whole interval), so such a
  read is not sent; the container is read once more d later (rates over 2 d since the sweep,
  less noisy), and that read is sent if they are all over.

What confirms a figure, from measurements on noisy steady loads and ramps (tests/bench/
confirm_noise.py, docs/exporter.md): the read is over the threshold by `margin` points, or, for a
rate (CPU, network), over the threshold and not below the first sample: the load over the d seconds
after the crossing is at least what it averaged over the interval that crossed, so it is not falling
back toward its mean, as a noise peak does; and only after a climb: the sweep sample before the
first one within `margin` points below the threshold (a jump from far below is what noise does).
A memory figure is a level, not a rate over a window: a
level that jumped and holds looks the same d later, so for a first breach only the margin confirms
it; in a confirmed breach a memory level still over its threshold d later confirms it (the other
figures are over already; the lab's memory noise loads have no such container).
While a container stays in a confirmed breach, each breaching sweep sample is sent at once; a sample
below the thresholds ends the breach. d = 0 keeps the old behaviour: every breaching sweep sample is
sent at once.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exporter.alerts import AlertSender, Thresholds
from exporter.sample import ContainerSample, Sweep

CPU, MEMORY, NETWORK = "cpu", "memory", "network"
RATES = frozenset({CPU, NETWORK})  # figures that are rates over the window since the read before


@dataclass
class ConfirmStats:
    confirmed: int = 0  # first breaches confirmed by the read d seconds after the first sample: alerts sent
    confirmed_next_sweep: int = 0  # first breaches confirmed by the next sweep instead: alerts sent then
    cleared: int = 0  # first samples neither read confirmed: nothing sent
    unreadable: int = 0  # the confirming read failed (container gone or file unreadable)
    confirmed_in_breach: int = 0  # figures crossing in a confirmed breach, confirmed (and sent) by the read


def _figures(s: ContainerSample, thresholds: Thresholds) -> dict[str, tuple[float, float]]:
    return {CPU: (s.cpu_percent, thresholds.cpu), MEMORY: (s.memory_percent, thresholds.memory),
            NETWORK: (s.network_percent, thresholds.network)}


def over(s: ContainerSample, thresholds: Thresholds) -> frozenset[str]:
    """The figures of `s` above their thresholds."""
    return frozenset(name for name, (value, limit) in _figures(s, thresholds).items() if value > limit)


def confirms(first: ContainerSample, again: ContainerSample, thresholds: Thresholds, margin: float, *,
             previous: ContainerSample | None = None, figures: Iterable[str] | None = None, in_breach: bool = False) -> bool:
    """Whether the read `again`, taken after `first`, confirms one of `figures` (default: every figure
    `first` breached): over its threshold by `margin` points; or over it after a climb, that is with
    `previous` (the sweep sample before `first`) within `margin` points below the threshold, and, for a
    rate, not below `first` or, for memory in a confirmed breach (`in_breach`), still over it."""
    before, after = _figures(first, thresholds), _figures(again, thresholds)
    earlier = _figures(previous, thresholds) if previous is not None else None
    for name in over(first, thresholds) if figures is None else figures:
        value, limit = after[name]
        if value <= limit:
            continue
        if value > limit + margin:
            return True
        if earlier is None or earlier[name][0] <= limit - margin:  # no climb seen: a jump from far below, or nothing before
            continue
        if (name in RATES and value >= before[name][0]) or (in_breach and name == MEMORY):
            return True
    return False


@dataclass(frozen=True)
class Pending:
    """A confirming read to take."""

    due: float  # monotonic time
    sample: ContainerSample  # the sweep sample that crossed
    previous: ContainerSample | None  # the container's sweep sample before it
    crossed: frozenset[str] | None  # the figures it newly crossed in a confirmed breach; None: a first breach
    again: bool = True  # in a confirmed breach: one more read d later when this one had a figure over back under


class Confirmer:
    """Between the sweep and the alert sender; called only from the collection thread."""

    def __init__(self, alerts: AlertSender, *, delay: float, margin: float = 10.0) -> None:
        self.alerts = alerts
        self.delay = delay
        self.margin = margin
        self.stats = ConfirmStats()
        self._pending: dict[str, Pending] = {}
        self._waiting: dict[str, ContainerSample] = {}  # first samples the fast read did not confirm
        self._breaching: set[str] = set()  # containers in a confirmed breach
        self._last: dict[str, ContainerSample] = {}  # each container's last sweep sample

    def on_sweep(self, sweep: Sweep, now: float) -> None:
        """Offers or holds each sample of a fresh sweep (`now`: monotonic time)."""
        if self.delay <= 0:
            for sample in sweep.containers:
                self.alerts.offer(sample)
            return
        seen = set()
        for sample in sweep.containers:
            cid = sample.meta.id
            seen.add(cid)
            first = self._waiting.pop(cid, None)
            previous = self._last.get(cid)
            self._last[cid] = sample
            figures = over(sample, self.alerts.thresholds)
            crossed = figures - (over(previous, self.alerts.thresholds) if previous is not None else frozenset())
            if not figures:
                self._breaching.discard(cid)
                self._pending.pop(cid, None)
                if first is not None:
                    self.stats.cleared += 1
            elif cid in self._breaching:
                self.alerts.offer(sample)
                if crossed:  # a figure over for the first time in this breach: read again d later
                    self._pending[cid] = Pending(now + self.delay, sample, previous, crossed)
                else:
                    self._pending.pop(cid, None)
            elif first is not None:  # the old pairing: two breaching sweep samples in a row
                self.stats.confirmed_next_sweep += 1
                self._breaching.add(cid)
                self.alerts.offer(first)
                self.alerts.offer(sample)
                if crossed:  # and a figure over for the first time, now in a confirmed breach
                    self._pending[cid] = Pending(now + self.delay, sample, previous, crossed)
            else:  # a first breaching sample (one still pending from a late confirm is replaced)
                self._pending[cid] = Pending(now + self.delay, sample, previous, None)
        for gone in [c for c in self._breaching if c not in seen]:
            self._breaching.discard(gone)
        for gone in [c for c in self._waiting if c not in seen]:
            del self._waiting[gone]
        for gone in [c for c in self._pending if c not in seen]:
            del self._pending[gone]
        for gone in [c for c in self._last if c not in seen]:
            del self._last[gone]

    def next_due(self) -> float | None:
        """The monotonic time of the earliest pending confirmation, None when there is none."""
        return min((p.due for p in self._pending.values()), default=None)

    def run_due(self, now: float, read: Callable[[str], ContainerSample | None]) -> None:
        """Takes every confirming sample that is due and sends the confirmed breaches."""
        for cid in [c for c, p in self._pending.items() if p.due <= now]:
            pending = self._pending.pop(cid)
            first, again = pending.sample, read(cid)
            if pending.crossed is not None:  # a new figure in a confirmed breach: its sweep sample is sent already
                if again is None:
                    self.stats.unreadable += 1
                elif confirms(first, again, self.alerts.thresholds, self.margin, previous=pending.previous,
                              figures=pending.crossed, in_breach=True):
                    if over(first, self.alerts.thresholds) <= over(again, self.alerts.thresholds):
                        self.stats.confirmed_in_breach += 1
                        self.alerts.offer(again)
                    elif pending.again:  # a figure over already dipped in the short window: once more, over 2 d
                        self._pending[cid] = dataclasses.replace(pending, due=pending.due + self.delay, again=False)
                continue
            if again is None:
                self.stats.unreadable += 1
            elif confirms(first, again, self.alerts.thresholds, self.margin, previous=pending.previous):
                self.stats.confirmed += 1
                self._breaching.add(cid)
                self.alerts.offer(first)
                self.alerts.offer(again)
                continue
            self._waiting[cid] = first  # the next sweep decides
