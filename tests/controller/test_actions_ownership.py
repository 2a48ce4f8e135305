"""The ownership labels the actions write on services (placement: tests/common/test_placement.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.actions.ownership import (
    ACTION_LABEL,
    EXCLUSIONS_LABEL,
    LabelError,
    read_action,
    read_exclusions,
    write_action,
    write_exclusions,
)


def test_exclusions_round_trip_and_an_empty_map_removes_the_label() -> None:
    label = write_exclusions({"worker-1": 100.0, "vm": 50.5})
    assert read_exclusions({EXCLUSIONS_LABEL: label}) == {"worker-1": 100.0, "vm": 50.5}
    assert write_exclusions({}) is None
    assert read_exclusions({}) == {}


def test_an_action_marker_round_trips() -> None:
    label = write_action(id="x", action="migrate", node="worker-1", task="t", started=1.5)
    assert read_action({ACTION_LABEL: label}) == {"id": "x", "action": "migrate", "node": "worker-1", "task": "t", "started": 1.5}


@given(st.text(max_size=60))
def test_any_label_text_reads_as_exclusions_or_a_clear_label_error(text: str) -> None:
    try:
        result = read_exclusions({EXCLUSIONS_LABEL: text})
    except LabelError as exc:
        assert EXCLUSIONS_LABEL in str(exc)
    else:
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in result.items())


@given(st.text(max_size=60))
def test_any_label_text_reads_as_an_action_or_a_clear_label_error(text: str) -> None:
    try:
        result = read_action({ACTION_LABEL: text})
    except LabelError as exc:
        assert ACTION_LABEL in str(exc)
    else:
        assert result is None or isinstance(result["action"], str)


@pytest.mark.parametrize("label", ["[1]", '{"n": "soon"}', '{"n": true}', "{"])
def test_malformed_exclusions_are_refused(label: str) -> None:
    with pytest.raises(LabelError):
        read_exclusions({EXCLUSIONS_LABEL: label})
