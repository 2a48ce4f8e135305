"""Helpers shared by the test suites."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """A real dependency is missing: a failure under CI (CI=true), a visible skip elsewhere."""
    if in_ci():
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


T = TypeVar("T")


def free_port() -> int:
    """A port nothing listened on a moment ago. Only for an address that must refuse connections: a
    server a test starts binds port 0 and says its port (OutputLines, logged_port), since a port
    picked here and closed again can be taken by someone else before the server binds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def logged_port(line: str, *, logger: str, msg: str) -> int | None:
    """The `port` of a JSON log line (sgcommon.jsonlog) from `logger` with message `msg`; None for any other line."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("logger") != logger or doc.get("msg") != msg:
        return None
    port = doc.get("port")
    return port if type(port) is int and port > 0 else None


class OutputLines:
    """A subprocess's output read line by line on a thread: a test can wait for a line while the
    process runs (e.g. the port a server bound) and read all of it afterwards, and the process never
    blocks on a full pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:  # closed when the process's end of it is: the reader owns it
            for line in stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, find: Callable[[str], T | None], *, timeout: float) -> T | None:
        """The first `find(line)` that is not None, waiting up to `timeout` s for it; None when the
        output ends (or the time passes) without one."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    found = find(line)
                    if found is not None:
                        return found
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    return None
                self._changed.wait(left)

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


# Task states, as the engine's task documents give them, of a task on its way up and of one that holds
# its container (https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/).
STARTING = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")
UP = ("assigned", "accepted", "preparing", "ready", "starting", "running")


def in_transition(docs: list[dict[str, Any]]) -> Counter[str]:
    """Tasks in transition per service, read from the engine's own task documents: tasks not yet
    running that should run, tasks still up that should not, and a second running task in a slot."""
    moving: Counter[str] = Counter()
    running_in_slot: Counter[tuple[str, Any]] = Counter()
    for doc in docs:
        service, state, desired = doc["ServiceID"], doc["Status"]["State"], doc["DesiredState"]
        if desired == "running" and state in STARTING:
            moving[service] += 1
        elif desired != "running" and state in UP:
            moving[service] += 1
        elif desired == "running" and state == "running":
            slot = (service, doc.get("Slot") or doc.get("NodeID"))
            running_in_slot[slot] += 1
            if running_in_slot[slot] > 1:
                moving[service] += 1
    return moving


@dataclass
class TaskPoller:
    """Reads every task of an engine every few ms (run() on a thread, until stop()) and notes each read
    at which a service had more than `max_moving` tasks in transition, or all services together more
    than `max_moving_total`: the disruption budget checked from outside, by the engine's own answers."""

    url: str
    names: dict[str, str] = field(default_factory=dict)  # service id -> name
    max_moving: int = 1
    max_moving_total: int = 3
    polls: int = 0
    violations: list[str] = field(default_factory=list)
    peak_total: int = 0
    peak_service: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            moving = in_transition(self._tasks())
            self.polls += 1
            total = sum(moving.values())
            self.peak_total = max(self.peak_total, total)
            self.peak_service = max([self.peak_service, *moving.values()])
            if total > self.max_moving_total:
                self.violations.append(f"poll {self.polls}: {total} tasks in transition: {self._named(moving)}")
            for service, count in moving.items():
                if count > self.max_moving:
                    self.violations.append(f"poll {self.polls}: {self.names.get(service, service)} has {count}")
            time.sleep(0.003)

    def _tasks(self) -> list[dict[str, Any]]:
        """GET /tasks, unversioned (any engine answers it at its own version; a current one refuses
        /v1.41), on a fresh connection (a few ms; a kept-alive one waits on delayed ACKs here)."""
        url = urlsplit(self.url)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
        try:
            connection.request("GET", "/tasks", headers={"Connection": "close"})
            response = connection.getresponse()
            assert response.status == 200, response.status
            docs: list[dict[str, Any]] = json.loads(response.read())
            return docs
        finally:
            connection.close()

    def _named(self, moving: Counter[str]) -> dict[str, int]:
        return {self.names.get(k, k): v for k, v in moving.items()}

    def stop(self) -> None:
        self._stop.set()
