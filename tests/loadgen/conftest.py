"""The lab fixture for scenario 2's lab test: the same lab, brought up the same way, as tests/lab."""
from __future__ import annotations

import pytest

from tests.lab.conftest import ensure_lab
from labkit import labinfo


@pytest.fixture(scope="session")
def lab() -> labinfo.Lab:
    return ensure_lab()
