"""The ownership labels and the placement-constraint evaluator the actions rely on."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.actions.ownership import (
    ACTION_LABEL,
    EXCLUSIONS_LABEL,
    LabelError,
    eligible_nodes,
    read_action,
    read_exclusions,
    satisfies,
    write_action,
    write_exclusions,
)
from sgcommon.engine.swarm import NodeView

NODES = [
    NodeView(id="a", hostname="manager-1", role="manager", state="ready", availability="active"),
    NodeView(id="b", hostname="worker-1", role="worker", state="ready", availability="active", labels={"zone": "x"}),
    NodeView(id="c", hostname="worker-2", role="worker", state="down", availability="active"),
    NodeView(id="d", hostname="worker-3", role="worker", state="ready", availability="drain"),
]


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


@pytest.mark.parametrize(("constraint", "expected"), [
    ("node.hostname==worker-1", True),
    ("node.hostname != worker-1", False),
    ("node.role==worker", True),
    ("node.labels.zone==x", True),
    ("node.labels.zone!=x", False),
    ("node.labels.rack==1", False),
    ("node.id==b", True),
    ("engine.labels.disk==ssd", None),
    ("nonsense", None),
])
def test_constraints_are_judged_like_swarm_or_declared_unknown(constraint: str, expected: bool | None) -> None:
    assert satisfies(NODES[1], constraint) is expected


def test_eligible_nodes_are_ready_active_and_meet_every_known_constraint() -> None:
    names = [n.hostname for n in eligible_nodes(NODES, ["node.hostname!=manager-1", "engine.labels.disk==ssd"])]
    assert names == ["worker-1"]
    assert [n.hostname for n in eligible_nodes(NODES, [])] == ["manager-1", "worker-1"]
