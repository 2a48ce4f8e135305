"""The controller's HTTP server: its Flask app under waitress, stopped gracefully.

werkzeug's server is a development server; the controller needs one process (its cache, rule state
and action locks are in memory, next to background threads), a bounded pool of request threads and
a clean stop on SIGTERM. waitress fits: pure Python, embeddable, threaded, no fork. Its own stop
(closing the sockets) would cut requests in flight, so `shutdown()` stops in steps: close the
listening socket (no new connection), let every request already received finish and its answer
be sent (up to `grace` seconds), then close the idle connections, which ends the loop of
`serve_forever()`. Socket work runs in waitress' loop thread through its trigger (its dispatchers
are not thread-safe).
"""
from __future__ import annotations

import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

THREADS = 8  # alerts come from one exporter per node, each waits for its answer; scrapes of /metrics are few
IDENT = "swarmguard-controller"


class HttpServer:
    """`serve_forever()` in one thread; `shutdown()` from another stops it gracefully."""

    def __init__(self, app: Any, *, host: str, port: int, threads: int = THREADS) -> None:
        self._server: Any = create_server(app, host=host, port=port, threads=threads, ident=IDENT)
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        """Serves until `shutdown()` has closed every socket; then stops the request threads."""
        try:
            self._server.run()
        finally:
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            self._stopped.set()

    def in_flight(self) -> int:
        """Connections with a request being served or an answer not yet sent."""
        return sum(1 for channel in list(self._server.active_channels.values())
                   if channel.requests or channel.total_outbufs_len)

    def shutdown(self, *, grace: float = 10.0) -> None:
        """No new connections; requests in flight get up to `grace` s to finish; then the loop ends."""
        self._server.trigger.pull_trigger(self._stop_listening)
        deadline = time.monotonic() + grace
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._server.trigger.pull_trigger(self._close_everything)
        self._stopped.wait(grace + 10)

    def _stop_listening(self) -> None:  # in waitress' loop thread
        self._server.accepting = False
        wasyncore.dispatcher.close(self._server)  # the listening socket only; the trigger stays

    def _close_everything(self) -> None:  # in waitress' loop thread
        for channel in list(self._server.active_channels.values()):
            channel.handle_close()
        self._server.trigger.close()  # the map is empty now: the loop returns
