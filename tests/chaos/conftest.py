"""Fixtures of the chaos tests: the lab (brought up and built when it is not, as for tests/lab)."""
from __future__ import annotations

import pytest

from labkit import labinfo
from tests.lab.conftest import ensure_lab


@pytest.fixture(scope="session")
def lab() -> labinfo.Lab:
    return ensure_lab()
