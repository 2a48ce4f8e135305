"""Hypothesis settings for the project's fuzz tests: an explicit example budget per test, and
reproducible runs under CI (CI=true): derandomized, no example database, so every CI run tries
the same examples; elsewhere runs are random and keep failing examples in the local database.

Use `fuzz(n)` (pure functions) or `fuzz(n, io=True)` (files, HTTP clients: no deadline) as a
decorator. Profiles are registered here and passed as parents, never loaded globally, so other
suites' hypothesis settings are not changed.
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.support import in_ci

settings.register_profile("swarmguard-ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("swarmguard-dev")
PROFILE = settings.get_profile("swarmguard-ci" if in_ci() else "swarmguard-dev")


def fuzz(max_examples: int, *, io: bool = False) -> settings:
    return settings(
        parent=PROFILE,
        max_examples=max_examples,
        deadline=None if io else 2000,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
