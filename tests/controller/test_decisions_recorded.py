"""The engine's decisions over a seeded run (tests/controller/decisions_replay.py) are the ones recorded
with the engine before the rule state changed shape: a change of how the state is kept must not change
a decision, its order or its t0."""
from __future__ import annotations

import json
from pathlib import Path

from tests.controller.decisions_replay import replay

RECORDED = Path(__file__).parent / "data" / "default_decisions.json"


def test_the_default_rules_make_the_recorded_decisions_in_the_recorded_order() -> None:
    recorded = json.loads(RECORDED.read_text())
    made = replay()
    assert len(recorded) > 100  # the run fires rules of every kind: a test of something
    assert {kind for _, kind, *_ in recorded} == {"cycle", "alert"}
    assert made == recorded
