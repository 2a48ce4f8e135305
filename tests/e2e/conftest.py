"""Fixtures of the end-to-end tests: the lab (brought up and built when it is not, as for tests/lab)."""
from __future__ import annotations

import pytest

from tests.lab.conftest import ensure_lab
from labkit import labinfo


@pytest.fixture(scope="session")
def lab() -> labinfo.Lab:
    return ensure_lab()
