"""The scraper's HTTP/1.1 GET client: the framings an exporter may answer with, and every way it can fail."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from controller.fetch import Answer, Connection, FetchError, Origin


class CannedServer:
    """Answers each request on a connection with the next canned bytes; closes after `close_after` ones."""

    def __init__(self, answers: list[bytes], *, close_after: int | None = None, silent: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.silent = silent
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        served = 0
        buffer = b""
        with contextlib.suppress(OSError), conn:
            while self.answers or self.silent:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append(head)
                if self.silent:
                    self._stop.wait(5)
                    return
                conn.sendall(self.answers.pop(0))
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    return

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


@pytest.fixture
def serve() -> Iterator[list[CannedServer]]:
    servers: list[CannedServer] = []
    yield servers
    for server in servers:
        server.stop()


def get(server: CannedServer, path: str = "/v1/samples", *, times: int = 1, max_body: int = 1000,
        timeout: float = 2.0) -> list[Answer | str]:
    """`times` GETs on one Connection; each result is the Answer or the FetchError's message."""

    async def run() -> list[Answer | str]:
        origin, _ = Origin.of(f"http://127.0.0.1:{server.port}/metrics")
        connection = Connection(origin, max_body=max_body)
        out: list[Answer | str] = []
        for _ in range(times):
            try:
                out.append(await connection.get(path, timeout=timeout))
            except FetchError as exc:
                out.append(str(exc))
        connection.close()
        return out

    return asyncio.run(run())


def ok(body: bytes, *, ctype: bytes = b"application/json", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body


def test_answers_with_a_length_come_back_whole_over_one_kept_alive_connection(serve: list[CannedServer]) -> None:
    server = CannedServer([ok(b'{"a":1}'), ok(b"second", ctype=b"text/plain")])
    serve.append(server)
    first, second = get(server, times=2)
    assert first == Answer(200, "application/json", b'{"a":1}')
    assert second == Answer(200, "text/plain", b"second")
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/samples HTTP/1.1\r\nHost: 127.0.0.1:")


def test_a_chunked_answer_is_put_together(serve: list[CannedServer]) -> None:
    server = CannedServer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n", ok(b"next")])
    serve.append(server)
    first, second = get(server, times=2)
    assert isinstance(first, Answer) and first.body == b"abcdefg"
    assert isinstance(second, Answer) and second.body == b"next" and server.connections == 1


def test_an_answer_without_a_length_ends_with_the_connection_and_the_next_get_reconnects(
        serve: list[CannedServer]) -> None:
    server = CannedServer([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", ok(b"again")], close_after=1)
    serve.append(server)
    first, second = get(server, times=2)
    assert isinstance(first, Answer) and first.body == b"all of it"
    assert isinstance(second, Answer) and second.body == b"again"
    assert server.connections == 2


def test_connection_close_is_honoured(serve: list[CannedServer]) -> None:
    server = CannedServer([ok(b"one", extra=b"Connection: close\r\n"), ok(b"two")], close_after=1)
    serve.append(server)
    assert [a.body for a in get(server, times=2) if isinstance(a, Answer)] == [b"one", b"two"]
    assert server.connections == 2


@pytest.mark.parametrize(("answer", "message"), [
    (ok(b"x" * 2000), "body of 2000 bytes, at most 1000 read"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n", "body over 1000"),
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "IncompleteReadError"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "ValueError"),
])
def test_an_answer_that_cannot_be_read_is_an_error_and_the_next_get_reconnects(
        serve: list[CannedServer], answer: bytes, message: str) -> None:
    server = CannedServer([answer, ok(b"fine")], close_after=1)
    serve.append(server)
    failed, fine = get(server, times=2)
    assert isinstance(failed, str) and message in failed
    assert isinstance(fine, Answer) and fine.body == b"fine"


def test_no_answer_in_time_and_no_listener_are_errors(serve: list[CannedServer]) -> None:
    server = CannedServer([], silent=True)
    serve.append(server)
    assert get(server, timeout=0.2) == ["no answer within 0.2 s"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = CannedServer([])
    dead.port = port  # nothing listens there
    serve.append(dead)
    [refused] = get(dead)
    assert isinstance(refused, str) and "ConnectionRefusedError" in refused


def test_only_http_urls_have_an_origin() -> None:
    origin, path = Origin.of("http://10.0.0.5:9101/metrics?x=1")
    assert (origin.host, origin.port, origin.netloc, path) == ("10.0.0.5", 9101, "10.0.0.5:9101", "/metrics?x=1")
    assert Origin.of("https://h/metrics")[0].port == 443
    with pytest.raises(ValueError):
        Origin.of("ftp://h/metrics")
