"""stressapp/acceptloop.py: a socketserver's accept loop that ends as soon as it is told to."""
from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from stressapp.acceptloop import AcceptLoop


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = False


@pytest.fixture
def server() -> Server:
    return Server(("127.0.0.1", 0), Echo)


def ask(server: Server, line: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:  # type: ignore[arg-type]
        sock.sendall(line)
        return sock.makefile("rb").readline()


def test_connections_are_served_until_stop_and_the_loop_has_ended_when_stop_returns(server: Server) -> None:
    loop = AcceptLoop(server, name="test-accept").start()
    assert [ask(server, b"%d\n" % i) for i in range(5)] == [b"%d\n" % i for i in range(5)]
    loop.stop()
    assert not [t for t in threading.enumerate() if t.name == "test-accept"]
    server.server_close()
    with pytest.raises(OSError):
        ask(server, b"late\n")


def test_stop_is_idempotent_and_works_on_a_loop_never_started(server: Server) -> None:
    AcceptLoop(server, name="never").stop()
    loop = AcceptLoop(server, name="twice").start()
    loop.stop()
    loop.stop()
    server.server_close()


def test_a_connection_left_before_it_was_accepted_does_not_block_the_loop(server: Server) -> None:
    loop = AcceptLoop(server, name="reset").start()
    quitter = socket.create_connection(server.server_address[:2])  # type: ignore[arg-type]
    quitter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    quitter.close()  # RST
    assert ask(server, b"still here\n") == b"still here\n"
    loop.stop()
    server.server_close()
