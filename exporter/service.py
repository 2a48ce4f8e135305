"""The running exporter: the collection loop and its outputs, wired together.

One thread ticks every `interval` on a fixed schedule (a late tick skips to the next slot and
counts an "overrun" rather than drifting). Each tick reads one sweep, then hands it, in order
of urgency, to the alert path (exporter.follow, exporter.predict's trends, exporter.confirm, then
the sender's queue), the latest-sweep slot
that /metrics reads, and the InfluxDB buffer (queue only): nothing in the loop waits on the
network. Between ticks the same thread takes the confirming samples and the reads of followed
containers (a fast memory climb) that are due.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import generate_latest

from exporter.alerts import AlertSender
from exporter.collect import Collector
from exporter.confirm import Confirmer
from exporter.discovery import Inventory
from exporter.follow import Follower, FollowSettings
from exporter.lineproto import sweep_lines
from exporter.metrics import CONTENT_TYPE, SelfMetrics, StatsCollector, SweepText
from exporter.predict import TrendAlerts, TrendSettings
from exporter.sample import ContainerSample, Sweep
from exporter.summary import SUMMARY_PATH, SweepSummary
from sgcommon.influx import InfluxWriter
from sgcommon.jsonlog import event, get_logger
from sgcommon.version import register_build_info

log = get_logger("swarmguard.exporter.service")


class Exporter:
    """Owns the latest sweep and the loop; outputs are optional (None: disabled)."""

    def __init__(
        self,
        collector: Collector,
        inventory: Inventory,
        *,
        interval: float,
        alerts: AlertSender | None = None,
        writer: InfluxWriter | None = None,
        self_metrics: SelfMetrics | None = None,
        confirm_delay: float = 0.0,
        confirm_margin: float = 10.0,
        trend: TrendSettings | None = None,
        follow: FollowSettings | None = None,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collector = collector
        self.inventory = inventory
        self.interval = interval
        self.alerts = alerts
        self.confirmer = Confirmer(alerts, delay=confirm_delay, margin=confirm_margin) if alerts is not None else None
        self.trends = (TrendAlerts(alerts, trend) if alerts is not None and trend is not None and trend.horizon > 0
                       and trend.metrics else None)
        self.follower = (Follower(alerts, follow) if alerts is not None and follow is not None and follow.interval > 0
                         else None)
        self.writer = writer
        self.self_metrics = self_metrics or SelfMetrics()
        self.registry = self.self_metrics.registry  # the exporter's own figures; the sweep is rendered apart
        self.registry.register(StatsCollector(self._stats))
        register_build_info(self.registry, "exporter")
        self.sweep_text = SweepText()
        self.sweep_summary = SweepSummary()
        self.latest: Sweep | None = None
        self.last_tick = 0.0  # monotonic time of the last finished tick
        self._mono = mono
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="collect", daemon=True)

    def tick(self) -> Sweep:
        sweep = self.collector.sweep(self.inventory.snapshot(), self.inventory.node)
        if self.follower is not None:  # first: a followed run's older reads must reach the sender before this sweep's
            self.follower.on_sweep(sweep, self._mono())
        if self.trends is not None:
            self.trends.on_sweep(sweep)
        if self.confirmer is not None:
            self.confirmer.on_sweep(sweep, self._mono())
        self.latest = sweep
        self.self_metrics.duration.observe(sweep.duration)
        if self.writer is not None:
            self.writer.write(sweep_lines(sweep, self.writer.precision))
        self.last_tick = self._mono()
        return sweep

    def start(self) -> Exporter:
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def confirm_due(self) -> None:
        """Takes the confirming samples and the reads of followed containers that are due (collection thread only)."""
        def read(cid: str) -> ContainerSample | None:
            return self.collector.confirm(cid, self.inventory.node)

        if self.follower is not None:
            self.follower.run_due(self._mono(), read)
        if self.confirmer is not None:
            self.confirmer.run_due(self._mono(), read)

    def next_due(self) -> float | None:
        """The monotonic time of the earliest read due between sweeps, None when there is none."""
        dues = [d for d in (self.confirmer.next_due() if self.confirmer is not None else None,
                            self.follower.next_due() if self.follower is not None else None) if d is not None]
        return min(dues, default=None)

    def exposition(self) -> bytes:
        """The /metrics body: the latest sweep (rendered once per sweep), then the exporter's own figures."""
        return self.sweep_text.render(self.latest) + generate_latest(self.registry)

    def summary(self) -> bytes:
        """The /v1/samples body: the latest sweep's figures for the controller (exporter/summary.py)."""
        return self.sweep_summary.render(self.latest, self.inventory.node)

    def healthy(self) -> bool:
        return self.last_tick > 0 and self._mono() - self.last_tick < 3 * self.interval + 1

    def _loop(self) -> None:
        next_at = self._mono()
        while not self._stop.is_set():
            self.self_metrics.tick_lag.observe(max(self._mono() - next_at, 0.0))  # the schedule kept, or not
            try:
                self.tick()
            except Exception as exc:  # a bug must not stop collection: count it, log it, go on
                self.self_metrics.error("internal")
                event(log, "sweep failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            next_at += self.interval
            now = self._mono()
            if now > next_at:
                skipped = int((now - next_at) // self.interval) + 1
                self.self_metrics.errors.labels("overrun").inc(skipped)
                next_at += skipped * self.interval
            while not self._stop.is_set():  # confirming samples and follow reads due before the next tick
                due = self.next_due()
                if due is None or due >= next_at:
                    break
                if self._stop.wait(max(due - self._mono(), 0.0)):
                    return
                try:
                    self.confirm_due()
                except Exception as exc:  # as for a sweep: count, log, go on
                    self.self_metrics.error("internal")
                    event(log, "confirming read failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(next_at - self._mono(), 0.0))

    def _stats(self) -> dict[str, tuple[str, str, float]]:
        out: dict[str, tuple[str, str, float]] = {
            "swarmguard_exporter_containers": ("gauge", "Containers known from the engine.", len(self.inventory.snapshot())),
        }
        if self.alerts is not None:
            a = self.alerts.stats
            out.update({
                "swarmguard_exporter_alerts_sent": ("counter", "Alerts the controller accepted.", a.sent),
                "swarmguard_exporter_alerts_failed": ("counter", "Alerts given up after one retry.", a.failed),
                "swarmguard_exporter_alerts_dropped": ("counter", "Alerts dropped: the send queue was full.", a.dropped),
                "swarmguard_exporter_alert_delay_seconds": ("gauge", "T1 - T0 of the last accepted alert.", a.last_delay),
                "swarmguard_exporter_alerts_predicted": ("counter", "Predictive alerts queued: a trend heading for the limit.",
                                                         a.predicted),
            })
        if self.confirmer is not None and self.confirmer.delay > 0:
            c = self.confirmer.stats
            out.update({
                "swarmguard_exporter_breaches_confirmed": ("counter",
                                                           "Breaches confirmed by the read confirm_delay after the first sample.",
                                                           c.confirmed),
                "swarmguard_exporter_breaches_confirmed_next_sweep": ("counter", "Breaches confirmed by the next sweep instead.",
                                                                      c.confirmed_next_sweep),
                "swarmguard_exporter_breaches_cleared": ("counter", "First breaching samples neither read confirmed.", c.cleared),
                "swarmguard_exporter_breaches_confirmed_in_breach": ("counter", "Figures crossing in a confirmed breach, "
                                                                     "confirmed and sent by the read confirm_delay after.",
                                                                     c.confirmed_in_breach),
            })
        if self.follower is not None:
            f = self.follower.stats
            out.update({
                "swarmguard_exporter_follow_started": ("counter", "Fast memory climbs followed between sweeps.", f.started),
                "swarmguard_exporter_follow_reads": ("counter", "Reads of followed containers between sweeps.", f.reads),
                "swarmguard_exporter_follow_sent": ("counter", "Samples of a followed climb sent as predictive alerts.",
                                                    f.sent),
            })
        if self.writer is not None:
            w = self.writer.stats
            out.update({
                "swarmguard_exporter_influx_written_lines": ("counter", "Lines InfluxDB accepted.", w.written),
                "swarmguard_exporter_influx_dropped_lines": ("counter", "Lines dropped, oldest first, while InfluxDB was unreachable.",
                                                             w.dropped),
                "swarmguard_exporter_influx_failed_batches": ("counter", "InfluxDB batch writes that failed and are retried.",
                                                              w.failed_batches),
                "swarmguard_exporter_influx_rejected_batches": ("counter", "Batches InfluxDB refused with a 4xx: dropped, not retried.",
                                                                w.rejected_batches),
                "swarmguard_exporter_influx_rejected_lines": ("counter", "Lines in the batches InfluxDB refused with a 4xx.",
                                                              w.rejected_lines),
                "swarmguard_exporter_influx_pending_lines": ("gauge", "Lines waiting for the next batch.", self.writer.pending()),
            })
        return out


def make_http_server(exporter: Exporter, address: str, port: int) -> ThreadingHTTPServer:
    """GET /metrics (Prometheus text), GET /v1/samples (the controller's summary) and GET /healthz
    (200 while the loop ticks, else 503)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            return

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE, exporter.exposition())
            elif path == SUMMARY_PATH:
                self._send(200, "application/json", exporter.summary())
            elif path == "/healthz":
                ok = exporter.healthy()
                sweep = exporter.latest
                body = {
                    "status": "ok" if ok else "stale",
                    "node": exporter.inventory.node,
                    "containers": len(sweep.containers) if sweep else 0,
                }
                self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics, /v1/samples or /healthz\n")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    return server
