"""Rule files: the shipped defaults, good and bad test files, overrides, every error at once."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.actions.migrate import MIGRATE
from controller.actions.registry import PLUGINS, param_defaults
from controller.actions.settings import ActionSettings
from controller.model import ContainerMetrics
from controller.rules import (
    ContainerEnv,
    RuleError,
    load_rules,
    merge_overrides,
    parse_duration,
    parse_threshold,
    parse_threshold_args,
    thresholds_from_env,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "rules" / "default.yml")
DATA = Path(__file__).parent / "data" / "rules"
MARKER = re.compile(r"#\s*error:\s*(.+)$")


def expected_errors(path: Path) -> list[tuple[int, str]]:
    """The (line, text) of every `# error: text` marker in a bad test file."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            found.append((number, match.group(1).strip()))
    return found


def load_errors(*paths: str, overrides: dict[str, float] | None = None) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_rules(list(paths), overrides=overrides or {})
    return caught.value.errors


def test_default_rules_ship_the_scenarios_the_predictive_rules_and_rebalancing_off() -> None:
    ruleset = load_rules([DEFAULT])
    assert dict(ruleset.thresholds) == {"cpu_high": 75, "mem_high": 80, "net_low": 35, "net_high": 65,
                                        "max_task_skew": 1, "trend_from": 50, "oom_from": 25}
    by_name = {rule.name: rule for rule in ruleset.rules}
    assert {name: rule.action.name for name, rule in by_name.items()} == {
        "scale-up-on-traffic": "scale_up", "migrate-on-container-problem": "migrate",
        "migrate-before-oom": "migrate", "migrate-before-oom-fast": "migrate", "migrate-before-memory-threshold": "migrate",
        "migrate-before-cpu-threshold": "migrate", "scale-down-when-idle": "scale_down",
        "rebalance-after-node-returns": "rebalance"}
    assert [rule.name for rule in ruleset.rules if not rule.enabled] == ["rebalance-after-node-returns"]
    rebalance = by_name["rebalance-after-node-returns"]
    assert rebalance.labels == (("swarmguard.enable", "true"),)
    assert rebalance.params["moved_hold"] == 600 and rebalance.cooldown == 30
    migrate = by_name["migrate-on-container-problem"]
    assert migrate.hold_samples == 2 and migrate.cooldown == 30
    assert by_name["migrate-before-oom"].hold_samples == 1  # a fast leak leaves no time for a second sample
    assert by_name["migrate-before-oom-fast"].hold_samples == 1
    scale_up = by_name["scale-up-on-traffic"]
    assert scale_up.hold_samples == 2 and scale_up.cooldown == 60 and scale_up.params["max_replicas"] == 10
    scale_down = by_name["scale-down-when-idle"]
    assert scale_down.scope == "service" and scale_down.params["min_replicas"] == 1


def test_default_rules_put_scale_up_before_migrate_explicitly() -> None:
    ruleset = load_rules([DEFAULT])
    order = [rule.action.name for rule in ruleset.rules]
    assert order == ["scale_up", "migrate", "migrate", "migrate", "migrate", "migrate", "scale_down", "rebalance"]
    priorities = [rule.priority for rule in ruleset.rules]
    assert priorities == sorted(priorities) and priorities[0] < priorities[1]


def test_default_rules_only_cover_services_that_opt_in_by_label() -> None:
    for rule in load_rules([DEFAULT]).rules:
        assert ("swarmguard.enable", "true") in rule.labels


def test_a_directory_loads_every_yml_file_and_thresholds_are_shared_between_files() -> None:
    ruleset = load_rules([str(DATA / "good" / "split")])
    assert [Path(f).name for f in ruleset.files] == ["rules.yml", "thresholds.yml"]
    assert ruleset.thresholds["cpu_high"] == 70
    names = [rule.name for rule in ruleset.rules]
    assert names == ["opted-in-scale-up", "web-migrate-smoothed", "quiet-service"]


def test_a_good_file_keeps_patterns_labels_durations_and_parameters() -> None:
    ruleset = load_rules([str(DATA / "good" / "split")])
    smoothed = ruleset.by_name("web-migrate-smoothed")
    assert smoothed is not None
    assert smoothed.services == ("web-*", "api")
    assert smoothed.cooldown == 45 and smoothed.params["exclusion_ttl"] == 600
    assert smoothed.condition.window == 3
    opted = ruleset.by_name("opted-in-scale-up")
    assert opted is not None and dict(opted.labels) == {"swarmguard.enable": "true", "tier": "*"}
    quiet = ruleset.by_name("quiet-service")
    assert quiet is not None and quiet.hold_seconds == 90 and quiet.enabled is False


def test_a_bad_file_reports_every_error_at_once_with_its_line() -> None:
    path = DATA / "bad" / "every_error.yml"
    errors = load_errors(str(path))
    expected = expected_errors(path)
    assert len(expected) >= 15
    for line, text in expected:
        assert any(e.startswith(f"{path}:{line}: ") and text in e for e in errors), (line, text, errors)
    assert len(errors) == len(expected), errors


def test_errors_come_in_file_and_line_order() -> None:
    path = DATA / "bad" / "every_error.yml"
    lines = [int(e[len(str(path)) + 1:].split(":", 1)[0]) for e in load_errors(str(path))]
    assert lines == sorted(lines)


def test_invalid_yaml_is_reported_with_its_line() -> None:
    path = DATA / "bad" / "not_yaml.yml"
    [error] = load_errors(str(path))
    assert error.startswith(f"{path}:7: not valid YAML")


def test_rule_names_and_threshold_values_must_not_clash_across_files() -> None:
    other = DATA / "bad" / "duplicate_elsewhere.yml"
    errors = load_errors(DEFAULT, str(other))
    assert any(e.startswith(f"{other}:3: thresholds: 'cpu_high' is already 75") for e in errors)
    assert any(e.startswith(f"{other}:5: rule migrate-on-container-problem: duplicate rule name") for e in errors)
    assert len(errors) == 2


def test_a_missing_path_is_an_error_not_an_empty_rule_set(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    assert load_errors(str(missing)) == [f"{missing}: no such file or directory"]


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yml"
    path.write_text("# nothing here\n")
    [error] = load_errors(str(path))
    assert error.startswith(f"{path}:1: the file is empty")


def test_overrides_replace_threshold_values_in_the_compiled_rules() -> None:
    ruleset = load_rules([DEFAULT], overrides={"cpu_high": 90})
    assert ruleset.thresholds["cpu_high"] == 90
    migrate = next(rule for rule in ruleset.rules if rule.action.name == "migrate")
    sample = ContainerMetrics("node-1", "web", "c1", "t1", 1.0, cpu=85, mem=10, mem_mb=50, net=5, net_rx=1, net_tx=1)
    env = ContainerEnv(sample, (sample,), None, 1)
    assert not migrate.condition.holds(env)
    assert "cpu_high=90" in migrate.condition.explain(env)
    default_migrate = next(rule for rule in load_rules([DEFAULT]).rules if rule.action.name == "migrate")
    assert default_migrate.condition.holds(env)


def test_an_override_for_an_unknown_threshold_is_an_error() -> None:
    errors = load_errors(DEFAULT, overrides={"cpu_hgh": 80})
    assert errors == ["threshold override: unknown threshold 'cpu_hgh' "
                      "(defined: cpu_high, max_task_skew, mem_high, net_high, net_low, oom_from, trend_from)"]


def test_thresholds_come_from_prefixed_environment_variables() -> None:
    env = {"SWARMGUARD_THRESHOLD_CPU_HIGH": "80", "SWARMGUARD_THRESHOLD_NET_LOW": " 30.5 ", "PATH": "/bin",
           "SWARMGUARD_THRESHOLD_MEM_HIGH": ""}
    assert thresholds_from_env(env) == {"cpu_high": 80.0, "net_low": 30.5}


def test_bad_environment_thresholds_are_all_reported() -> None:
    with pytest.raises(RuleError) as caught:
        thresholds_from_env({"SWARMGUARD_THRESHOLD_CPU_HIGH": "eighty", "SWARMGUARD_THRESHOLD_NET": "nan"})
    assert caught.value.errors == [
        "SWARMGUARD_THRESHOLD_CPU_HIGH: expected a number, got 'eighty'",
        "SWARMGUARD_THRESHOLD_NET: expected a finite number, got 'nan'",
    ]


def test_threshold_arguments_parse_name_equals_value() -> None:
    assert parse_threshold("cpu_high=80") == ("cpu_high", 80.0)
    assert parse_threshold_args(["cpu_high=80", "net_low=20", "cpu_high=85"]) == {"cpu_high": 85.0, "net_low": 20.0}
    for bad in ("cpu_high", "CPU=1", "cpu_high=x", "=3"):
        with pytest.raises(ValueError):
            parse_threshold(bad)


def test_command_line_overrides_win_over_the_environment() -> None:
    merged = merge_overrides({"SWARMGUARD_THRESHOLD_CPU_HIGH": "80", "SWARMGUARD_THRESHOLD_MEM_HIGH": "70"},
                             ["cpu_high=90"])
    assert merged == {"cpu_high": 90.0, "mem_high": 70.0}


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2m", 120), ("1h", 3600), ("500ms", 0.5), (45, 45),
                                               ("1.5s", 1.5), ("30 s", 30), (2.5, 2.5)])
def test_durations_accept_units_and_plain_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "10 days", True, None, "-5s", float("inf"), float("nan"), "30s\n",
                                  " 30s", "30s ", "\u0663\u0660s", "1e3s", "9" * 400 + "s", 10**400, [30], "30sec"])
def test_durations_refuse_anything_else(text: object) -> None:
    assert parse_duration(text) is None


def test_a_rule_carries_every_parameter_of_its_action_from_the_settings_unless_it_names_its_own(
        tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text("rules:\n"
                    "  - {name: move, when: cpu > 90, action: migrate}\n"
                    "  - {name: move-long, when: cpu > 95, action: migrate, exclusion_ttl: 1h}\n"
                    "  - {name: shrink, scope: service, when: avg(cpu) < 5, action: scale_down}\n")
    defaults = param_defaults(ActionSettings(exclusion_ttl=120.0, after_scale_up=30.0))
    params = {rule.name: dict(rule.params) for rule in load_rules([str(path)], defaults=defaults).rules}
    assert params == {"move": {"exclusion_ttl": 120.0}, "move-long": {"exclusion_ttl": 3600.0},
                      "shrink": {"min_replicas": 1, "after_scale_up": 30.0}}
    plain = {rule.name: dict(rule.params) for rule in load_rules([str(path)]).rules}
    assert plain["move"] == {"exclusion_ttl": MIGRATE.param("exclusion_ttl").default}


def test_action_parameters_are_checked_by_their_plugins_rules(tmp_path: Path) -> None:
    path = tmp_path / "r.yml"
    path.write_text("rules:\n"
                    "  - {name: a, when: cpu > 90, action: migrate, exclusion_ttl: 0.5s}\n"
                    "  - {name: b, scope: service, when: avg(cpu) < 5, action: scale_down, after_scale_up: soon}\n"
                    "  - {name: c, when: cpu > 90, action: migrate, after_scale_up: 1m}\n")
    errors = load_errors(str(path))
    assert any("rule a: exclusion_ttl must be a duration" in e and ">= 1" in e for e in errors)
    assert any("rule b: after_scale_up must be a duration" in e for e in errors)
    assert any("rule c: after_scale_up applies to scale_down rules, not migrate" in e for e in errors)
    assert len(errors) == 3


def test_each_action_parameter_default_lives_in_its_plugin_and_the_settings_start_from_it() -> None:
    settings = ActionSettings()
    for plugin in PLUGINS.values():
        for param in plugin.params:
            assert getattr(settings, param.name) == param.default, param.name
