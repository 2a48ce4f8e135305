"""Hostile rule files: every class of input that once raised gives `file:line: ...` messages.

One example per class of failure (YAML tags, aliases, nesting, characters, numbers, keys,
documents, file types, names with a trailing newline); test_rules_fuzz.py then throws
generated input at the same code. Each example goes through `load_rules` (only RuleError
may come out) and through `check-rules` (exit 1, one `file:line:` line per error).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from controller import check_rules
from controller.rules import RuleError, load_rules
from controller.rules.loader import MAX_NESTING

ROOT = Path(__file__).resolve().parents[2]
RULE = "rules:\n  - name: r\n    when: cpu > 1\n    action: migrate\n"


def rule_with(line: str) -> str:
    """RULE with one more line in the rule (line 5 of the file)."""
    return RULE + f"    {line}\n"


# (id, file text, line of the message, a fragment of it)
CASES = [
    ("python-object-tag", "rules: !!python/object:os.system {}\n", 1, "not allowed"),
    ("python-name-tag", "rules:\n  - name: !!python/name:os.system\n    when: cpu > 1\n    action: migrate\n",
     2, "rule #1: name: YAML tag '!!python/name:os.system' is not allowed"),
    ("python-apply-in-a-rule", rule_with("labels: !!python/object/apply:os.system [id]"), 5,
     "rule r: labels: YAML tag"),
    ("int-tag-on-text", "thresholds:\n  a: !!int abc\n" + RULE, 2, "thresholds: a: 'abc' is not a whole number"),
    ("empty-int-tag", "thresholds:\n  a: !!int ''\n" + RULE, 2, "is not a whole number"),
    ("float-tag-on-text", "thresholds:\n  a: !!float x\n" + RULE, 2, "'x' is not a number"),
    ("bool-tag-on-text", rule_with("enabled: !!bool maybe"), 5, "rule r: enabled: 'maybe' is not true or false"),
    ("binary-tag", "thresholds:\n  a: !!binary AAAA\n" + RULE, 2, "YAML tag '!!binary' is not allowed"),
    ("bad-timestamp", "thresholds:\n  a: !!timestamp 2001-13-45\n" + RULE, 2, "'!!timestamp' is not allowed"),
    ("impossible-date", "thresholds:\n  a: 2001-13-45\n" + RULE, 2, "expected a finite number, got '2001-13-45'"),
    ("set-tag", rule_with("services: !!set {a, b}"), 5, "services: YAML tag '!!set'"),
    ("omap-tag", rule_with("labels: !!omap [{a: b}]"), 5, "labels: YAML tag '!!omap'"),
    ("local-tag-on-a-value", "thresholds:\n  a: !foo 3\n" + RULE, 2, "YAML tag '!foo' is not allowed"),
    ("local-tag-on-a-rule", "rules:\n  - !foo\n    name: r\n    when: cpu > 1\n    action: migrate\n", 2,
     "rule #1: YAML tag '!foo'"),
    ("local-tag-on-the-file", "--- !foo\n" + RULE, 1, "YAML tag '!foo'"),
    ("verbatim-tag", rule_with("description: !<tag:example.com,2000:x> hi"), 5, "description: YAML tag"),
    ("str-tag-on-a-mapping", "rules:\n  - !!str {name: r}\n", 2, "YAML tag '!!str' is not allowed"),
    ("self-referencing-alias", rule_with("labels: &a {x: *a}"), 5, "rule r: labels: a YAML alias refers to"),
    ("self-referencing-rule", "rules:\n  - &a\n    name: r\n    when: cpu > 1\n    action: migrate\n    labels: *a\n",
     2, "a YAML alias refers to the list or mapping that contains it"),
    ("undefined-alias", "rules: *nope\n", 1, "not valid YAML: found undefined alias"),
    ("deep-flow-nesting", "rules: " + "[" * 5000 + "]" * 5000 + "\n", 1, f"nested deeper than {MAX_NESTING} levels"),
    ("deep-block-nesting", "rules:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), 64, "nested deeper"),
    ("deep-in-a-field", rule_with("labels: " + "{a: " * 300 + "1" + "}" * 300), 5, "nested deeper"),
    ("nul-byte", "rules:\n  - name: r\x00\n", 2, "the character U+0000 is not allowed"),
    ("escape-character", "rules:\n  - name: r\x1b[31m\n", 2, "U+001B is not allowed"),
    ("escaped-control-character", rule_with('description: "bell\\a"'), 5, "description: text contains the character U+0007"),
    ("escaped-nul", rule_with('description: "a\\0b"'), 5, "U+0000"),
    ("escaped-lone-surrogate", rule_with('description: "\\ud800"'), 5, "U+D800"),
    ("lone-surrogate-in-a-name", 'rules:\n  - name: "\\udfff"\n    when: cpu > 1\n    action: migrate\n', 2,
     "rule #1: name: text contains the character U+DFFF"),
    ("lone-surrogate-key", 'thresholds:\n  "\\ud800": 1\n' + RULE, 2, "is not a valid name"),
    ("not-utf8", "rules:\n  - name: \udcff\n", 2, "not UTF-8 text"),
    ("1e999-threshold", "thresholds:\n  a: 1e999\n" + RULE, 2, "thresholds: a: expected a finite number, got inf"),
    ("minus-inf-threshold", "thresholds:\n  a: -.inf\n" + RULE, 2, "expected a finite number, got -inf"),
    ("nan-threshold", "thresholds:\n  a: .nan\n" + RULE, 2, "expected a finite number, got nan"),
    ("400-digit-threshold", "thresholds:\n  a: " + "9" * 400 + "\n" + RULE, 2, "expected a finite number, got 9999"),
    ("5000-digit-threshold", "thresholds:\n  a: " + "9" * 5000 + "\n" + RULE, 2, "is not a usable number"),
    ("base-60-giant", "thresholds:\n  a: " + "59:" * 3000 + "59\n" + RULE, 2, "expected a finite number"),
    ("400-digit-priority", rule_with("priority: " + "9" * 400), 5, "priority must be a whole number from 0 to"),
    ("400-digit-for", rule_with("for: " + "9" * 400), 5, "for must be a number of consecutive samples"),
    ("400-digit-cooldown", rule_with("cooldown: " + "9" * 400), 5, "cooldown must be a duration"),
    ("1e999-cooldown", rule_with("cooldown: 1e999"), 5, "cooldown must be a duration"),
    ("overflowing-duration", rule_with("cooldown: " + "9" * 400 + "h"), 5, "cooldown must be a duration"),
    ("overflowing-for-duration", rule_with("for: " + "9" * 400 + "ms"), 5, "for must be"),
    ("duration-beyond-a-year", rule_with("exclusion_ttl: 40000000"), 5, "exclusion_ttl must be a duration"),
    ("400-digit-max-replicas", "rules:\n  - name: r\n    when: cpu > 1\n    action: scale_up\n    max_replicas: "
     + "9" * 400 + "\n", 5, "max_replicas must be a whole number"),
    ("yes-as-a-threshold", "thresholds:\n  a: yes\n" + RULE, 2, "expected a finite number, got True"),
    ("on-as-a-priority", rule_with("priority: on"), 5, "priority must be a whole number"),
    ("off-as-for", rule_with("for: off"), 5, "for must be"),
    ("int-key", "1: 2\n" + RULE, 1, "keys must be plain strings, got '1'"),
    ("null-key", "~: 2\n" + RULE, 1, "keys must be plain strings"),
    ("list-key", "? [a]\n: 2\n" + RULE, 1, "keys must be plain strings, got a list or a mapping"),
    ("list-key-in-labels", rule_with("labels: {? [a] : 2}"), 5, "labels: a key must be a plain value"),
    ("duplicate-key-in-labels", rule_with("labels: {a: x, a: y}"), 5, "labels: duplicate key 'a'"),
    ("merge-key-in-a-rule", "base: &b {name: r, when: cpu > 1, action: migrate}\nrules:\n  - <<: *b\n", 3,
     "rule #1: merge keys (<<) are not supported"),
    ("merge-key-in-labels", rule_with("labels: {<<: {a: b}}"), 5, "labels: merge keys (<<) are not supported"),
    ("merge-key-with-a-scalar", "rules:\n  - <<: 5\n    name: r\n", 2, "merge keys"),
    ("empty-file", "", 1, "the file is empty"),
    ("only-a-document-marker", "---\n", 1, "the file is empty"),
    ("only-comments", "# nothing\n", 1, "the file is empty"),
    ("two-documents", RULE + "---\n" + RULE, 5, "a second document ('---')"),
    ("empty-documents", "---\n...\n---\n" + RULE, 3, "a second document"),
    ("rule-name-with-a-newline", 'rules:\n  - name: "r\\n"\n    when: cpu > 1\n    action: migrate\n', 2,
     "name must be letters, digits"),
    ("rule-name-with-trailing-space", 'rules:\n  - name: "r "\n    when: cpu > 1\n    action: migrate\n', 2,
     "name must be letters"),
    ("threshold-name-with-a-newline", 'thresholds:\n  "a\\n": 1\n' + RULE, 2, "is not a valid name"),
    ("duration-with-a-newline", rule_with('cooldown: "30s\\n"'), 5, "cooldown must be a duration"),
    ("service-pattern-with-a-newline", rule_with('services: ["web\\n"]'), 5, "is not a service name pattern"),
    ("label-name-with-a-newline", rule_with('labels: {"a\\n": b}'), 5, "is not a label name"),
    ("label-value-with-a-newline", rule_with('labels: {a: "b\\n"}'), 5, "a label value is one line"),
    ("overflowing-constant", "rules:\n  - name: r\n    when: cpu > 1e308 * 10\n    action: migrate\n", 3,
     "rule r: when: 1e308 * 10 is out of range"),
    ("overflowing-thresholds", "thresholds:\n  a: 1e308\n  b: 1e308\n"
     "rules:\n  - name: r\n    when: cpu > a + b\n    action: migrate\n", 6, "a + b is out of range"),
    ("huge-integer-literal", "rules:\n  - name: r\n    when: cpu > " + "9" * 400 + "\n    action: migrate\n", 3,
     "is out of range"),
]


def write(tmp_path: Path, text: str, name: str = "r.yml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def errors_of(*paths: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_rules(list(paths))
    return caught.value.errors


def check(*paths: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = check_rules.run(list(paths), out=out)
    return code, out.getvalue().splitlines()


@pytest.mark.parametrize(("text", "line", "fragment"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_each_hostile_input_is_a_rule_error_at_its_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    errors = errors_of(str(path))
    assert any(e.startswith(f"{path}:{line}: ") and fragment in e for e in errors), errors
    assert all(e.startswith(f"{path}:") and e.isprintable() and len(e) < 400 for e in errors), errors


@pytest.mark.parametrize(("text", "line", "fragment"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_check_rules_reports_each_hostile_input_in_place_and_exits_1(tmp_path: Path, text: str, line: int,
                                                                    fragment: str) -> None:
    path = write(tmp_path, text)
    code, lines = check(str(path))
    assert code == 1
    assert lines[-1].startswith("FAILED: ") and all(entry.startswith(f"{path}:") for entry in lines[:-1]), lines


def test_a_yaml_1_2_exponent_is_a_number_and_a_date_is_text(tmp_path: Path) -> None:
    path = write(tmp_path, "thresholds:\n  a: 1e3\n  b: 2.5E-1\nrules:\n  - name: r\n    description: 2024-01-31\n"
                           "    when: cpu > a * b\n    action: migrate\n")
    ruleset = load_rules([str(path)])
    assert dict(ruleset.thresholds) == {"a": 1000.0, "b": 0.25}
    assert ruleset.rules[0].description == "2024-01-31"


def test_explicit_plain_tags_that_fit_their_text_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "thresholds:\n  a: !!float 1\n  b: !!int 0x10\nrules:\n  - name: !!str r\n"
                           "    when: cpu > a + b\n    action: migrate\n    enabled: !!bool yes\n")
    ruleset = load_rules([str(path)])
    assert dict(ruleset.thresholds) == {"a": 1.0, "b": 16.0} and ruleset.rules[0].enabled is True


def test_an_alias_bomb_is_built_once_per_node_not_expanded(tmp_path: Path) -> None:
    levels = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 30)]
    text = "x:\n" + "".join(f"  {line}\n" for line in levels) + rule_with("labels: *a29")
    path = write(tmp_path, text)
    errors = errors_of(str(path))  # 10**29 leaves if expanded
    assert any("rule r: labels must be a mapping" in e for e in errors), errors


def test_a_bad_value_is_reported_once_under_its_key_and_the_other_fields_still_are(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - name: r\n    when: !!python/name:os.system\n    action: !foo migrate\n"
                           "    priority: -1\n    colour: !!binary AAAA\n")
    errors = errors_of(str(path))
    assert errors == [
        f"{path}:3: rule r: when: YAML tag '!!python/name:os.system' is not allowed "
        "(rule files hold plain strings, numbers, true/false, lists and mappings)",
        f"{path}:4: rule r: action: YAML tag '!foo' is not allowed "
        "(rule files hold plain strings, numbers, true/false, lists and mappings)",
        f"{path}:5: rule r: priority must be a whole number from 0 to 1000000, got -1",
        f"{path}:6: rule r: unknown key 'colour' (allowed: name, description, enabled, scope, services, labels, "
        "when, for, action, priority, cooldown, exclusion_ttl, max_replicas, min_replicas, after_scale_up, "
        "moved_hold)",
    ]


# -- what is not a regular file -----------------------------------------------------------------

T = TypeVar("T")


def finishes(func: Callable[[], T], seconds: float = 10.0) -> T:
    """Runs `func` in a thread; fails the test (instead of hanging it) if it blocks."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(func()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    return result[0]


def good_dir(tmp_path: Path) -> Path:
    write(tmp_path, RULE, "good.yml")
    return tmp_path


def test_a_fifo_named_like_a_rule_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = good_dir(tmp_path) / "pipe.yml"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):
        errors = finishes(lambda path=path: errors_of(str(path)))
        assert errors == [f"{fifo}: not a regular file (a FIFO); rule files must be regular files"]
    code, lines = finishes(lambda: check(str(tmp_path)))
    assert code == 1 and lines[0].startswith(f"{fifo}: not a regular file")


def test_a_device_and_a_directory_named_like_rule_files_are_refused(tmp_path: Path) -> None:
    good_dir(tmp_path)
    (tmp_path / "null.yml").symlink_to("/dev/null")
    (tmp_path / "sub.yaml").mkdir()
    assert errors_of(str(tmp_path)) == [
        f"{tmp_path / 'null.yml'}: not a regular file (a character device); rule files must be regular files",
        f"{tmp_path / 'sub.yaml'}: not a regular file (a directory); rule files must be regular files",
    ]


def test_a_symlink_to_a_regular_file_is_read_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    target = write(tmp_path, RULE, "target.txt")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "link.yml").symlink_to(target)
    assert [rule.name for rule in load_rules([str(rules)]).rules] == ["r"]
    (rules / "dangling.yml").symlink_to(tmp_path / "nowhere.yml")
    assert errors_of(str(rules)) == [f"{rules / 'dangling.yml'}: broken symbolic link (its target does not exist)"]


def test_hidden_files_are_not_rule_files(tmp_path: Path) -> None:
    good_dir(tmp_path)
    (tmp_path / ".#good.yml").symlink_to("editor-lock@host.1234")  # what emacs leaves while editing
    assert len(load_rules([str(tmp_path)]).rules) == 1


def test_an_unreadable_file_is_an_error_with_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, RULE)
    real_open = os.open

    def deny(name: str, flags: int, *args: int) -> int:  # root reads any file, so refuse the way EACCES would
        if name == str(path):
            raise PermissionError(13, "Permission denied", name)
        return real_open(name, flags, *args)
    monkeypatch.setattr(os, "open", deny)
    assert errors_of(str(tmp_path)) == [f"{path}: cannot read: Permission denied"]


def test_an_unlistable_directory_is_an_error_not_an_empty_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_dir(tmp_path)

    def deny(path: str) -> list[str]:
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(os, "listdir", deny)
    assert errors_of(str(tmp_path)) == [f"{tmp_path}: cannot list the directory: Permission denied"]


def test_a_file_deleted_between_listing_and_reading_is_left_out(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    good_dir(tmp_path)
    gone = write(tmp_path, RULE.replace("name: r", "name: gone"), "gone.yml")
    real_listdir = os.listdir

    def list_then_delete(path: str) -> list[str]:
        names = real_listdir(path)
        gone.unlink()
        return names
    monkeypatch.setattr(os, "listdir", list_then_delete)
    ruleset = load_rules([str(tmp_path)])
    assert [rule.name for rule in ruleset.rules] == ["r"] and ruleset.files == (str(tmp_path / "good.yml"),)


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    assert errors_of(str(tmp_path / "nope.yml")) == [f"{tmp_path / 'nope.yml'}: no such file or directory"]


def test_file_names_with_control_bytes_are_shown_escaped_on_one_line(tmp_path: Path) -> None:
    name = os.fsdecode(b"bad\nname\xff.yml")
    (tmp_path / name).write_text("rules: 5\n")
    code, lines = check(str(tmp_path))
    assert code == 1
    assert lines == [f"{tmp_path}/bad\\nname\\udcff.yml:1: rules: expected a list of rules", "FAILED: 1 error"]


# -- names and overrides: a trailing newline is not a valid name -------------------------------------

def test_override_names_with_a_newline_or_tab_are_refused() -> None:
    from controller.rules import parse_threshold, thresholds_from_env
    for text in ("cpu_high\n=80", "cpu_high\t=80", "cpu_high=8\n0x"):
        with pytest.raises(ValueError):
            parse_threshold(text)
    assert parse_threshold(" cpu_high = 80\n") == ("cpu_high", 80.0)
    for env in ({"SWARMGUARD_THRESHOLD_CPU_HIGH\n": "80"}, {"SWARMGUARD_THRESHOLD_\u212a": "80"},
                {"SWARMGUARD_THRESHOLD_CPU_HIGH": "1_000"}, {"SWARMGUARD_THRESHOLD_CPU_HIGH": "\u0668\u0660"},
                {"SWARMGUARD_THRESHOLD_CPU_HIGH": "-infinity"}, {"SWARMGUARD_THRESHOLD_CPU_HIGH": "1e999"}):
        with pytest.raises(RuleError):
            thresholds_from_env(env)


def test_startup_refuses_hostile_rule_files_with_messages_and_exit_2(tmp_path: Path) -> None:
    write(tmp_path, "thresholds:\n  a: !!python/name:os.system\n" + RULE, "tags.yml")
    write(tmp_path, "rules: " + "[" * 3000 + "]" * 3000 + "\n", "deep.yml")
    os.mkfifo(tmp_path / "pipe.yml")
    env = {"PATH": os.environ.get("PATH", ""), "ALERT_TOKEN": "t", "CONTROLLER_RULES": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "controller", "run"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'deep.yml'}:1: not valid YAML: nested deeper than" in done.stderr
    assert f"{tmp_path / 'pipe.yml'}: not a regular file (a FIFO)" in done.stderr
    assert f"{tmp_path / 'tags.yml'}:2: thresholds: a: YAML tag '!!python/name:os.system'" in done.stderr


def test_check_rules_prints_a_name_its_output_cannot_encode_as_an_escape(tmp_path: Path) -> None:
    write(tmp_path, "rules: 5\n", "r\u00e9gles.yml")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "controller", "check-rules", str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines() == [f"{tmp_path}/r\\xe9gles.yml:1: rules: expected a list of rules",
                                        "FAILED: 1 error"]
