"""The controller's rules from the set applied to the cluster (a Swarm config), with the files as
the fallback: swapped in without a restart, validated again, refused whole when broken."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.reload import RuleWatcher
from controller.ruleconfigs import ACTIVE_LABEL, APPLIED_LABEL, SET_LABEL, RuleConfigs
from controller.rules import RuleError
from controller.rules.bundle import RuleBundle, name_of
from sgcommon.engine import EngineUnavailable
from sgcommon.engine.configs import ConfigView
from sgcommon.engine.swarm import SwarmAdapter
from tests.controller.conftest import FakeClock
from tests.controller.test_reload import RULE, metric, names, write
from tests.fakes.engine import FakeEngine

REJECTED = "rule files rejected, previous rules stay in effect"


def rule_set(limit: int, name: str = "applied") -> RuleBundle:
    return RuleBundle((("default.yml", RULE.format(limit=limit, name=name).encode()),))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    write(tmp_path / "default.yml", RULE.format(limit=75, name="from-files"))
    return tmp_path


@pytest.fixture
def configs(swarm: SwarmAdapter) -> RuleConfigs:
    return RuleConfigs(swarm)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def watcher_of(rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry, **kwargs: object) -> RuleWatcher:
    return RuleWatcher(str(rules_dir), registry=registry, configs=configs, configs_interval=0.0,
                       clock=lambda: 1_800_000_000.0, **kwargs)  # type: ignore[arg-type]


def info(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """swarmguard_rules_info as {(set, source): value}."""
    return {(s.labels["set"], s.labels["source"]): s.value
            for m in registry.collect() if m.name == "swarmguard_rules_info" for s in m.samples}


def test_without_an_applied_set_the_files_are_in_effect_under_their_content_name(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    files_name = rule_set(75, "from-files").name  # the directory holds exactly that file
    assert names(watcher) == ["from-files"] and watcher.source == ("files", files_name)
    assert info(registry) == {(files_name, "files"): 1.0}
    assert metric(registry, "swarmguard_rules_applied_timestamp_seconds") == 1_800_000_000.0


def test_an_applied_set_takes_effect_on_the_next_look_and_is_shown_on_the_metrics(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    applied = configs.apply(rule_set(90)).config
    with caplog.at_level(logging.INFO, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is True
    assert names(watcher) == ["applied"] and watcher.current().thresholds["cpu_high"] == 90
    assert watcher.source == ("config", applied.name)
    assert info(registry) == {(applied.name, "config"): 1.0}
    assert metric(registry, "swarmguard_rules_reload_total", result="success") == 2
    [line] = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "rules reloaded"]
    assert line["source"] == "config" and line["set"] == applied.name and line["files"] == ["default.yml"]
    assert watcher.check_now() is False  # the same set: nothing to do


def test_a_controller_that_starts_while_a_set_is_applied_starts_with_it(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry) -> None:
    applied = configs.apply(rule_set(90)).config
    watcher = watcher_of(rules_dir, configs, registry)  # a rescheduled controller: a new process
    assert names(watcher) == ["applied"] and watcher.source == ("config", applied.name)


def test_while_a_set_is_applied_the_files_are_not_in_effect_and_after_a_reset_they_are_again(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    configs.apply(rule_set(90))
    assert watcher.check_now() is True
    write(rules_dir / "default.yml", RULE.format(limit=60, name="edited-file"))
    assert watcher.check_now() is False and names(watcher) == ["applied"]
    configs.reset()
    assert watcher.check_now() is True and names(watcher) == ["edited-file"]
    assert watcher.source[0] == "files"


def test_a_broken_applied_set_is_refused_with_file_and_line_and_the_last_good_rules_stay(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry, swarm: SwarmAdapter,
        caplog: pytest.LogCaptureFixture) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    good = configs.apply(rule_set(90)).config
    assert watcher.check_now() is True
    broken = RuleBundle((("default.yml", b"rules:\n  - name: bad\n    when: cpu >> 2\n    action: migrate\n"),))
    configs.apply(broken)  # what an operator cannot do with `rules apply`, which validates first
    with caplog.at_level(logging.ERROR, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is False
        assert watcher.check_now() is False  # a config never changes: not tried (nor logged) again
    assert names(watcher) == ["applied"] and watcher.source == ("config", good.name)
    assert metric(registry, "swarmguard_rules_reload_total", result="failure") == 1
    assert metric(registry, "swarmguard_rules_last_reload_success") == 0
    [record] = [r for r in caplog.records if r.getMessage() == REJECTED]
    fields = record.__dict__["fields"]
    assert fields["errors"][0].startswith("default.yml:3: rule bad: when:")
    assert fields["rejected_source"] == "config" and fields["rejected_set"] == broken.name
    assert fields["set"] == good.name
    configs.apply(rule_set(91))  # the operator fixes it: taken at once
    assert watcher.check_now() is True and watcher.current().thresholds["cpu_high"] == 91
    assert metric(registry, "swarmguard_rules_last_reload_success") == 1


def test_the_set_in_effect_applied_again_after_a_refused_one_is_taken_again_and_reads_as_a_success(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    good = configs.apply(rule_set(90)).config
    assert watcher.check_now() is True
    configs.apply(RuleBundle((("default.yml", b"rules:\n  - name: bad\n    when: cpu >> 2\n    action: migrate\n"),)))
    assert watcher.check_now() is False
    assert metric(registry, "swarmguard_rules_last_reload_success") == 0
    again = configs.apply(rule_set(90))  # the roll-back: the same content, the same config
    assert not again.created and again.config.id == good.id
    with caplog.at_level(logging.INFO, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is True
        assert watcher.check_now() is False  # taken once, not at every look
    assert watcher.source == ("config", good.name) and watcher.current().thresholds["cpu_high"] == 90
    assert metric(registry, "swarmguard_rules_last_reload_success") == 1
    [line] = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "rules reloaded"]
    assert line["set"] == good.name and line["applied"] == again.config.labels[APPLIED_LABEL]


@pytest.mark.parametrize(("data", "labels_name", "message"), [
    (b"not json", None, "not a rule set stored by `swarmguard-controller rules apply`"),
    (b'{"files":[{"name":"x.yml","text":"rules: []"}],"format":1}', "swarmguard-rules-000000000000",
     "its name does not match its content"),
    (b'{"files":[{"name":"../../etc/x.yml","text":"rules: []"}],"format":1}', None, "is not a rule file name"),
])
def test_a_config_not_made_by_rules_apply_is_refused_whatever_it_holds(
        rules_dir: Path, configs: RuleConfigs, registry: CollectorRegistry, fake_engine: FakeEngine,
        data: bytes, labels_name: str | None, message: str, caplog: pytest.LogCaptureFixture) -> None:
    watcher = watcher_of(rules_dir, configs, registry)
    fake_engine.create_config(labels_name or name_of(data), data, {SET_LABEL: "1", ACTIVE_LABEL: "true"})
    with caplog.at_level(logging.ERROR, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is False
    assert names(watcher) == ["from-files"]
    [record] = [r for r in caplog.records if r.getMessage() == REJECTED]
    assert message in record.__dict__["fields"]["errors"][0]


def test_the_threshold_overrides_apply_to_an_applied_set_too(rules_dir: Path, configs: RuleConfigs,
                                                             registry: CollectorRegistry) -> None:
    watcher = watcher_of(rules_dir, configs, registry, overrides={"cpu_high": 99})
    configs.apply(rule_set(90))
    assert watcher.check_now() is True and watcher.current().thresholds["cpu_high"] == 99
    unknown = RuleBundle((("default.yml", b"rules:\n  - {name: x, when: cpu > 1, action: migrate}\n"),))
    configs.apply(unknown)  # no cpu_high in it: the override names an unknown threshold
    assert watcher.check_now() is False and watcher.current().thresholds["cpu_high"] == 99


def test_an_engine_that_cannot_be_asked_changes_nothing_and_is_logged_once(
        rules_dir: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    class Unreachable:
        def active(self) -> ConfigView | None:
            raise EngineUnavailable("list configs: engine unreachable (ConnectionError)")

    watcher = RuleWatcher(str(rules_dir), registry=registry, configs=Unreachable(),  # type: ignore[arg-type]
                          configs_interval=0.0)
    with caplog.at_level(logging.WARNING, logger="swarmguard.controller.rules"):
        for _ in range(3):
            assert watcher.check_now() is False
    assert names(watcher) == ["from-files"]
    warned = [r for r in caplog.records if r.getMessage() == "cannot look at the applied rule set; the rules in effect stay"]
    assert len(warned) == 1  # the constructor's look; then nothing until it answers again
    write(rules_dir / "default.yml", RULE.format(limit=70, name="still-hot-reloaded"))
    assert watcher.check_now() is True and names(watcher) == ["still-hot-reloaded"]


def test_the_applied_set_is_looked_at_once_per_interval(rules_dir: Path, configs: RuleConfigs,
                                                        registry: CollectorRegistry, fake_engine: FakeEngine) -> None:
    ticks = FakeClock(100.0)
    watcher = RuleWatcher(str(rules_dir), registry=registry, configs=configs, configs_interval=1.0, monotonic=ticks)
    configs.apply(rule_set(90))

    def looks() -> int:
        return sum(1 for method, path in fake_engine.requests if method == "GET" and path == "/configs")

    before = looks()
    ticks.advance(0.5)
    assert watcher.check_now() is False and looks() == before  # not due yet: the files are checked
    ticks.advance(0.5)
    assert watcher.check_now() is True and looks() == before + 1


def test_broken_files_at_start_still_stop_the_controller_even_with_a_good_applied_set(
        tmp_path: Path, configs: RuleConfigs, registry: CollectorRegistry) -> None:
    write(tmp_path / "default.yml", "rules: [")
    configs.apply(rule_set(90))
    with pytest.raises(RuleError):
        RuleWatcher(str(tmp_path), registry=registry, configs=configs)
