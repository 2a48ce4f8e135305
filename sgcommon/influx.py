"""The one InfluxDB writer of the project: bounded, batched, never blocking its callers.

`write(points)` only appends to an in-memory buffer and returns at once; a background thread
sends batches through influxdb-client's synchronous write API (one client, one write API,
closed on exit: fact 19). When InfluxDB is down or slow the buffer fills up to `buffer_size`
lines and then the oldest lines are dropped first and counted, so memory stays bounded and the
newest data wins. `close()` flushes what is left (bounded by a timeout) and closes the client.

The exporter writes `container_metrics` / `node_metrics`, the controller `recovery_events`;
points are influxdb_client Point objects or line-protocol strings in the writer's precision.
influxdb_client itself is imported only when a writer is opened: the package alone costs about
17 MB of RSS, a third of the exporter's memory budget, which a node without InfluxDB should not pay.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from typing import TYPE_CHECKING

from sgcommon.jsonlog import OnceLogger, event, get_logger

if TYPE_CHECKING:
    from influxdb_client import Point

log = get_logger("swarmguard.influx")

Sender = Callable[[list[str]], None]
PRECISIONS = ("s", "ms", "us", "ns")


@dataclass(frozen=True)
class InfluxTarget:
    url: str  # base URL, e.g. http://influxdb:8086
    org: str
    bucket: str


def parse_target(url: str, *, org: str, bucket: str) -> InfluxTarget:
    """Accepts a base URL or a full `.../api/v2/write?org=..&bucket=..` URL (the spec's example);
    org and bucket in the URL's query win over the given defaults."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"INFLUXDB_URL: expected http(s)://host:port, got {url!r}")
    query = parse_qs(parts.query)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if path and not path.endswith("/api/v2/write"):
        base += path
    return InfluxTarget(url=base, org=query.get("org", [org])[0], bucket=query.get("bucket", [bucket])[0])


@dataclass
class WriterStats:
    written: int = 0  # lines accepted by the server
    dropped: int = 0  # lines discarded because the buffer was full (oldest first)
    failed_batches: int = 0  # send attempts that failed


class InfluxWriter:
    """A bounded buffer drained by one thread; thread-safe `write`, idempotent `close`."""

    def __init__(
        self,
        send: Sender,
        *,
        precision: str = "ms",
        buffer_size: int = 10_000,
        batch_size: int = 1_000,
        flush_interval: float = 5.0,
        max_backoff: float = 30.0,
        on_close: Callable[[], None] | None = None,
        name: str = "influx",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        if buffer_size < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValueError("buffer_size and batch_size must be >= 1 and flush_interval > 0")
        self.precision = precision
        self.stats = WriterStats()
        self._send = send
        self._buffer: collections.deque[str] = collections.deque()
        self._buffer_size = buffer_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_backoff = max_backoff
        self._on_close = on_close
        self._name = name
        self._cond = threading.Condition()
        self._closing = False
        self._once = OnceLogger(log)
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def write(self, points: Iterable[Point | str]) -> None:
        """Queues points for the next batch; never blocks on the network."""
        lines = [line for line in (self._line(p) for p in points) if line]
        with self._cond:
            if self._closing:
                self.stats.dropped += len(lines)
                return
            self._buffer.extend(lines)
            overflow = len(self._buffer) - self._buffer_size
            for _ in range(max(overflow, 0)):
                self._buffer.popleft()
            if overflow > 0:
                self.stats.dropped += overflow
            if len(self._buffer) >= self._batch_size:
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def close(self, timeout: float = 5.0) -> None:
        """Flushes what is buffered (one attempt per batch, within `timeout`) and closes the client."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._on_close is not None:
            self._on_close()
        lost = self.pending()
        event(log, "influx writer closed", writer=self._name, written=self.stats.written, dropped=self.stats.dropped, unsent=lost)

    def _line(self, point: Point | str) -> str:
        if isinstance(point, str):
            return point.strip()
        if hasattr(point, "to_line_protocol"):  # an influxdb_client Point (not imported here: see above)
            return point.to_line_protocol(precision=self.precision)
        raise TypeError(f"expected a Point or a line-protocol string, got {type(point).__name__}")

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                delay = self._flush_interval if failures == 0 else min(self._flush_interval * 2**failures, self._max_backoff)
                deadline = time.monotonic() + delay
                while not self._closing and (failures > 0 or len(self._buffer) < self._batch_size):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                closing = self._closing
            while True:
                batch = self._take()
                if not batch:
                    break
                if self._try_send(batch):
                    failures = 0
                else:
                    failures += 1
                    if closing:
                        break
                    self._give_back(batch)
                    break
            if closing:
                return

    def _take(self) -> list[str]:
        with self._cond:
            n = min(self._batch_size, len(self._buffer))
            return [self._buffer.popleft() for _ in range(n)]

    def _give_back(self, batch: list[str]) -> None:
        """Puts a failed batch back in front; what no longer fits (its oldest lines) is dropped."""
        with self._cond:
            room = self._buffer_size - len(self._buffer)
            keep = batch[len(batch) - room:] if room < len(batch) else batch
            self.stats.dropped += len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))

    def _try_send(self, batch: list[str]) -> bool:
        try:
            self._send(batch)
        except Exception as exc:  # any client or network failure: keep the data, back off
            self.stats.failed_batches += 1
            self._once.warn(self._name, "influx write failed", writer=self._name, error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        self.stats.written += len(batch)
        self._once.clear(self._name, "influx write recovered", writer=self._name)
        return True


def open_writer(
    target: InfluxTarget,
    *,
    token: str | None,
    precision: str = "ms",
    timeout: float = 5.0,
    gzip: bool = True,
    **options: float | int | str,
) -> InfluxWriter:
    """An InfluxWriter sending through one influxdb-client synchronous write API."""
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS

    client = InfluxDBClient(url=target.url, token=token or "", org=target.org, timeout=int(timeout * 1000), enable_gzip=gzip)
    api = client.write_api(write_options=SYNCHRONOUS)

    def send(lines: list[str]) -> None:
        api.write(bucket=target.bucket, org=target.org, record="\n".join(lines).encode(), write_precision=precision)

    def close() -> None:
        api.close()
        client.close()

    return InfluxWriter(send, precision=precision, on_close=close, **options)  # type: ignore[arg-type]

