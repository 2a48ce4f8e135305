"""An accept loop for a socketserver that stops the moment it is asked to.

`socketserver.BaseServer.serve_forever` notices `shutdown()` only when its `select` times out,
so a stop waits up to one poll interval (werkzeug's default 0.5 s) for nothing. Swarm stops the
old task of a migration with SIGTERM, and that wait is part of every migration's T6. This loop
also selects on one end of a socket pair; `stop()` writes to the other end, so the loop returns
at once, and it never wakes up while idle.
"""
from __future__ import annotations

import selectors
import socket
import socketserver
import threading


class AcceptLoop:
    """Accepts connections for `server` on a daemon thread until `stop()`.

    Requests are handled as the server handles them (a thread per request for a ThreadingMixIn
    server); `stop()` only ends the accepting, the caller decides when to close the server."""

    def __init__(self, server: socketserver.BaseServer, *, name: str) -> None:
        self._server = server
        # handle_request() after a readable select: never block if the connection vanished
        # between the select and the accept (a client reset).
        server.timeout = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> AcceptLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)  # type: ignore[arg-type]
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                self._server.handle_request()
                self._server.service_actions()

    def stop(self) -> None:
        """Stops accepting and returns once the loop has ended (idempotent)."""
        if self._wake_w.fileno() != -1:
            self._wake_w.send(b"\0")
        if self._thread.is_alive():
            self._thread.join()
        self._wake_w.close()
        self._wake_r.close()
