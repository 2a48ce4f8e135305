"""Stored rule sets and which one is active (controller/ruleconfigs.py), on the fake engine."""
from __future__ import annotations

import itertools

import pytest

from controller.ruleconfigs import ACTIVE_LABEL, APPLIED_LABEL, FILES_LABEL, SET_LABEL, RuleConfigs
from controller.rules.bundle import RuleBundle
from sgcommon.engine import EngineError
from sgcommon.engine.swarm import SwarmAdapter
from tests.fakes.engine import FakeEngine


def bundle(limit: int, name: str = "default.yml") -> RuleBundle:
    text = f"thresholds:\n  cpu_high: {limit}\nrules:\n  - {{name: hot, when: cpu > cpu_high, action: migrate}}\n"
    return RuleBundle(((name, text.encode()),))


@pytest.fixture
def configs(swarm: SwarmAdapter) -> RuleConfigs:
    ticks = itertools.count()
    return RuleConfigs(swarm, clock=lambda: 1_800_000_000.25 + next(ticks))


def test_nothing_is_active_until_a_set_is_applied(configs: RuleConfigs) -> None:
    assert configs.active() is None and configs.stored() == []


def test_an_applied_set_is_stored_under_its_content_name_with_its_labels_and_active(configs: RuleConfigs) -> None:
    applied = configs.apply(bundle(80))
    assert applied.created and applied.deactivated == ()
    config = applied.config
    assert config.name == bundle(80).name and config.data == bundle(80).encode()
    assert config.labels == {SET_LABEL: "1", FILES_LABEL: "default.yml", ACTIVE_LABEL: "true",
                             APPLIED_LABEL: "2027-01-15T08:00:00.250000Z"}
    assert configs.active() == config and configs.stored() == [config]


def test_applying_another_set_makes_it_active_and_the_previous_one_is_kept_inactive(configs: RuleConfigs) -> None:
    first = configs.apply(bundle(80)).config
    second = configs.apply(bundle(90))
    assert second.deactivated == (first.name,)
    assert configs.active() == second.config
    assert [c.name for c in configs.stored()] == [second.config.name, first.name]  # most recently applied first
    assert ACTIVE_LABEL not in configs.stored()[1].labels


def test_applying_a_stored_set_again_reuses_its_config_and_makes_it_active(configs: RuleConfigs,
                                                                           fake_engine: FakeEngine) -> None:
    first = configs.apply(bundle(80)).config
    configs.apply(bundle(90))
    again = configs.apply(bundle(80))
    assert not again.created and again.config.id == first.id
    assert configs.active() is not None and configs.active().id == first.id  # type: ignore[union-attr]
    assert len(configs.stored()) == 2


def test_applying_the_active_set_again_changes_nothing_but_its_applied_time(swarm: SwarmAdapter) -> None:
    times = iter([1.0, 2.0])
    configs = RuleConfigs(swarm, clock=lambda: next(times))
    first = configs.apply(bundle(80)).config
    again = configs.apply(bundle(80))
    assert again.config.id == first.id and again.deactivated == ()
    assert again.config.labels[APPLIED_LABEL] == "1970-01-01T00:00:02.000000Z"


def test_of_two_sets_labelled_active_the_one_written_last_is_active(configs: RuleConfigs, swarm: SwarmAdapter) -> None:
    a = swarm.create_config(bundle(70).name, bundle(70).encode(), labels={SET_LABEL: "1", ACTIVE_LABEL: "true"})
    b = swarm.create_config(bundle(71).name, bundle(71).encode(), labels={SET_LABEL: "1", ACTIVE_LABEL: "true"})
    assert configs.active() == b
    touched = swarm.update_config_labels(a.id, {"note": "touched"})  # an interrupted apply of `a`, say
    assert configs.active() == touched


def test_an_apply_does_not_take_the_label_from_a_set_applied_after_it(configs: RuleConfigs, swarm: SwarmAdapter,
                                                                        fake_engine: FakeEngine) -> None:
    mine = configs.apply(bundle(80)).config
    later = swarm.create_config(bundle(95).name, bundle(95).encode(), labels={SET_LABEL: "1", ACTIVE_LABEL: "true"})
    assert later.version > mine.version
    # What an apply of `mine` racing with `later` would find: it only takes the label off older sets.
    again = configs.apply(bundle(80))
    assert again.deactivated == (later.name,)  # `mine` was rewritten after `later`, so `later` is the older one
    assert configs.active() is not None and configs.active().id == mine.id  # type: ignore[union-attr]


def test_a_config_with_the_sets_name_but_other_content_is_not_activated(configs: RuleConfigs,
                                                                         swarm: SwarmAdapter) -> None:
    swarm.create_config(bundle(80).name, b"something else", labels={})
    with pytest.raises(EngineError, match="exists with other content than the rule set"):
        configs.apply(bundle(80))
    assert configs.active() is None


def test_reset_leaves_no_set_active(configs: RuleConfigs) -> None:
    configs.apply(bundle(80))
    second = configs.apply(bundle(90)).config
    assert configs.reset() == [second.name]
    assert configs.active() is None and len(configs.stored()) == 2
    assert configs.reset() == []


def test_prune_keeps_the_active_set_and_the_most_recent_others(configs: RuleConfigs) -> None:
    names = [configs.apply(bundle(limit)).config.name for limit in (70, 71, 72, 73)]
    configs.apply(bundle(70))  # the oldest becomes the active one again
    removed = configs.prune(2)
    assert sorted(removed) == sorted([names[1], names[2]])
    assert {c.name for c in configs.stored()} == {names[0], names[3]}
    assert configs.active() is not None and configs.active().name == names[0]  # type: ignore[union-attr]
    assert configs.prune(1) == [names[3]]
    with pytest.raises(ValueError, match="keep must be >= 1"):
        configs.prune(0)


def test_configs_that_are_not_stored_rule_sets_are_never_listed_nor_pruned(configs: RuleConfigs,
                                                                           swarm: SwarmAdapter) -> None:
    swarm.create_config("grafana-dashboard-abc", b"{}", labels={})
    swarm.create_config("hand-made", b"{}", labels={SET_LABEL: "1"})
    configs.apply(bundle(80))
    assert [c.name for c in configs.stored()] == [bundle(80).name]
    assert configs.prune(1) == []
    assert {c.name for c in swarm.list_configs()} == {"grafana-dashboard-abc", "hand-made", bundle(80).name}
