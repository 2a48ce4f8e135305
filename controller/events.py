"""Where every finished action ends up: /events, InfluxDB, Prometheus metrics.

The executor calls `EventLog.record` once per action (`on_record`); it has already logged the record
as its one JSON line ("action finished"), so this does not log it again. Nothing here blocks on the
network: the InfluxDB write goes to a `LineSink`, which the runtime backs with the project's bounded
non-blocking writer. The line-protocol text is built by a pure function tested with exact strings.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controller.model import ActionRecord
from sgcommon.jsonlog import event, get_logger
from sgcommon.lineproto import line

log = get_logger("swarmguard.controller.events")

MEASUREMENT = "recovery_events"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SCRAPE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ControllerMetrics:
    """The controller's own Prometheus metrics, on the registry it serves at /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.actions = Counter("swarmguard_controller_actions", "Actions finished, by type and result",
                               ["action", "result"], registry=registry)
        self.alerts = Counter("swarmguard_controller_alerts", "Alerts received, by outcome",
                              ["outcome"], registry=registry)
        self.decisions = Counter("swarmguard_controller_decisions", "Decisions handed to the executor, by its verdict "
                                 "(accepted, dry_run, busy, rate_limited, over_budget, refused)", ["verdict"],
                                 registry=registry)
        self.alert_latency = Histogram("swarmguard_controller_alert_latency_seconds",
                                       "Alert latency T2-T1 (exporter send to controller receive)",
                                       buckets=_LATENCY_BUCKETS, registry=registry)
        self.decision_latency = Histogram("swarmguard_controller_decision_latency_seconds",
                                          "Decision latency T3-T2 of alerts (received to decision made)",
                                          buckets=_LATENCY_BUCKETS, registry=registry)
        self.evaluation = Histogram("swarmguard_controller_evaluation_seconds",
                                    "Time of one evaluation (snapshot + rules), by kind: alert, cycle, service",
                                    ["kind"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.scrape_duration = Histogram("swarmguard_controller_scrape_duration_seconds",
                                         "Time to scrape one exporter", buckets=_SCRAPE_BUCKETS,
                                         registry=registry)
        self.scrape_round = Histogram("swarmguard_controller_scrape_round_seconds",
                                      "Time of one scrape round over every exporter", buckets=_SCRAPE_BUCKETS,
                                      registry=registry)
        self.exporters_up = Gauge("swarmguard_controller_exporters_up", "Exporters that answered the last round",
                                  registry=registry)
        self.exporters_known = Gauge("swarmguard_controller_exporters", "Exporters scraped in the last round",
                                     registry=registry)


class LineSink(Protocol):
    """Takes line-protocol lines in its `precision` without blocking (sgcommon.influx.InfluxWriter)."""

    precision: str

    def write(self, points: Iterable[str]) -> None: ...


def mttr_seconds(record: ActionRecord) -> float | None:
    """T5-T0, or T6-T0 when the old task's end came later (migrate); None without T0."""
    t = record.timeline
    ends = [x for x in (t.t5, t.t6) if x is not None]
    if t.t0 is None or not ends:
        return None
    return max(ends) - t.t0


def record_fields(record: ActionRecord) -> dict[str, float | str]:
    t = record.timeline
    fields: dict[str, float | str] = {k: float(v) for k, v in t.as_dict().items() if v is not None}
    mttr = mttr_seconds(record)
    if mttr is not None:
        fields["mttr_seconds"] = mttr
    if t.t1 is not None and t.t2 is not None:
        fields["alert_latency"] = t.t2 - t.t1
    if t.t2 is not None and t.t3 is not None:
        fields["decision_latency"] = t.t3 - t.t2
    if record.node_from:
        fields["node_from"] = record.node_from
    if record.node_to:
        fields["node_to"] = record.node_to
    return fields


def to_line(record: ActionRecord, *, at: float, precision: str = "ms") -> str:
    """One `recovery_events` point; `at` (Unix seconds) is its timestamp in `precision` units."""
    tags = {"action": record.action, "result": record.result.value, "rule": record.rule, "service": record.service}
    fields = list(record_fields(record).items()) or [("recorded", 1.0)]
    return line(MEASUREMENT, sorted(tags.items()), fields, at, precision)


def _last_time(record: ActionRecord) -> float | None:
    times = [v for v in record.timeline.as_dict().values() if v is not None]
    return max(times) if times else None


class EventLog:
    """Keeps the last `keep` records (newest first on read) and publishes each one."""

    def __init__(self, metrics: ControllerMetrics, *, keep: int = 500, sink: LineSink | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._metrics = metrics
        self._records: collections.deque[ActionRecord] = collections.deque(maxlen=keep)
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()

    def record(self, record: ActionRecord) -> None:
        with self._lock:
            self._records.append(record)
        self._metrics.actions.labels(action=record.action, result=record.result.value).inc()
        if self._sink is not None:
            try:
                at = _last_time(record) or self._clock()
                self._sink.write([to_line(record, at=at, precision=self._sink.precision)])
            except Exception as exc:  # the record is kept and logged; InfluxDB is best effort
                event(log, "recovery event not written to InfluxDB", level=logging.WARNING, id=record.id, error=str(exc))

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            newest = list(self._records)[-limit:] if limit > 0 else []
        return [dict(r.as_dict(), mttr_seconds=mttr_seconds(r)) for r in reversed(newest)]
