"""Network stress sends real bytes over TCP at the paced rate, to its own sink or a peer."""
from __future__ import annotations

import time

import pytest

from stressapp.network import ByteCounters, NetworkActuator, Sink, parse_peer
from tests.stressapp.helpers import CountingSink
from tests.support import free_port


@pytest.mark.parametrize(("text", "peer"), [("10.99.0.12:8081", ("10.99.0.12", 8081)), ("web:9", ("web", 9)),
                                             ("[::1]:8081", ("::1", 8081))])
def test_a_peer_is_host_colon_port(text: str, peer: tuple[str, int]) -> None:
    assert parse_peer(text) == peer


@pytest.mark.parametrize("text", ["web", ":8081", "web:", "web:0", "web:65536", "web:http"])
def test_a_malformed_peer_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_peer(text)


def test_traffic_to_the_apps_own_sink_is_counted_both_ways() -> None:
    counters = ByteCounters()
    sink = Sink("127.0.0.1", 0, counters).start()
    actuator = NetworkActuator(sink.address, counters)
    try:
        actuator.apply(40)
        time.sleep(1.0)
    finally:
        actuator.release()
    deadline = time.monotonic() + 2.0
    while (totals := counters.totals())[0] < totals[1] and time.monotonic() < deadline:
        time.sleep(0.01)  # the sink drains what is still in the socket
    sink.close()
    received, sent = totals
    assert sent >= 4_000_000  # 40 Mbit/s for 1 s is 5 MB
    assert received == sent


@pytest.mark.slow
def test_the_pace_holds_the_rate_measured_by_an_independent_receiver() -> None:
    judge = CountingSink()
    actuator = NetworkActuator(("127.0.0.1", judge.port), ByteCounters())
    try:
        actuator.apply(20)
        time.sleep(0.5)
        achieved = judge.mbps_over(2.0)
    finally:
        actuator.release()
        judge.close()
    assert achieved == pytest.approx(20, rel=0.10)


def test_an_unreachable_peer_is_retried_and_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    counters = ByteCounters()
    actuator = NetworkActuator(("127.0.0.1", free_port()), counters)
    actuator.apply(10)
    time.sleep(0.3)
    actuator.release()
    assert counters.totals() == (0, 0)
    assert "network peer unreachable" in caplog.text
