"""The rule set the rebalance lab test applies (labkit/rebalance_lab.py), without the lab: the
checkout's rule files plus the shipped rebalance rule enabled for web-stress, checked as `rules
apply` checks a set, and built without writing anything into the rule directory it reads."""
from __future__ import annotations

import shutil
from pathlib import Path

from controller.rules import load_rule_texts
from labkit.controller_api import APP_SERVICE
from labkit.rebalance_lab import LAB_RULE_FILE, RULE_NAME, RULES_DIR, lab_rule_set


def test_the_lab_rule_set_is_the_rule_files_plus_the_rebalance_rule_enabled_for_web_stress_only() -> None:
    bundle = lab_rule_set(RULES_DIR)
    shipped = sorted(path.name for path in RULES_DIR.glob("*.yml") if path.name != LAB_RULE_FILE)
    assert list(bundle.file_names) == [*shipped, LAB_RULE_FILE]
    rules = {rule.name: rule for rule in load_rule_texts(bundle.files).rules}
    lab = rules[f"{RULE_NAME}-lab"]
    assert lab.enabled and lab.services == (APP_SERVICE,) and lab.action.name == "rebalance"
    assert rules[RULE_NAME].condition is not None and bundle.problems() == []


def test_building_the_lab_rule_set_writes_nothing_into_the_rule_directory(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir, ignore=shutil.ignore_patterns(LAB_RULE_FILE))
    before = sorted((p.name, p.read_bytes()) for p in rules_dir.rglob("*") if p.is_file())
    lab_rule_set(rules_dir)
    assert sorted((p.name, p.read_bytes()) for p in rules_dir.rglob("*") if p.is_file()) == before


def test_a_lab_rule_file_left_in_the_directory_by_an_older_run_is_not_in_the_set_twice(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    (rules_dir / LAB_RULE_FILE).write_text("rules: []\n")
    bundle = lab_rule_set(rules_dir)
    assert bundle.file_names.count(LAB_RULE_FILE) == 1 and bundle.problems() == []
