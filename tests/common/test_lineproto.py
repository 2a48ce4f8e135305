"""Line protocol in one place: escaping, field types, timestamps, pinned as exact strings."""
from __future__ import annotations

import pytest

from sgcommon.lineproto import escape_tag, format_field, line


def test_tags_fields_and_the_timestamp_are_written_as_influxdb_reads_them() -> None:
    got = line("m", [("node", "worker 1"), ("empty", ""), ("svc", "a,b=c")],
               [("cpu", 12.5), ("bytes", 42), ("up", True), ("note", 'say "hi"\n')], 1700000000.1234, "ms")
    assert got == r'm,node=worker\ 1,svc=a\,b\=c cpu=12.5,bytes=42i,up=true,note="say \"hi\"\n" 1700000000123'


@pytest.mark.parametrize(("precision", "stamp"), [("s", "1700000000"), ("ns", "1700000000500000000")])
def test_the_timestamp_follows_the_precision(precision: str, stamp: str) -> None:
    assert line("m", [], [("x", 1.0)], 1700000000.5, precision).endswith(f" {stamp}")


def test_a_newline_in_a_tag_cannot_end_the_point() -> None:
    assert "\n" not in escape_tag("a\nb") and escape_tag("a\\b") == "a\\\\b"


def test_a_point_without_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="m: a point needs at least one field"):
        line("m", [("t", "v")], [], 1.0)


def test_a_bool_is_not_written_as_an_integer() -> None:
    assert format_field(False) == "false" and format_field(0) == "0i" and format_field(0.0) == "0.0"
