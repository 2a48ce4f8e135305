"""Top-level test configuration; each suite keeps its own fixtures in its folder's conftest.

`engine_mode` is shared: every fixture that starts the fake Docker Engine takes it, so each
fake-engine test runs once against Docker Engine 20.10 (`[api-1.41]`) and once against a current
engine that refuses API 1.41 (`[current]`); tests/fakes/engine.py describes both.
"""
from __future__ import annotations

import pytest

from tests.fakes.engine import ENGINE_MODES, EngineProfile


@pytest.fixture(params=ENGINE_MODES, ids=lambda profile: profile.mode)
def engine_mode(request: pytest.FixtureRequest) -> EngineProfile:
    """The engine profile a fake-engine test runs against (one test per profile)."""
    profile: EngineProfile = request.param
    return profile
