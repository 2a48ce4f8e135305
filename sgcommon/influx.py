"""The one InfluxDB writer of the project: bounded, batched, never blocking its callers.

`write(points)` only appends to an in-memory buffer and returns at once; a background thread
sends batches. What happens to a batch depends on the answer:

- 2xx: written;
- 4xx other than 408 and 429 (the server refuses this batch: bad line, bad token, unknown
  bucket, too large): the batch is dropped, counted (`rejected_batches`, `rejected_lines`) and
  logged once per status, and the next batch goes out; retrying it would block the queue forever;
- 408, 429, 5xx, no connection, a time-out: the batch goes back to the front of the buffer and is
  retried with exponential back-off (flush interval x 2^n, at most `max_backoff`, at least the
  server's Retry-After).

While the server is down or slow the buffer fills up to `buffer_size` lines and then the oldest
lines are dropped first and counted, so memory stays bounded and the newest data wins.
`close()` flushes what is left (bounded by a timeout).

`open_writer` posts gzip'd line protocol to `/api/v2/write` through one keep-alive `requests`
session (InfluxDB 2 and victoria-metrics take it). influxdb-client is not used: it cost the
exporter about 27 MB of RSS (half its budget) for one HTTP POST (docs/exporter.md). Points are
line-protocol strings in the writer's precision (sgcommon.lineproto).
"""
from __future__ import annotations

import collections
import gzip as gzip_module
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sgcommon.jsonlog import OnceLogger, event, get_logger

log = get_logger("swarmguard.influx")

Sender = Callable[[list[str]], None]
PRECISIONS = ("s", "ms", "us", "ns")
MAX_EXPONENT = 16  # 2^16 flush intervals is far past any max_backoff; a bigger power overflows a float


class SinkRejected(Exception):
    """The server refused this batch for good (a 4xx but 408 and 429): drop it, do not retry."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


class SinkUnavailable(Exception):
    """The server could not take the batch now (408, 429, 5xx, network): retry after a back-off."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


Point = str  # one line of line protocol (sgcommon.lineproto)


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
    failed_batches: int = 0  # send attempts that failed and are retried (408, 429, 5xx, network)
    rejected_batches: int = 0  # batches the server refused with a 4xx: dropped, not retried
    rejected_lines: int = 0  # lines in those batches


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
        self._retry_after = 0.0  # seconds the server asked for (Retry-After) on the last failure
        self._once = OnceLogger(log)
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def write(self, points: Iterable[Point]) -> None:
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

    def _line(self, point: Point) -> str:
        if isinstance(point, str):
            return point.strip()
        raise TypeError(f"expected a line-protocol string, got {type(point).__name__}")

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                if failures == 0:
                    delay = self._flush_interval
                else:
                    backoff = self._flush_interval * 2 ** min(failures, MAX_EXPONENT)
                    delay = min(max(backoff, self._retry_after), self._max_backoff)
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
        """True when the batch is done with (written, or refused for good and dropped); False: retry it."""
        self._retry_after = 0.0
        try:
            self._send(batch)
        except SinkRejected as exc:  # retrying cannot help and would block every later batch
            self.stats.rejected_batches += 1
            self.stats.rejected_lines += len(batch)
            self._once.clear(self._name, "influx write recovered", writer=self._name)
            self._once.warn(f"{self._name}:rejected:{exc.status}", "influx refused a batch; dropped",
                            writer=self._name, lines=len(batch), error=str(exc)[:300])
            return True
        except Exception as exc:  # unavailable, or any client or network failure: keep the data, back off
            if isinstance(exc, SinkUnavailable) and exc.retry_after is not None:
                self._retry_after = exc.retry_after
            self.stats.failed_batches += 1
            self._once.warn(self._name, "influx write failed", writer=self._name, error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        self.stats.written += len(batch)
        self._once.clear(self._name, "influx write recovered", writer=self._name)
        return True


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for write APIs and is ignored)."""
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), 3600))


def http_sender(
    target: InfluxTarget,
    *,
    token: str | None,
    precision: str = "ms",
    timeout: float = 5.0,
    gzip: bool = True,
    session: Any = None,
) -> tuple[Sender, Callable[[], None]]:
    """A send function POSTing line protocol to `{url}/api/v2/write`, and its close function.

    Raises SinkRejected for a 4xx but 408/429, SinkUnavailable for everything worth a retry.
    """
    import requests  # every component already has it loaded; imported here to keep this module light

    http = session or requests.Session()
    url = f"{target.url}/api/v2/write"
    params = {"org": target.org, "bucket": target.bucket, "precision": precision}
    headers = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if gzip:
        headers["Content-Encoding"] = "gzip"

    def send(lines: list[str]) -> None:
        body = "\n".join(lines).encode("utf-8", "replace")  # never raises: a bad character is not worth a stuck queue
        if gzip:
            body = gzip_module.compress(body, compresslevel=1)
        try:
            response = http.post(url, params=params, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from None
        status = response.status_code
        if status < 300:
            return
        text = response.text[:200].strip()
        if status in (408, 429) or status >= 500:
            raise SinkUnavailable(f"HTTP {status}: {text}", retry_after=_retry_after(response.headers.get("Retry-After")))
        raise SinkRejected(status, text)

    return send, http.close


def open_writer(
    target: InfluxTarget,
    *,
    token: str | None,
    precision: str = "ms",
    timeout: float = 5.0,
    gzip: bool = True,
    **options: Any,
) -> InfluxWriter:
    """An InfluxWriter posting to the target's /api/v2/write (see http_sender)."""
    send, close = http_sender(target, token=token, precision=precision, timeout=timeout, gzip=gzip)
    return InfluxWriter(send, precision=precision, on_close=close, **options)
