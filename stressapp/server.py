"""Serves the app with werkzeug's threaded server and stops it gracefully on SIGTERM/SIGINT.

On a stop signal: the server stops accepting at once, every stress stops (so requests in flight
get the CPU back), requests in flight finish, then `serve` returns (and the process exits 0).
Swarm sends SIGTERM after taking the task out of the balancer, so this is what makes a migration
lose no request; the sooner the process is gone, the sooner the migration is over (T6).
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from sgcommon.jsonlog import event, get_logger
from stressapp.acceptloop import AcceptLoop
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
    loop = AcceptLoop(server, name="http").start()
    event(log, "serving", host=host, port=server.server_port)
    try:
        # A timed wait: the signal handler runs in this thread, between two waits at worst.
        while not stop.wait(1.0):
            pass
    finally:
        loop.stop()  # no new connections, at once
        stopped = core.stop_all()
        server.server_close()  # closes the socket, waits for the requests in flight
        core.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        event(log, "stopped", stopped_stress=stopped)
