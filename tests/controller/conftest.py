"""Fixtures for controller tests: a fake Docker Engine with a three-node Swarm, the Swarm
adapter on it, and a settable clock. Usable by every controller test module."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from sgcommon.engine import connect
from sgcommon.engine.swarm import SwarmAdapter
from tests.fakes.engine import EngineProfile, FakeEngine, Timing

NODES = ("manager-1", "worker-1", "worker-2")


class FakeClock:
    """A clock tests advance by hand: `clock()` reads it, `clock.advance(s)` moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def fake_engine(engine_mode: EngineProfile) -> Iterator[FakeEngine]:
    """A started fake engine (manager-1 plus worker-1, worker-2) with short task delays, once per
    engine profile; fails the test at teardown if any request hit a route the fake does not know."""
    with FakeEngine(NODES[0], workers=NODES[1:], timing=Timing(0.02, 0.02, 0.02), profile=engine_mode) as engine:
        yield engine
        engine.assert_no_unknown_routes()


@pytest.fixture
def swarm(fake_engine: FakeEngine) -> Iterator[SwarmAdapter]:
    """The real Swarm adapter talking to the fake engine, with tiny back-off delays."""
    client = connect(fake_engine.base_url, timeout=5)
    yield SwarmAdapter(client, backoff=(0.01, 0.02, 0.04))
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
