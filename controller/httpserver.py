"""The controller's HTTP server: one asyncio loop for every connection, POST /alert answered in that
loop, the rest of the Flask app on a few threads, and a graceful stop.

Every exporter keeps one connection open for its alerts, so 1000 nodes mean 1000 connections and,
in an incident, 1000 alerts a second (docs/scale.md). The controller served its Flask app with
waitress until that was measured: waitress walks every connection in Python on each turn of its
loop (select or poll), accepts 100 connections by default, and hands each request to a worker
thread and back; with Flask around it an alert cost about 0.6 ms of CPU, and at 100 nodes and
1000 alerts/s the answers took 200 ms at the median. Here epoll reports only the connections with
data; an alert is read, decided (controller.app.AlertEndpoint, the same code as the Flask route)
and answered in the loop thread without a hand-off. Other requests (/events, /metrics, /healthz) go
to the WSGI app on `threads` threads, so a slow one never holds up an alert.

HTTP/1.1 as clients use it: keep-alive, pipelined requests (answered in order), request bodies with
Content-Length or chunked, Expect: 100-continue, HTTP/1.0. A malformed request gets 400 and its
connection is closed; a connection idle for IDLE_TIMEOUT is closed.
`shutdown()` stops gracefully: no new connection, requests already received finish and are answered
(up to `grace` seconds), then every connection is closed and `serve_forever()` returns.
"""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import io
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from controller.app import Reply, declared_too_large, unended_too_large
from sgcommon.alert import MAX_ALERT_BYTES
from sgcommon.jsonlog import get_logger

log = get_logger("swarmguard.controller.http")

THREADS = 8  # for the WSGI app: /events, /metrics, /healthz (alerts are answered in the loop thread)
IDENT = "swarmguard-controller"
MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 64 * 1024  # a request other than an alert (the app takes no bigger one)
IDLE_TIMEOUT = 120.0  # seconds a connection may stay open without a request (as waitress' default)
ALERT_PATH = "/alert"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AlertHandler(Protocol):
    """POST /alert without WSGI (controller.app.AlertEndpoint)."""

    def respond(self, *, authorization: str, remote: str | None, read_body: Callable[[], bytes],
                received: float | None = None) -> Reply: ...


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]  # names in lower case, in order
    length: int | None  # Content-Length, None when chunked
    chunked: bool
    limit: int  # the most body this request may have
    continued: bool = False  # 100 Continue sent

    def header(self, name: str) -> str:
        return ", ".join(v for k, v in self.headers if k == name)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def is_alert(self) -> bool:
        return self.method == "POST" and self.path == ALERT_PATH

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        return "keep-alive" in tokens if self.version == "HTTP/1.0" else "close" not in tokens


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _parse_head(raw: bytes) -> _Head:
    lines = raw.split(b"\r\n")
    while lines and not lines[0]:  # empty lines before a request line are ignored (RFC 9112 2.2)
        lines.pop(0)
    parts = lines[0].split(b" ") if lines else []
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN:
        raise _BadRequest(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505 if version.startswith("HTTP/") else 400, f"unsupported protocol {version[:20]!r}")
    if target.startswith(("http://", "https://")):  # absolute form: its path
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    if not target.startswith("/"):
        raise _BadRequest(400, "malformed request target")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or not set(name) <= _TOKEN:  # also an obsolete folded line (leading space)
            raise _BadRequest(400, "malformed header line")
        headers.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    head = _Head(method, target, version, headers, None, False, MAX_BODY)
    if head.is_alert:
        head.limit = MAX_ALERT_BYTES
    encoding = head.header("transfer-encoding").strip().lower()
    lengths = {v.strip() for k, v in headers if k == "content-length"}
    if encoding:
        if encoding != "chunked" or lengths or version == "HTTP/1.0":
            raise _BadRequest(400 if encoding == "chunked" else 501, f"unsupported transfer coding {encoding[:40]!r}")
        head.chunked = True
    elif lengths:
        declared = lengths.pop()
        if lengths or not declared.isdigit() or len(declared) > 18:
            raise _BadRequest(400, "malformed Content-Length")
        head.length = int(declared)
    else:
        head.length = 0
    return head


def _take_chunked(buffer: bytearray, limit: int) -> tuple[bytes, int] | None:
    """(body, bytes used) of a complete chunked body at the start of `buffer`, None while incomplete.

    Raises _BadRequest(413) past `limit` and _BadRequest(400) for a malformed body."""
    parts: list[bytes] = []
    total = at = 0
    while True:
        end = buffer.find(b"\r\n", at)
        if end < 0:
            if len(buffer) - at > 1024:
                raise _BadRequest(400, "malformed chunk size")
            return None
        size_text = bytes(buffer[at:end]).split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
            raise _BadRequest(400, "malformed chunk size")
        size = int(size_text, 16)
        at = end + 2
        if size == 0:
            while True:  # trailers, up to the empty line
                end = buffer.find(b"\r\n", at)
                if end < 0:
                    return None
                if end == at:
                    return b"".join(parts), end + 2
                at = end + 2
        total += size
        if total > limit:
            raise _BadRequest(413, "body too large")
        if len(buffer) < at + size + 2:
            return None
        if buffer[at + size:at + size + 2] != b"\r\n":
            raise _BadRequest(400, "malformed chunk")
        parts.append(bytes(buffer[at:at + size]))
        at += size + 2


_dates: tuple[int, str] = (0, "")


def _date() -> str:
    global _dates
    now = int(time.time())
    if _dates[0] != now:
        _dates = (now, email.utils.formatdate(now, usegmt=True))
    return _dates[1]


def _response(status: int | str, headers: Iterable[tuple[str, str]], body: bytes, *, close: bool,
              head_only: bool = False) -> bytes:
    """The answer's bytes; hop-by-hop headers are the server's. A HEAD answer keeps the app's Content-Length."""
    if isinstance(status, int):
        try:
            status = f"{status} {http.HTTPStatus(status).phrase}"
        except ValueError:
            status = f"{status} Unknown"
    lines = [f"HTTP/1.1 {status}"]
    length = str(len(body))
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length" and head_only:
            length = value
        elif lower not in ("connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"):
            lines.append(f"{name}: {value}")
    lines += [f"Content-Length: {length}", f"Date: {_date()}", f"Server: {IDENT}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def _json(doc: dict[str, Any]) -> bytes:
    """As Flask's jsonify writes it: compact, keys sorted, a newline at the end."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _error(status: int, message: str, *, close: bool = True) -> bytes:
    return _response(status, [("Content-Type", "application/json")], _json({"error": message}), close=close)


def _call_app(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Runs the WSGI app on a worker thread; the answer whole."""
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started["status"], started["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return started["status"], started["headers"], b"".join(chunks)


class _Channel(asyncio.Protocol):
    """One client connection: requests parsed from its bytes and answered in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.head: _Head | None = None
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.remote_port = ""
        self.busy = False  # a request is with the WSGI app
        self.closing = False
        self.last = time.monotonic()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.remote, self.remote_port = str(peer[0]), str(peer[1])
        self.server._channels.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server._channels.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.closing:
            return
        self.buffer += data
        if not self.busy:
            self._serve()

    # -- requests --------------------------------------------------------------------------

    def sending(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and \
            self.transport.get_write_buffer_size() > 0

    def _serve(self) -> None:
        while not self.busy and not self.closing:
            try:
                taken = self._take_request()
            except _BadRequest as exc:
                self._send(_error(exc.status, str(exc)), close=True)
                return
            if taken is None:
                return
            head, body = taken
            if head.is_alert and self.server.alerts is not None:
                self._alert(head, body)
            else:
                self._to_app(head, body if body is not None else b"")

    def _take_request(self) -> tuple[_Head, bytes | None] | None:
        """The next whole request (body None: too large, left unread), or None until more bytes come."""
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise _BadRequest(431, "request header fields too large")
                return None
            if end > MAX_HEAD:
                raise _BadRequest(431, "request header fields too large")
            self.head = _parse_head(bytes(self.buffer[:end]))
            del self.buffer[:end + 4]
        head = self.head
        if head.length is not None and head.length > head.limit:
            if not head.is_alert:
                raise _BadRequest(413, f"body of {head.length} bytes, at most {head.limit} accepted")
            self.head = None
            return head, None  # refused by the alert endpoint, unread
        if head.chunked:
            try:
                taken = _take_chunked(self.buffer, head.limit)
            except _BadRequest as exc:
                if exc.status != 413 or not head.is_alert:
                    raise
                self.head = None
                return head, None
            if taken is None:
                self._continue(head)
                return None
            body, used = taken
        else:
            assert head.length is not None
            if len(self.buffer) < head.length:
                self._continue(head)
                return None
            body, used = bytes(self.buffer[:head.length]), head.length
        del self.buffer[:used]
        self.head = None
        return head, body

    def _continue(self, head: _Head) -> None:
        if not head.continued and head.version == "HTTP/1.1" and head.header("expect").lower() == "100-continue":
            head.continued = True
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _alert(self, head: _Head, body: bytes | None) -> None:
        alerts = self.server.alerts
        assert alerts is not None

        def read_body() -> bytes:
            if body is not None:
                return body
            raise declared_too_large(head.length) if head.length is not None else unended_too_large()

        try:
            reply = alerts.respond(authorization=head.header("authorization"), remote=self.remote, read_body=read_body)
        except Exception as exc:  # a bug: answered like the Flask app's error handler, never a dropped connection
            log.exception("request failed", extra={"fields": {"path": ALERT_PATH, "error": str(exc)}})
            reply = Reply(500, {"error": "internal error; see the controller log"})
        close = body is None or not head.keep_alive
        self._send(_response(reply.status, [("Content-Type", "application/json"), *reply.headers], _json(reply.doc),
                             close=close), close=close)

    def _to_app(self, head: _Head, body: bytes) -> None:
        self.busy = True
        assert self.transport is not None
        self.transport.pause_reading()
        future = self.server._pool_submit(self._environ(head, body))
        loop = asyncio.get_running_loop()

        def answer(done: Future[tuple[str, list[tuple[str, str]], bytes]]) -> None:  # on the worker thread
            if not loop.is_closed():  # else the server stopped after its grace period: nobody to answer
                with contextlib.suppress(RuntimeError):  # closed in between
                    loop.call_soon_threadsafe(self._app_done, head, done)

        future.add_done_callback(answer)

    def _app_done(self, head: _Head, done: Future[tuple[str, list[tuple[str, str]], bytes]]) -> None:
        try:
            status, headers, body = done.result()
            answer: int | str = status
        except Exception as exc:  # the app raised (Flask catches its own): 500, logged
            log.exception("request failed", extra={"fields": {"path": head.path, "error": str(exc)}})
            answer, headers, body = 500, [("Content-Type", "text/plain")], b"internal error; see the controller log\n"
        self.busy = False
        if self.closing:
            return
        close = not head.keep_alive
        self._send(_response(answer, headers, body, close=close, head_only=head.method == "HEAD"), close=close)
        if not self.closing:
            assert self.transport is not None
            self.transport.resume_reading()
            self._serve()

    def _environ(self, head: _Head, body: bytes) -> dict[str, Any]:
        path, _, query = head.target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": head.method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": self.server.host, "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": head.version, "REMOTE_ADDR": self.remote or "", "REMOTE_PORT": self.remote_port,
            "CONTENT_TYPE": head.header("content-type"), "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.input_terminated": True,
        }
        for name, _ in head.headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            if name not in ("content-type", "content-length") and key not in environ:
                environ[key] = head.header(name)
        return environ

    def _send(self, data: bytes, *, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.closing = True
            self.transport.close()  # after what is buffered has been sent


class HttpServer:
    """`serve_forever()` in one thread; `shutdown()` from another stops it gracefully.

    `alerts`: POST /alert is answered by it in the loop thread; without it, by the WSGI app.
    """

    def __init__(self, app: WSGIApp, *, host: str, port: int, threads: int = THREADS,
                 alerts: AlertHandler | None = None) -> None:
        self.app = app
        self.alerts = alerts
        self.host = host
        self._sock = socket.create_server((host, port), backlog=4096)  # bound now: `port` is known at once
        self._sock.setblocking(False)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")
        self._loop = asyncio.new_event_loop()
        self._channels: set[_Channel] = set()
        self._server: asyncio.AbstractServer | None = None
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _pool_submit(self, environ: dict[str, Any]) -> Future[tuple[str, list[tuple[str, str]], bytes]]:
        return self._pool.submit(_call_app, self.app, environ)

    def serve_forever(self) -> None:
        """Serves until `shutdown()` has closed every connection."""
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Channel(self), sock=self._sock, backlog=4096))
            idle = loop.call_later(IDLE_TIMEOUT / 4, self._close_idle)
            loop.run_forever()
            idle.cancel()
        finally:
            for channel in list(self._channels):
                if channel.transport is not None:
                    channel.transport.abort()
            loop.run_until_complete(asyncio.sleep(0))  # let the transports finish closing
            self._pool.shutdown(wait=False, cancel_futures=True)
            loop.close()
            self._stopped.set()

    def in_flight(self) -> int:
        """Connections with a request being served or an answer not yet sent."""
        return sum(1 for channel in list(self._channels) if channel.busy or channel.sending())

    def shutdown(self, *, grace: float = 10.0) -> None:
        """No new connections; requests in flight get up to `grace` s to finish; then the loop ends."""
        self._loop.call_soon_threadsafe(self._stop_listening)
        deadline = time.monotonic() + grace
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._stopped.wait(grace + 10)

    def _stop_listening(self) -> None:  # in the loop thread
        if self._server is not None:
            self._server.close()

    def _close_idle(self) -> None:  # in the loop thread, every IDLE_TIMEOUT / 4
        limit = time.monotonic() - IDLE_TIMEOUT
        for channel in list(self._channels):
            if not channel.busy and channel.last < limit and channel.transport is not None:
                channel.closing = True
                channel.transport.close()
        self._loop.call_later(IDLE_TIMEOUT / 4, self._close_idle)
