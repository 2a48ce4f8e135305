"""The lab's only outside name server: answers every query at once with NXDOMAIN.

Lab engines and containers must resolve nothing outside the lab, but a query sent to a server
that never answers costs 5 s per try: Docker's embedded DNS forwards every name it does not know
(for example a dnsrr service with no healthy task, between a crash and the replacement) and the
client then waits 10 s where a real cluster's resolver says "no such name" in milliseconds.
Started by `swarm/lab up` on 10.99.0.1:53 (UDP); standard library only.
"""
from __future__ import annotations

import socket
import sys

NXDOMAIN = 3


def question_end(query: bytes) -> int | None:
    """Offset just past the first question (name labels, QTYPE, QCLASS), None if malformed."""
    at = 12
    while at < len(query):
        length = query[at]
        if length == 0:
            return at + 5 if at + 5 <= len(query) else None
        if length & 0xC0:  # compression has no place in a question
            return None
        at += 1 + length
    return None


def answer(query: bytes) -> bytes | None:
    """The header and question with QR=1, RA=1, RCODE=NXDOMAIN and no records; None to ignore."""
    if len(query) < 12 or query[2] & 0x80 or query[4:6] != b"\0\1":
        return None
    end = question_end(query)
    if end is None:
        return None
    flags = 0x8000 | (int.from_bytes(query[2:4], "big") & 0x7900) | 0x0080 | NXDOMAIN
    return query[:2] + flags.to_bytes(2, "big") + b"\0\1" + b"\0" * 6 + query[12:end]


def serve(address: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    while True:
        query, peer = sock.recvfrom(4096)
        reply = answer(query)
        if reply:
            sock.sendto(reply, peer)


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "10.99.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 53)
