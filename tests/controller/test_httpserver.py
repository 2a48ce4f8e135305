"""The controller's HTTP server (controller/httpserver.py) stops gracefully: a request in flight finishes, no new one is taken."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from controller.httpserver import HttpServer

pytestmark = pytest.mark.slow


def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    time.sleep(float(environ.get("QUERY_STRING") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]


def test_a_request_in_flight_at_shutdown_is_answered_and_then_the_port_is_closed() -> None:
    server = HttpServer(slow_app, host="127.0.0.1", port=0)
    base = f"http://127.0.0.1:{server.port}"
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    assert requests.get(f"{base}/?0", timeout=5).text == "done"
    answers: list[requests.Response] = []
    slow = threading.Thread(target=lambda: answers.append(requests.get(f"{base}/?1.0", timeout=10)))
    slow.start()
    deadline = time.monotonic() + 5
    while not server.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.in_flight() == 1
    began = time.monotonic()
    server.shutdown(grace=5)
    took = time.monotonic() - began
    slow.join(timeout=5)
    loop.join(timeout=5)
    assert [a.status_code for a in answers] == [200] and answers[0].text == "done"
    assert 0.5 < took < 4, took  # it waited for the request, not for the whole grace period
    assert not loop.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/?0", timeout=2)


def test_a_request_longer_than_the_grace_period_does_not_hold_the_stop() -> None:
    server = HttpServer(slow_app, host="127.0.0.1", port=0)
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    outcome: list[str] = []

    def too_slow() -> None:
        try:
            outcome.append(str(requests.get(f"http://127.0.0.1:{server.port}/?3", timeout=10).status_code))
        except requests.ConnectionError:
            outcome.append("cut")

    client = threading.Thread(target=too_slow, daemon=True)
    client.start()
    while not server.in_flight():
        time.sleep(0.01)
    began = time.monotonic()
    server.shutdown(grace=0.5)
    loop.join(timeout=10)
    assert not loop.is_alive() and time.monotonic() - began < 8
    client.join(timeout=10)
    assert outcome == ["cut"]  # its connection was closed after the grace period
