"""Serves the app with werkzeug's threaded server and stops it gracefully on SIGTERM/SIGINT.

On a stop signal: every stress stops, the listening socket closes, requests in flight finish,
then `serve` returns (and the process exits 0). Swarm sends SIGTERM after taking the task out
of the balancer, so this is what makes a migration lose no request.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from sgcommon.jsonlog import event, get_logger
from stressapp.core import StressCore

log = get_logger("swarmguard.stressapp.server")


def build_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    server = make_server(host, port, app, threaded=True)
    # werkzeug marks request threads as daemons; joinable threads let server_close() wait for them.
    server.daemon_threads = False
    return server


def serve(app: Flask, core: StressCore, *, host: str, port: int, stop: threading.Event | None = None) -> None:
    """Serves until `stop` is set (SIGTERM and SIGINT set it), then shuts down gracefully."""
    stop = stop or threading.Event()
    server = build_server(app, host, port)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        event(log, "stop signal received", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="http", daemon=True)
    thread.start()
    event(log, "serving", host=host, port=server.server_port)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stopped = core.stop_all()
        server.shutdown()  # no new connections; serve_forever returns
        thread.join()
        server.server_close()  # waits for the requests in flight
        core.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        event(log, "stopped", stopped_stress=stopped)
