"""Hot reload with real files in tmp_path, polled through check_now() (no long sleeps)."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller import reload
from controller.reload import RuleWatcher
from controller.rules import RuleError, load_rules
from tests.controller.test_runtime import make_rig

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


# -- failures of every kind: counted, logged, last good rules kept, retried when something changes ----

def failures(registry: CollectorRegistry) -> float:
    return metric(registry, "swarmguard_rules_reload_total", result="failure")


def test_an_unexpected_error_is_a_counted_failure_and_a_later_fix_is_picked_up(
        rules_dir: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    good = watcher.current()
    real_load = load_rules

    def load(paths: list[str], **kwargs: object) -> object:
        if "surprise" in (rules_dir / "a.yml").read_text():
            raise KeyError("surprise")
        return real_load(paths, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(reload, "load_rules", load)
    write(rules_dir / "a.yml", RULE.format(limit=75, name="surprise"))
    with caplog.at_level(logging.ERROR, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is False
    assert watcher.current() is good
    assert failures(registry) == 1 and metric(registry, "swarmguard_rules_last_reload_success") == 0
    rejected = [r for r in caplog.records if r.getMessage() == "rule files rejected, previous rules stay in effect"]
    assert rejected and "unexpected error while loading the rule files: KeyError" in \
        rejected[0].fields["errors"][0]  # type: ignore[attr-defined]
    assert watcher.check_now() is False and failures(registry) == 1  # the same state is not tried again
    write(rules_dir / "a.yml", RULE.format(limit=75, name="fixed"))
    assert watcher.check_now() is True and names(watcher) == ["fixed"]
    assert metric(registry, "swarmguard_rules_last_reload_success") == 1


def test_a_file_read_mid_write_is_retried_when_its_bytes_change_though_stat_does_not(
        rules_dir: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "a.yml", "rules: [")  # half written
    signature = watcher._scan()
    monkeypatch.setattr(watcher, "_scan", lambda: signature)  # a coarse clock tick: size, mtime, ctime all alike
    assert watcher.check_now() is False and failures(registry) == 1
    assert watcher.check_now() is False and failures(registry) == 1  # same bytes: not loaded again
    (rules_dir / "a.yml").write_text(RULE.format(limit=75, name="written"))
    assert watcher.check_now() is True and names(watcher) == ["written"]


def test_a_transient_read_error_is_retried_on_the_next_look(rules_dir: Path, registry: CollectorRegistry,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    write(rules_dir / "a.yml", RULE.format(limit=75, name="second"))
    real_open, calls = os.open, list[str]()

    def flaky(name: str, flags: int, *args: int) -> int:
        if name.endswith("a.yml") and len(calls) < 2:  # the digest and the load of this look
            calls.append(name)
            raise OSError(5, "Input/output error", name)
        return real_open(name, flags, *args)
    monkeypatch.setattr(os, "open", flaky)
    assert watcher.check_now() is False and names(watcher) == ["first"]
    assert watcher.check_now() is True and names(watcher) == ["second"]


def test_deleting_every_rule_file_keeps_the_last_good_rules_and_says_so(
        rules_dir: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    (rules_dir / "a.yml").unlink()
    with caplog.at_level(logging.ERROR, logger="swarmguard.controller.rules"):
        assert watcher.check_now() is False
    assert names(watcher) == ["first"]
    assert failures(registry) == 1 and metric(registry, "swarmguard_rules_last_reload_success") == 0
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.fields["errors"] == [f"no rule files (*.yml, *.yaml) in {rules_dir}"]  # type: ignore[attr-defined]
    assert record.fields["rules_in_effect"] == 1  # type: ignore[attr-defined]
    write(rules_dir / "b.yml", RULE.format(limit=75, name="back"))
    assert watcher.check_now() is True and names(watcher) == ["back"]


def test_a_fifo_in_the_rule_directory_does_not_block_the_reloader(rules_dir: Path,
                                                                   registry: CollectorRegistry) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)
    os.mkfifo(rules_dir / "pipe.yml")
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(watcher.check_now()), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and results == [False]
    assert names(watcher) == ["first"] and failures(registry) == 1
    (rules_dir / "pipe.yml").unlink()
    assert watcher.check_now() is True and names(watcher) == ["first"]


def test_check_now_never_raises_even_when_looking_at_the_files_fails(rules_dir: Path, registry: CollectorRegistry,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = RuleWatcher(str(rules_dir), registry=registry)

    def broken_scan() -> object:
        raise MemoryError("no memory")
    monkeypatch.setattr(watcher, "_scan", broken_scan)
    assert watcher.check_now() is False
    assert failures(registry) == 1 and metric(registry, "swarmguard_rules_last_reload_success") == 0
    assert names(watcher) == ["first"]


def test_an_unexpected_error_at_start_is_a_rule_error(tmp_path: Path, registry: CollectorRegistry,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "a.yml", RULE.format(limit=75, name="first"))

    def explode(*args: object, **kwargs: object) -> object:
        raise RecursionError("deep")
    monkeypatch.setattr(reload, "load_rules", explode)
    with pytest.raises(RuleError, match="unexpected error while loading the rule files: RecursionError: deep"):
        RuleWatcher(str(tmp_path), registry=registry)
