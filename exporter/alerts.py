"""Instant alerts to the controller (docs/exporter.md, docs/metrics.md): the fast path of the whole system.

The collection loop only calls `AlertSender.offer(sample)`, which checks the thresholds and
puts a breaching sample on a small bounded queue: it never waits on the network. One sender
thread POSTs `{controller}/alert` over one keep-alive session (no TCP handshake per alert) with a 1 s timeout
and one retry after 100 ms, stamping T1 at each attempt; T0 is the breaching sample's time.
At most one alert per container per interval; a full queue drops the new alert and counts it.
A predictive alert (exporter/predict.py) is a sample below every threshold that is offered with
its Prediction; it goes out the same way, with the optional "p" field (sgcommon/alert.py). A
controller that predates the field answers 400 "unknown field(s) p": the alert is sent again at
once without it, and so is every later one (logged once).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from exporter.sample import ContainerSample
from sgcommon.alert import Alert, Prediction, encode_alert
from sgcommon.jsonlog import OnceLogger, event, get_logger

log = get_logger("swarmguard.exporter.alerts")


@dataclass(frozen=True)
class Thresholds:
    """Alert when any figure is above its threshold (defaults: the spec's lowest rule thresholds)."""

    cpu: float = 75.0
    memory: float = 80.0
    network: float = 65.0

    def breached(self, s: ContainerSample) -> bool:
        return s.cpu_percent > self.cpu or s.memory_percent > self.memory or s.network_percent > self.network


def to_alert(s: ContainerSample, *, t1: float, predicted: Prediction | None = None) -> Alert:
    return Alert(
        predicted=predicted,
        t0=s.ts,
        t1=t1,
        node=s.node,
        container_id=s.meta.id,
        service=s.meta.service,
        task_id=s.meta.task_id,
        metrics={
            "cpu": s.cpu_percent,
            "mem": s.memory_percent,
            "mem_mb": s.memory_mb,
            "net": s.network_percent,
            "net_rx": s.rx_mbps,
            "net_tx": s.tx_mbps,
        },
    )


@dataclass
class AlertStats:
    offered: int = 0  # samples above a threshold
    sent: int = 0  # alerts the controller accepted (2xx)
    failed: int = 0  # alerts given up after the retry
    dropped: int = 0  # alerts not queued: queue full or closing
    predicted: int = 0  # predictive alerts queued (below every threshold, sent for a trend)
    last_delay: float = 0.0  # T1 - T0 of the last accepted alert, seconds


_STOP = object()


class AlertSender:
    """Threshold check plus one sender thread; `offer` is safe to call from the collection loop."""

    def __init__(
        self,
        controller_url: str,
        *,
        token: str | None,
        thresholds: Thresholds,
        min_gap: float,
        queue_size: int = 64,
        timeout: float = 1.0,
        retry_delay: float = 0.1,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = controller_url.rstrip("/") + "/alert"
        self.thresholds = thresholds
        self.stats = AlertStats()
        self._min_gap = min_gap
        self._timeout = timeout
        self._retry_delay = retry_delay
        self._clock = clock
        self._session = session or requests.Session()
        self._session.headers["Content-Type"] = "application/json"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._last_t0: dict[str, float] = {}
        self._once = OnceLogger(log)
        self._with_prediction = True  # False once the controller refused the "p" field (an older one)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)
        self._thread.start()

    def offer(self, s: ContainerSample, *, predicted: Prediction | None = None) -> bool:
        """Queues an alert if `s` breaches a threshold (or comes with a prediction) and its container
        had none this interval."""
        if self._closed or (predicted is None and not self.thresholds.breached(s)):
            return False
        self.stats.offered += 1
        last = self._last_t0.get(s.meta.id)
        if last is not None and s.ts - last < self._min_gap:
            return False
        try:
            self._queue.put_nowait((s, predicted))
        except queue.Full:
            self.stats.dropped += 1
            self._once.warn("alert-queue", "alert queue full, alert dropped", container_id=s.meta.id)
            return False
        self._last_t0[s.meta.id] = s.ts
        if predicted is not None:
            self.stats.predicted += 1
        if len(self._last_t0) > 4096:
            self._forget_old(s.ts)
        return True

    def close(self, timeout: float = 3.0) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._session.close()

    def _forget_old(self, now: float) -> None:
        for cid in [c for c, t0 in self._last_t0.items() if now - t0 > 60 * self._min_gap]:
            del self._last_t0[cid]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, tuple)
            try:
                self._deliver(*item)
            except Exception as exc:  # a bug must not kill the only sender thread
                self.stats.failed += 1
                event(log, "alert sender error", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")

    def _deliver(self, s: ContainerSample, predicted: Prediction | None = None) -> None:
        error = ""
        attempt = 0
        while attempt < 2:
            attempt += 1
            t1 = self._clock()
            with_prediction = predicted is not None and self._with_prediction
            body = encode_alert(to_alert(s, t1=t1, predicted=predicted), with_prediction=with_prediction)
            try:
                response = self._session.post(self.url, data=body, timeout=self._timeout)
            except requests.RequestException as exc:
                error = type(exc).__name__
            else:
                if 200 <= response.status_code < 300:
                    self._accepted(s, t1)
                    return
                error = f"HTTP {response.status_code}: {response.text[:120]}"
                if with_prediction and _refuses_prediction(response):
                    self._with_prediction = False  # an older controller: the same alert again, without "p"
                    self._once.warn("prediction-field", "the controller does not take the predicted-crossing "
                                    "field (an older version): alerts go without it", url=self.url)
                    attempt -= 1
                    continue
                if response.status_code < 500:  # a bad token or payload: retrying cannot help
                    break
            if attempt == 1:
                time.sleep(self._retry_delay)
        self.stats.failed += 1
        self._once.warn("controller", "alert not delivered", url=self.url, container_id=s.meta.id, error=error)

    def _accepted(self, s: ContainerSample, t1: float) -> None:
        self.stats.sent += 1
        self.stats.last_delay = t1 - s.ts
        self._once.clear("controller", "alerts delivered again", url=self.url)
        event(log, "alert sent", level=logging.DEBUG, container_id=s.meta.id, service=s.meta.service, t0=s.ts, t1=t1,
              cpu=round(s.cpu_percent, 1), mem=round(s.memory_percent, 1), net=round(s.network_percent, 1))


def _refuses_prediction(response: requests.Response) -> bool:
    """The 400 a controller from before the "p" field gives an alert that has it."""
    return response.status_code == 400 and "unknown field" in response.text and " p" in response.text
