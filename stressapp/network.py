"""Network stress: real bytes over a real TCP connection, paced by a token bucket.

The app runs its own sink (a TCP server that reads and discards), so with no peer configured
the traffic goes over loopback to itself; with STRESS_NETWORK_PEER set it crosses the
container's interface to another sink (for instance another replica's). Both directions are
counted in a ByteCounters that /metrics turns into Mbit/s.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable

from sgcommon.jsonlog import OnceLogger, event, get_logger
from stressapp.acceptloop import AcceptLoop

log = get_logger("swarmguard.stressapp.network")

SEND_CHUNK = 64 * 1024
TICK_S = 0.005
BURST_S = 0.2  # the bucket holds at most this many seconds of traffic: a stalled thread catches up


class ByteCounters:
    """Bytes sent and received by network stress, safe to bump from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.received = 0

    def add_sent(self, count: int) -> None:
        with self._lock:
            self.sent += count

    def add_received(self, count: int) -> None:
        with self._lock:
            self.received += count

    def totals(self) -> tuple[int, int]:
        """(received, sent)."""
        with self._lock:
            return self.received, self.sent


def parse_peer(text: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') -> (host, port); ValueError with the reason otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port with a port in 1..65535, got {text!r}")
    return host, int(port)


class _SinkHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        counters: ByteCounters = self.server.counters  # type: ignore[attr-defined]
        buffer = bytearray(SEND_CHUNK)
        try:
            while (count := self.request.recv_into(buffer)) > 0:
                counters.add_received(count)
        except OSError:  # a peer that resets its connection is not an error of the sink
            return


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Sink:
    """A TCP server on its own port that reads and discards, counting what it receives."""

    def __init__(self, host: str, port: int, counters: ByteCounters) -> None:
        self._server = _SinkServer((host, port), _SinkHandler)
        self._server.counters = counters  # type: ignore[attr-defined]
        self.address: tuple[str, int] = self._server.server_address[:2]
        self._loop = AcceptLoop(self._server, name="sink")

    def start(self) -> Sink:
        self._loop.start()
        event(log, "traffic sink listening", host=self.address[0], port=self.address[1])
        return self

    def close(self) -> None:
        self._loop.stop()
        self._server.server_close()


class NetworkActuator:
    """Sends to `peer` at `level` Mbit/s while applied; a pacing thread does the sending."""

    def __init__(self, peer: tuple[str, int], counters: ByteCounters, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._peer = peer
        self._counters = counters
        self._clock = clock
        self._rate_bps = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warn = OnceLogger(log)

    def apply(self, level: float) -> None:
        self._rate_bps = level * 1e6 / 8  # bytes per second
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._pace, name="net-stress", daemon=True)
            self._thread.start()

    def release(self) -> None:
        self._rate_bps = 0.0
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _connect(self) -> socket.socket | None:
        try:
            conn = socket.create_connection(self._peer, timeout=1.0)
        except OSError as exc:
            self._warn.warn("peer", "network peer unreachable", peer=f"{self._peer[0]}:{self._peer[1]}", error=str(exc))
            return None
        self._warn.clear("peer", "network peer reachable again")
        conn.settimeout(1.0)
        return conn

    def _pace(self) -> None:
        payload = memoryview(bytes(SEND_CHUNK))
        conn: socket.socket | None = None
        tokens, last = 0.0, self._clock()
        try:
            while not self._stop.is_set():
                if conn is None and (conn := self._connect()) is None:
                    self._stop.wait(1.0)
                    tokens, last = 0.0, self._clock()
                    continue
                now = self._clock()
                rate = self._rate_bps
                tokens = min(tokens + rate * (now - last), max(rate * BURST_S, SEND_CHUNK))
                last = now
                while tokens >= 1 and not self._stop.is_set():
                    size = int(min(tokens, SEND_CHUNK))
                    try:
                        conn.sendall(payload[:size])
                    except OSError as exc:
                        event(log, "network peer dropped the connection", level=logging.WARNING, error=str(exc))
                        conn.close()
                        conn = None
                        break
                    self._counters.add_sent(size)
                    tokens -= size
                self._stop.wait(TICK_S)
        finally:
            if conn is not None:
                conn.close()
