"""The controller's HTTP server on the wire: alerts answered in its loop, the rest by the Flask app,
HTTP/1.1 framing as clients send it, and nothing a client sends stops it."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.app import AlertEndpoint, create_app
from controller.httpserver import HttpServer
from sgcommon.alert import Alert, encode_alert
from tests.controller.test_runtime import TOKEN, Rig, make_rig

AUTH = f"Authorization: Bearer {TOKEN}\r\n"


def alert_body(cpu: float = 20.0, cid: str = "c1") -> bytes:
    now = time.time()
    return encode_alert(Alert(t0=now - 0.5, t1=now, node="worker-1", container_id=cid, service="web", task_id="t1",
                              metrics={"cpu": cpu, "mem": 10.0, "mem_mb": 64.0, "net": 1.0, "net_rx": 0.1,
                                       "net_tx": 0.1}))


def post_alert(body: bytes, *, auth: str = AUTH, extra: str = "") -> bytes:
    return (f"POST /alert HTTP/1.1\r\nHost: c\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def chunked(body: bytes, size: int = 100) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


class Served:
    def __init__(self, rig: Rig, server: HttpServer) -> None:
        self.rig, self.server = rig, server

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        return sock


def read_answer(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One answer off the socket (Content-Length framed, as the server writes them)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed mid-body")
        rest += data
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def served() -> Iterator[Served]:
    rig = make_rig()
    alerts = AlertEndpoint(rig.config, rig.runtime)
    app = create_app(rig.config, rig.runtime, alerts=alerts)

    @app.get("/slow")
    def slow() -> str:
        time.sleep(1.0)
        return "slow done"

    server = HttpServer(app, host="127.0.0.1", port=0, alerts=alerts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Served(rig, server)
    server.shutdown(grace=2)
    thread.join(5)


def test_alerts_on_one_kept_alive_connection_are_answered_in_turn_as_the_flask_route_answers(served: Served) -> None:
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(post_alert(alert_body(cpu=20.0)))
        quiet = read_answer(sock, buffer)
        sock.sendall(post_alert(alert_body(cpu=95.0, cid="c2")))
        acted = read_answer(sock, buffer)
    assert (quiet[0], json.loads(quiet[2])) == (200, {"status": "ok", "decisions": []})
    assert acted[0] == 202 and json.loads(acted[2])["status"] == "accepted"
    assert quiet[1]["content-type"] == "application/json" and "connection" not in quiet[1]
    flask = served.rig.config  # the Flask route gives the same answer to the same request
    client = create_app(flask, served.rig.runtime).test_client()
    same = client.post("/alert", data=alert_body(cpu=20.0, cid="c3"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert same.status_code == 200 and same.data == quiet[2]


def test_pipelined_requests_are_answered_in_order_alerts_and_app_paths_alike(served: Served) -> None:
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(post_alert(alert_body()) + b"GET /healthz HTTP/1.1\r\nHost: c\r\n\r\n" + post_alert(alert_body(cid="c2"))
                     + b"GET /nowhere HTTP/1.1\r\nHost: c\r\n\r\n" + b"GET /alert HTTP/1.1\r\nHost: c\r\n\r\n")
        answers = [read_answer(sock, buffer) for _ in range(5)]
    assert [a[0] for a in answers] == [200, 200, 200, 404, 405]
    assert json.loads(answers[1][2])["status"] == "ok" and "cache" in json.loads(answers[1][2])


def test_a_chunked_alert_and_one_sent_after_100_continue_are_read_whole(served: Served) -> None:
    sock, buffer = served.connect(), bytearray()
    body = alert_body(cpu=95.0, cid="c9")
    with sock:
        sock.sendall(f"POST /alert HTTP/1.1\r\nHost: c\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode()
                     + chunked(body, 37))
        assert read_answer(sock, buffer)[0] == 202
        second = alert_body(cid="c8")  # one body for both sends: its length varies with the clock's digits
        sock.sendall(post_alert(second, extra="Expect: 100-continue\r\n")[:-len(second)])
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(second)
        assert read_answer(sock, buffer)[0] == 200


@pytest.mark.parametrize(("request_bytes", "status", "message"), [
    (post_alert(b"x" * 2000), 400, "body: 2000 bytes, at most 1024 allowed"),
    (f"POST /alert HTTP/1.1\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n".encode() + chunked(b"x" * 1500), 400,
     "body: more than 1024 bytes, at most 1024 allowed"),
    (post_alert(b"x" * 2000, auth=""), 401, "missing or wrong bearer token"),
    (post_alert(b"{not json"), 400, "not valid JSON"),
    (b"GET /healthz HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 413, "at most 65536 accepted"),
    (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    (b"GET /healthz HTTP/2.0\r\n\r\n", 505, "unsupported protocol"),
    (b"GET healthz HTTP/1.1\r\n\r\n", 400, "malformed request target"),
    (b"GET /healthz HTTP/1.1\r\nno colon\r\n\r\n", 400, "malformed header line"),
    (b"GET /healthz HTTP/1.1\r\n folded: header\r\n\r\n", 400, "malformed header line"),
    (b"POST /alert HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "malformed Content-Length"),
    (b"POST /alert HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, "transfer coding"),
    (b"POST /alert HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "transfer coding"),
    (b"POST /alert HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "malformed chunk size"),
    (b"GET /" + b"x" * 20000 + b" HTTP/1.1\r\n\r\n", 431, "too large"),
])
def test_a_request_that_cannot_be_served_gets_its_reason_and_its_connection_is_closed(
        served: Served, request_bytes: bytes, status: int, message: str) -> None:
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(request_bytes)
        answer = read_answer(sock, buffer)
        if status != 400 or b"not json" not in request_bytes:
            assert closed(sock)
    assert answer[0] == status and message in json.loads(answer[2])["error"]


def test_http_1_0_and_connection_close_end_the_connection_after_the_answer(served: Served) -> None:
    for request in (b"GET /healthz HTTP/1.0\r\n\r\n", b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
                    post_alert(alert_body(), extra="Connection: close\r\n")):
        sock, buffer = served.connect(), bytearray()
        with sock:
            sock.sendall(request)
            status, headers, _ = read_answer(sock, buffer)
            assert status == 200 and headers["connection"] == "close" and closed(sock)


def test_head_gets_the_headers_of_get_without_the_body(served: Served) -> None:
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(b"HEAD /events HTTP/1.1\r\nHost: c\r\n\r\nGET /events HTTP/1.1\r\nHost: c\r\n\r\n")
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        buffer[:] = rest
        got = read_answer(sock, buffer)
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(got[2])}".encode() in head
    assert json.loads(got[2]) == {"events": []}


def test_an_alert_is_answered_while_a_slow_app_request_is_in_flight(served: Served) -> None:
    slow, fast = served.connect(), served.connect()
    with slow, fast:
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: c\r\n\r\n")
        time.sleep(0.1)
        began = time.monotonic()
        fast.sendall(post_alert(alert_body()))
        assert read_answer(fast, bytearray())[0] == 200
        took = time.monotonic() - began
        assert read_answer(slow, bytearray())[2] == b"slow done"
    assert took < 0.5  # not after the slow request's second


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000) | st.builds(lambda a, b: a + b"\r\n\r\n" + b, st.binary(max_size=200),
                                            st.binary(max_size=200)))
def test_no_bytes_a_client_sends_stop_the_server_or_cause_a_500(served: Served, garbage: bytes) -> None:
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    assert b"HTTP/1.1 500" not in data
    sock, buffer = served.connect(), bytearray()
    with sock:
        sock.sendall(post_alert(alert_body()))
        assert read_answer(sock, buffer)[0] == 200


def test_many_connections_at_once_are_served(served: Served) -> None:
    socks = [served.connect() for _ in range(300)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(post_alert(alert_body(cid=f"c{i}")))
        statuses: list[Any] = [read_answer(sock, bytearray())[0] for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [200] * 300
