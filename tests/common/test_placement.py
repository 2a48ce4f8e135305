"""Swarm placement constraints judged as swarmkit judges them (the lab test checks the same table
against a real engine: tests/lab/test_placement_on_lab.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgcommon.engine.placement import (
    EQ,
    NE,
    Constraint,
    ConstraintError,
    eligible_nodes,
    matches,
    parse,
    satisfies,
)
from sgcommon.engine.swarm import NodeView

NODES = [
    NodeView(id="a1", hostname="manager-1", role="manager", state="ready", availability="active", addr="10.0.0.1",
             platform_os="linux", platform_arch="x86_64"),
    NodeView(id="b2", hostname="worker-1", role="worker", state="ready", availability="active", addr="10.0.0.11",
             labels={"zone": "x", "Rack": "7"}, platform_os="linux", platform_arch="x86_64",
             engine_labels={"disk": "ssd"}),
    NodeView(id="c3", hostname="worker-2", role="worker", state="down", availability="active", addr="10.0.1.12"),
    NodeView(id="d4", hostname="worker-3", role="worker", state="ready", availability="drain"),
]
WORKER_1 = NODES[1]


@pytest.mark.parametrize(("constraint", "expected"), [
    ("node.hostname==worker-1", True),
    ("node.hostname != worker-1", False),
    ("  node.hostname  ==  worker-1  ", True),  # key and value are trimmed
    ("node.hostname==WORKER-1", True),  # values compare case-insensitively
    ("NODE.Hostname==worker-1", True),  # and so do the keys Swarm knows
    ("node.hostname==worker", False),  # whole strings, no prefix match
    ("node.hostname==worker-*", False),  # no globbing: `*` is a plain character
    ("node.role==worker", True),
    ("node.role==WORKER", True),
    ("node.role!=manager", True),
    ("node.id==b2", True),
    ("node.id==B2", True),
    ("node.labels.zone==x", True),
    ("node.labels.zone==X", True),  # label values too
    ("node.labels.zone!=x", False),
    ("NODE.LABELS.zone==x", True),  # the prefix is case-insensitive ...
    ("node.labels.ZONE==x", False),  # ... the label name is not
    ("node.labels.Rack==7", True),
    ("node.labels.rack==7", False),
    ("node.labels.missing==x", False),  # a missing label is the empty string
    ("node.labels.missing!=x", True),
    ("engine.labels.disk==ssd", True),
    ("engine.labels.disk!=ssd", False),
    ("engine.labels.gpu!=yes", True),
    ("node.platform.os==linux", True),
    ("node.platform.os==Linux", True),
    ("node.platform.arch!=x86_64", False),
    ("node.ip==10.0.0.11", True),
    ("node.ip!=10.0.0.11", False),
    ("node.ip==10.0.0.0/24", True),  # a network: does it contain the node's address
    ("node.ip!=10.0.0.0/24", False),
    ("node.ip==10.0.1.0/24", False),
    ("node.ip==::ffff:10.0.0.11", True),  # an IPv4-mapped address is the IPv4 address
    ("node.ip==worker-1", False),  # neither address nor network: no node, whatever the operator
    ("node.ip!=worker-1", False),
    ("node.name==worker-1", False),  # a key Swarm does not know: no node, whatever the operator
    ("node.name!=worker-1", False),
    ("node.labels.==x", False),  # the bare prefix is not a label key
])
def test_a_constraint_is_judged_on_a_node_as_swarm_judges_it(constraint: str, expected: bool) -> None:
    assert matches(WORKER_1, parse(constraint)) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected one operator"),
    (" ", "expected one operator"),
    ("nodeabc", "expected one operator"),
    ("node ~ abc", "expected one operator"),
    ("node.hostname=worker-1", "expected one operator"),
    ("1node==a2", "key '1node' is invalid"),
    ("n==a", "key 'n' is invalid"),  # a key has two characters at least
    ("no de==node1", "key 'no de' is invalid"),
    ("no*de==node1", "key 'no*de' is invalid"),
    ("==node1", "key '' is invalid"),
    ("node==", "value '' is invalid"),
    ("node== ", "value '' is invalid"),
    ("node==a=b", "value 'a=b' is invalid"),
    ("node.hostname!==x", "key 'node.hostname!' is invalid"),  # `==` is looked for first
    ("node==x!=y", "value 'x!=y' is invalid"),
    ("node==é", "value 'é' is invalid"),
])
def test_an_expression_the_engine_refuses_is_a_constraint_error(text: str, message: str) -> None:
    with pytest.raises(ConstraintError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_keys_may_hold_capitals_dots_and_a_leading_underscore_and_values_special_characters() -> None:
    assert parse("NoDe==node1") == Constraint("NoDe", EQ, "node1")
    assert parse("_node==_node1") == Constraint("_node", EQ, "_node1")
    assert parse("node.labels.a!=[a-b]+c*(n|b)/") == Constraint("node.labels.a", NE, "[a-b]+c*(n|b)/")
    assert parse("node==node 1").value == "node 1"


def test_eligible_nodes_are_ready_active_and_meet_every_constraint() -> None:
    names = [n.hostname for n in eligible_nodes(NODES, ["node.hostname!=manager-1", "engine.labels.disk==ssd"])]
    assert names == ["worker-1"]
    assert [n.hostname for n in eligible_nodes(NODES, [])] == ["manager-1", "worker-1"]
    assert eligible_nodes(NODES, ["node.role==worker", "node.hostname!=worker-1"]) == []


def test_a_list_that_does_not_parse_constrains_nothing_as_in_swarms_scheduler() -> None:
    assert satisfies(WORKER_1, ["node.hostname==manager-1", "broken"]) is True
    assert satisfies(WORKER_1, ["node.hostname==manager-1"]) is False


KNOWN_KEYS = st.sampled_from(["node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch",
                              "node.labels.zone", "node.labels.other", "engine.labels.disk", "engine.labels.x"])
VALUES = st.text(alphabet="abcxyzXYZ0123456789-_.:/ ", min_size=1, max_size=12).filter(lambda v: v.strip() != "")


@given(key=KNOWN_KEYS, value=VALUES)
def test_for_a_key_swarm_knows_equal_and_not_equal_are_opposites(key: str, value: str) -> None:
    for node in NODES:
        assert matches(node, parse(f"{key}=={value}")) is not matches(node, parse(f"{key}!={value}"))
