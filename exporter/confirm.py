"""Confirming a breach without waiting a whole interval (docs/exporter.md, "Confirming a breach").

The controller's rules fire on the second consecutive breaching sample of a container (`for: 2`),
so with samples one interval apart a breach reached the controller's decision one interval
(1 s) after its first sample. With a confirm delay d > 0, the first breaching sample of a
container is held, and that one container is read again d seconds later (`Collector.confirm`:
the rate over those d seconds). Two speeds:

- fast: the confirming sample breaches the same threshold by `margin` points: both samples go to
  the alert sender at once (the controller sees its two consecutive samples d after the first);
- otherwise the first sample waits for the next sweep, as before: if that sample breaches too,
  both go to the sender then (one interval after the first, as with d = 0); if not, nothing.

A rate over d seconds is noisier than over one interval, and load noise that lasts about an
interval makes the two reads agree more often than two reads an interval apart do: confirming
every breach after d seconds raised false alerts on a noisy steady load (tests/bench/
confirm_noise.py, docs/exporter.md), the margin keeps the fast path for clear breaches and the
fallback keeps every breach the old pairing would have confirmed. While a container stays in a
confirmed breach, each breaching sweep sample is sent at once; a sample below the thresholds ends
the breach. d = 0 keeps the old behaviour: every breaching sweep sample is sent at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.alerts import AlertSender, Thresholds
from exporter.sample import ContainerSample, Sweep


@dataclass
class ConfirmStats:
    confirmed: int = 0  # breaches confirmed by the read d seconds after the first sample: alerts sent
    confirmed_next_sweep: int = 0  # breaches confirmed by the next sweep instead: alerts sent then
    cleared: int = 0  # first samples neither read confirmed: nothing sent
    unreadable: int = 0  # the confirming read failed (container gone or file unreadable)


def confirms(first: ContainerSample, again: ContainerSample, thresholds: Thresholds, margin: float) -> bool:
    """The confirming sample breaches, by `margin` points, a threshold the first sample breached."""
    pairs = ((first.cpu_percent, again.cpu_percent, thresholds.cpu),
             (first.memory_percent, again.memory_percent, thresholds.memory),
             (first.network_percent, again.network_percent, thresholds.network))
    return any(before > limit and after > limit + margin for before, after, limit in pairs)


class Confirmer:
    """Between the sweep and the alert sender; called only from the collection thread."""

    def __init__(self, alerts: AlertSender, *, delay: float, margin: float = 10.0) -> None:
        self.alerts = alerts
        self.delay = delay
        self.margin = margin
        self.stats = ConfirmStats()
        self._pending: dict[str, tuple[float, ContainerSample]] = {}  # container id -> (due, first sample)
        self._waiting: dict[str, ContainerSample] = {}  # first samples the fast read did not confirm
        self._breaching: set[str] = set()  # containers in a confirmed breach

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
            if not self.alerts.thresholds.breached(sample):
                self._breaching.discard(cid)
                self._pending.pop(cid, None)
                if first is not None:
                    self.stats.cleared += 1
            elif cid in self._breaching:
                self.alerts.offer(sample)
            elif first is not None:  # the old pairing: two breaching sweep samples in a row
                self.stats.confirmed_next_sweep += 1
                self._breaching.add(cid)
                self.alerts.offer(first)
                self.alerts.offer(sample)
            else:  # a first breaching sample (one still pending from a late confirm is replaced)
                self._pending[cid] = (now + self.delay, sample)
        for gone in [c for c in self._breaching if c not in seen]:
            self._breaching.discard(gone)
        for gone in [c for c in self._waiting if c not in seen]:
            del self._waiting[gone]
        for gone in [c for c in self._pending if c not in seen]:
            del self._pending[gone]

    def next_due(self) -> float | None:
        """The monotonic time of the earliest pending confirmation, None when there is none."""
        return min((due for due, _ in self._pending.values()), default=None)

    def run_due(self, now: float, read: Callable[[str], ContainerSample | None]) -> None:
        """Takes every confirming sample that is due and sends the confirmed breaches."""
        for cid in [c for c, (due, _) in self._pending.items() if due <= now]:
            _, first = self._pending.pop(cid)
            again = read(cid)
            if again is None:
                self.stats.unreadable += 1
            elif confirms(first, again, self.alerts.thresholds, self.margin):
                self.stats.confirmed += 1
                self._breaching.add(cid)
                self.alerts.offer(first)
                self.alerts.offer(again)
                continue
            self._waiting[cid] = first  # the next sweep decides
