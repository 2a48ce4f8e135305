"""Hot reload with real files in tmp_path, polled through check_now() (no long sleeps)."""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.reload import RuleWatcher
from tests.controller.test_runtime import make_rig
from controller.rules import RuleError

RULE = """
thresholds:
  cpu_high: {limit}
rules:
  - name: {name}
    when: cpu > cpu_high
    action: migrate
"""


def write(path: Path, text: str) -> None:
    """Writes and moves the mtime forward, so a rewrite within one clock tick is still seen."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    write(tmp_path / "a.yml", RULE.format(limit=75, name="first"))
    return tmp_path


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def names(watcher: RuleWatcher) -> list[str]:
    return [rule.name for rule in watcher.current().rules]


def test_the_first_load_is_counted_as_a_success(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    assert names(watcher) == ["first"]
    assert metric(registry, "swarmguard_rules_reload_total", result="success") == 1
    assert metric(registry, "swarmguard_rules_reload_total", result="failure") == 0
    assert metric(registry, "swarmguard_rules_last_reload_success") == 1


def test_nothing_changed_means_no_reload(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    assert watcher.check_now() is False
    assert metric(registry, "swarmguard_rules_reload_total", result="success") == 1


def test_a_changed_file_takes_effect(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "a.yml", RULE.format(limit=90, name="first"))
    assert watcher.check_now() is True
    assert watcher.current().thresholds["cpu_high"] == 90
    assert metric(registry, "swarmguard_rules_reload_total", result="success") == 2


def test_added_and_removed_files_take_effect(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "b.yaml", RULE.format(limit=75, name="second"))
    assert watcher.check_now() is True
    assert names(watcher) == ["first", "second"]
    (rules_dir / "a.yml").unlink()
    assert watcher.check_now() is True
    assert names(watcher) == ["second"]


def test_files_other_than_yml_are_ignored(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "notes.txt", "not rules")
    write(rules_dir / "a.yml.swp", "garbage")
    assert watcher.check_now() is False


def test_a_broken_file_is_rejected_logged_and_the_last_good_rules_keep_running(
        rules_dir: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    good = watcher.current()
    write(rules_dir / "a.yml", RULE.format(limit="high", name="first") + "    colour: red\n")
    with caplog.at_level(logging.ERROR, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is False
    assert watcher.current() is good
    assert metric(registry, "swarmguard_rules_reload_total", result="failure") == 1
    assert metric(registry, "swarmguard_rules_last_reload_success") == 0
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["error_count"] == 2 and len(fields["errors"]) == 2
    assert any("thresholds: cpu_high: expected a finite number" in e for e in fields["errors"])
    assert any("rule first: unknown key 'colour'" in e for e in fields["errors"])
    json.dumps(fields)  # the log line is JSON-serialisable


def test_a_broken_file_is_reported_once_and_a_fix_is_picked_up(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "a.yml", "rules: [")
    assert watcher.check_now() is False
    assert watcher.check_now() is False
    assert metric(registry, "swarmguard_rules_reload_total", result="failure") == 1
    write(rules_dir / "a.yml", RULE.format(limit=60, name="fixed"))
    assert watcher.check_now() is True
    assert names(watcher) == ["fixed"]
    assert metric(registry, "swarmguard_rules_last_reload_success") == 1


def test_overrides_apply_on_every_reload(rules_dir: Path, registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry, overrides={"cpu_high": 99})
    write(rules_dir / "a.yml", RULE.format(limit=10, name="first"))
    assert watcher.check_now() is True
    assert watcher.current().thresholds["cpu_high"] == 99


def test_broken_rules_at_start_refuse_to_start(tmp_path: Path, registry: CollectorRegistry) -> None:
    write(tmp_path / "a.yml", "rules: 5")
    with pytest.raises(RuleError, match="rules: expected a list of rules"):
        RuleWatcher(str(tmp_path), registry=registry)


def test_a_list_of_single_files_is_watched_too(rules_dir: Path, registry: CollectorRegistry) -> None:
    path = rules_dir / "a.yml"
    watcher = RuleWatcher([str(path)], registry=registry)
    write(path, RULE.format(limit=80, name="renamed"))
    assert watcher.check_now() is True
    assert names(watcher) == ["renamed"]


def test_the_runtimes_scheduled_check_applies_a_change_within_two_seconds(rules_dir: Path,
                                                                           registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    rig = make_rig(rules=watcher)  # the default schedule: the rule files are looked at every 0.5 s
    rig.runtime.start()
    try:
        write(rules_dir / "a.yml", RULE.format(limit=75, name="polled"))
        deadline = time.monotonic() + 2.0
        while names(watcher) != ["polled"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert names(watcher) == ["polled"]
    finally:
        rig.runtime.stop()
