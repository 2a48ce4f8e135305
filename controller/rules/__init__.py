"""Rule files for the controller: the YAML format, the safe condition language, thresholds.

`load_rules(paths, overrides=...)` gives an immutable RuleSet or raises RuleError with
every problem as "file:line: rule NAME: message". docs/rules.md documents the format.
"""
from controller.rules.expr import Condition, ContainerEnv, ExprError, ServiceEnv, compile_condition
from controller.rules.loader import load_rule_texts, load_rules, parse_duration, rule_files
from controller.rules.ruleset import Rule, RuleError, RuleSet
from controller.rules.thresholds import (
    ENV_PREFIX,
    merge_overrides,
    parse_threshold,
    parse_threshold_args,
    thresholds_from_env,
)

__all__ = [
    "Condition", "ContainerEnv", "ENV_PREFIX", "ExprError", "Rule", "RuleError", "RuleSet", "ServiceEnv",
    "compile_condition", "load_rule_texts", "load_rules", "merge_overrides", "parse_duration", "parse_threshold",
    "parse_threshold_args", "rule_files", "thresholds_from_env",
]
