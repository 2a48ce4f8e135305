"""The lab name server says NXDOMAIN to every query, and ignores what is not a query."""
from __future__ import annotations

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("nxdns", Path(__file__).parents[2] / "swarm" / "lab.d" / "nxdns.py")
assert spec and spec.loader
nxdns = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nxdns)

QUESTION = b"\x04pypi\x03org\x00\x00\x01\x00\x01"
EDNS = b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"


def test_a_query_gets_nxdomain_with_its_id_and_question_and_no_records() -> None:
    query = bytes.fromhex("beef" "0100" "0001" "0000" "0000" "0001") + QUESTION + EDNS
    reply = nxdns.answer(query)
    assert reply[:2] == b"\xbe\xef"
    assert reply[2] & 0x80 and reply[3] & 0x0F == 3  # a response, NXDOMAIN
    assert reply[2] & 0x01  # recursion desired is echoed
    assert reply[4:12] == b"\x00\x01" + b"\x00" * 6
    assert reply[12:] == QUESTION


def test_responses_and_malformed_packets_get_no_answer() -> None:
    assert nxdns.answer(bytes.fromhex("beef" "8180" "0001" "0000" "0000" "0000") + QUESTION) is None
    assert nxdns.answer(b"\x00\x01") is None
    assert nxdns.answer(bytes.fromhex("beef" "0100" "0001" "0000" "0000" "0000") + b"\x04pyp") is None
