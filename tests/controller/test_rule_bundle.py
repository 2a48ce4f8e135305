"""A rule set as one document (controller/rules/bundle.py): named by its content, read back into the
same files, and whatever bytes come back, refused with a message rather than an exception."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.rules import RuleError, load_rule_texts, load_rules
from controller.rules.bundle import NAME_RE, RuleBundle, decode, from_paths, name_of
from sgcommon.engine.configs import MAX_CONFIG_DATA
from tests.controller.test_rules_fuzz import budget

GOOD = "thresholds:\n  cpu_high: 75\nrules:\n  - name: hot\n    when: cpu > cpu_high\n    action: migrate\n"
BROKEN = "rules:\n  - name: hot\n    when: cpu >> 1\n    action: migrate\n"


def test_the_same_files_give_the_same_document_and_name_and_any_change_a_new_name() -> None:
    one = RuleBundle((("a.yml", GOOD.encode()), ("b.yml", b"thresholds: {x: 1}\n")))
    assert one.encode() == RuleBundle(one.files).encode()
    assert NAME_RE.fullmatch(one.name) and one.name == name_of(one.encode())
    assert RuleBundle((("a.yml", GOOD.encode() + b" "), one.files[1])).name != one.name
    assert RuleBundle((one.files[1], one.files[0])).name != one.name  # the load order is part of the set


def test_a_decoded_document_gives_back_the_files_byte_for_byte() -> None:
    text = GOOD + "# ünïcode, tab\t, CRLF\r\n"
    bundle = RuleBundle((("default.yml", text.encode()), ("extra.yaml", b"thresholds: {net_low: 1}\n")))
    assert decode(bundle.encode(), where="config x") == bundle


def test_a_directory_becomes_its_rule_files_by_base_name_in_load_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(GOOD.replace("hot", "hot-b"))
    (tmp_path / "a.yaml").write_text(GOOD.replace("cpu_high: 75", "other: 1").replace("cpu_high", "other"))
    (tmp_path / ".hidden.yml").write_text("not: loaded")
    (tmp_path / "notes.txt").write_text("not a rule file")
    bundle = from_paths([str(tmp_path)])
    assert bundle.file_names == ("a.yaml", "b.yml")
    assert [r.name for r in load_rule_texts(bundle.files).rules] == [r.name for r in load_rules([str(tmp_path)]).rules]


def test_a_stored_set_reports_problems_at_the_files_lines_like_the_files_themselves(tmp_path: Path) -> None:
    (tmp_path / "default.yml").write_text(BROKEN)
    with pytest.raises(RuleError) as from_disk:
        load_rules([str(tmp_path / "default.yml")])
    with pytest.raises(RuleError) as from_memory:
        load_rule_texts(from_paths([str(tmp_path)]).files)
    assert [e.replace(str(tmp_path) + "/", "") for e in from_disk.value.errors] == from_memory.value.errors
    assert from_memory.value.errors[0].startswith("default.yml:3: rule hot: when:")


def test_file_names_that_cannot_be_stored_are_named_with_what_to_do() -> None:
    bundle = RuleBundle((("my rules.yml", GOOD.encode()), ("a.yml", b""), ("a.yml", b"")))
    problems = bundle.problems()
    assert problems[0].startswith("my rules.yml: a stored rule set takes file names of letters, digits")
    assert problems[1].startswith("a.yml: two files of the set have this name")
    assert RuleBundle(()).problems() == ["no rule files given"]


def test_a_set_larger_than_a_swarm_config_is_refused_before_anything_is_written() -> None:
    bundle = RuleBundle((("big.yml", b"#" * MAX_CONFIG_DATA),))
    [problem] = bundle.problems()
    assert f"a Swarm config holds at most {MAX_CONFIG_DATA} bytes" in problem


def test_a_file_that_is_not_utf8_cannot_be_put_in_a_document() -> None:
    with pytest.raises(RuleError, match=r"^bad.yml: not UTF-8 text$"):
        RuleBundle((("bad.yml", b"\xff\xfe"),)).encode()


@pytest.mark.parametrize(("document", "message"), [
    (b"\xff", "not JSON"),
    (b"rules: []", "not JSON"),
    (b"[]", "expected a JSON object with 'format' and 'files'"),
    (b'{"format": 1, "files": [], "extra": 1}', "expected a JSON object"),
    (b'{"format": 2, "files": []}', "rule set format '2': this controller reads format 1"),
    (b'{"format": true, "files": []}', "rule set format 'True'"),
    (b'{"format": 1, "files": {}}', "'files' must be a non-empty list"),
    (b'{"format": 1, "files": [1]}', "file #1: expected an object with 'name' and 'text'"),
    (b'{"format": 1, "files": [{"name": "../x.yml", "text": ""}]}', "file #1: '../x.yml' is not a rule file name"),
    (b'{"format": 1, "files": [{"name": "x.txt", "text": ""}]}', "is not a rule file name"),
    (b'{"format": 1, "files": [{"name": "x.yml", "text": 3}]}', "x.yml: 'text' must be a string"),
    (b'{"format": 1, "files": [{"name": "x.yml", "text": "\\ud800"}]}', "x.yml: not UTF-8 text"),
    (b'{"format": 1, "files": [{"name": "x.yml", "text": ""}, {"name": "x.yml", "text": ""}]}',
     "x.yml: two files of the set have this name"),
    (b"[" * 100_000, "not JSON"),
])
def test_a_document_that_is_not_a_stored_rule_set_is_refused_with_a_message(document: bytes, message: str) -> None:
    with pytest.raises(RuleError) as refused:
        decode(document, where="config swarmguard-rules-000000000000")
    assert all(e.startswith("config swarmguard-rules-000000000000: ") for e in refused.value.errors)
    assert message in refused.value.errors[0]


def test_a_document_larger_than_a_config_is_refused_unread() -> None:
    with pytest.raises(RuleError, match="more than a Swarm config holds"):
        decode(b" " * (MAX_CONFIG_DATA + 1), where="config c")


@budget(300)
@given(st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=20).map(lambda doc: json.dumps(doc).encode()),
    st.lists(st.tuples(st.sampled_from(["a.yml", "b.yaml", "a.yml", "bad name", ""]), st.text(max_size=40)),
             max_size=3).map(lambda files: json.dumps(
                 {"format": 1, "files": [{"name": n, "text": t} for n, t in files]}).encode()),
))
def test_decoding_any_bytes_raises_nothing_but_rule_error(document: bytes) -> None:
    try:
        bundle = decode(document, where="config c")
    except RuleError as exc:
        assert exc.errors and all(e.startswith("config c: ") for e in exc.errors)
        return
    try:
        load_rule_texts(bundle.files)
    except RuleError:
        pass
