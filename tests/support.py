"""Helpers shared by the test suites."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """A real dependency is missing: a failure under CI (CI=true), a visible skip elsewhere."""
    if in_ci():
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
